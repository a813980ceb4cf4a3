from django.urls import path

from biobank import views

app_name = "biobank"

urlpatterns = [
    path("", views.home, name="home"),
    path("boxes/<int:box_id>/", views.box_detail, name="box-detail"),
    path("specimens/<int:specimen_id>/", views.specimen_detail, name="specimen-detail"),
    path("specimens/<int:specimen_id>/label/", views.specimen_label, name="specimen-label"),
    path(
        "specimens/<int:specimen_id>/<slug:action>/",
        views.specimen_action,
        name="specimen-action",
    ),
    path("patients/<int:patient_id>/", views.patient_specimens, name="patient-specimens"),
    path("patients/<int:patient_id>/new/", views.specimen_new, name="specimen-new"),
]
