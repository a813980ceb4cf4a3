"""URL patterns of the lab pages (included by assessments/urls.py under "patients/")."""

from django.urls import path

from assessments.views import labs

urlpatterns: list = [
    path("<int:patient_id>/labs/", labs.lab_list, name="lab-list"),
    path("<int:patient_id>/labs/new/", labs.lab_new, name="lab-new"),
    path("<int:patient_id>/labs/<int:panel_id>/", labs.lab_edit, name="lab-edit"),
    path("<int:patient_id>/labs/<int:panel_id>/void/", labs.lab_void, name="lab-void"),
]
