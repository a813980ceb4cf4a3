"""URL patterns of the imaging and evaluation pages (included by assessments/urls.py)."""

from django.urls import path

from assessments.views import imaging as views

urlpatterns: list = [
    path("<int:patient_id>/imaging/", views.imaging_list, name="imaging-list"),
    path("<int:patient_id>/imaging/new/", views.imaging_edit, name="imaging-new"),
    path("<int:patient_id>/imaging/<int:study_id>/", views.imaging_edit, name="imaging-edit"),
    path(
        "<int:patient_id>/imaging/<int:study_id>/void/",
        views.imaging_void,
        name="imaging-void",
    ),
    path("<int:patient_id>/evaluations/", views.evaluation_list, name="evaluation-list"),
    path("<int:patient_id>/evaluations/new/", views.evaluation_edit, name="evaluation-new"),
    path(
        "<int:patient_id>/evaluations/<int:evaluation_id>/",
        views.evaluation_edit,
        name="evaluation-edit",
    ),
    path(
        "<int:patient_id>/evaluations/<int:evaluation_id>/void/",
        views.evaluation_void,
        name="evaluation-void",
    ),
]
