"""Pages of the surgery app, under /patients/<id>/surgery/ (included in config/urls.py)."""

from django.urls import path

from surgery import views

app_name = "surgery"
urlpatterns = [
    path("<int:patient_id>/surgery/", views.surgery, name="surgery"),
    path("<int:patient_id>/surgery/mdt/", views.mdt_list, name="mdt-list"),
    path("<int:patient_id>/surgery/mdt/new/", views.mdt_new, name="mdt-new"),
    path("<int:patient_id>/surgery/mdt/<int:decision_id>/", views.mdt_edit, name="mdt-edit"),
    path(
        "<int:patient_id>/surgery/mdt/<int:decision_id>/void/",
        views.mdt_void,
        name="mdt-void",
    ),
    path("<int:patient_id>/surgery/operation/", views.operation_form, name="operation"),
    path("<int:patient_id>/surgery/pathology/", views.pathology_form, name="pathology"),
    path("<int:patient_id>/surgery/discharge/", views.discharge_form, name="discharge"),
    path(
        "<int:patient_id>/surgery/complications/",
        views.complication_list,
        name="complication-list",
    ),
    path(
        "<int:patient_id>/surgery/complications/new/",
        views.complication_new,
        name="complication-new",
    ),
    path(
        "<int:patient_id>/surgery/complications/<int:complication_id>/",
        views.complication_edit,
        name="complication-edit",
    ),
    path(
        "<int:patient_id>/surgery/complications/<int:complication_id>/void/",
        views.complication_void,
        name="complication-void",
    ),
    path("<int:patient_id>/surgery/postop-labs/", views.postop_labs, name="postop-labs"),
    path(
        "<int:patient_id>/surgery/postop-labs/day/<int:day>/new/",
        views.postop_lab_new,
        name="postop-lab-new",
    ),
    path(
        "<int:patient_id>/surgery/postop-labs/<int:panel_id>/",
        views.postop_lab_edit,
        name="postop-lab-edit",
    ),
]
