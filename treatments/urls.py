"""Pages of the treatments app, under /patients/<id>/ (included in config/urls.py)."""

from django.urls import path

from treatments import views

app_name = "treatments"
urlpatterns = [
    path("<int:patient_id>/treatment/", views.treatment, name="treatment"),
    path("<int:patient_id>/treatment/line/new/", views.line_new, name="line-new"),
    path("<int:patient_id>/treatment/line/<int:line_id>/", views.line_edit, name="line-edit"),
    path(
        "<int:patient_id>/treatment/line/<int:line_id>/void/",
        views.line_void,
        name="line-void",
    ),
    path(
        "<int:patient_id>/treatment/line/<int:line_id>/cycle/new/",
        views.cycle_new,
        name="cycle-new",
    ),
    path("<int:patient_id>/treatment/cycle/<int:cycle_id>/", views.cycle_edit, name="cycle-edit"),
    path(
        "<int:patient_id>/treatment/cycle/<int:cycle_id>/void/",
        views.cycle_void,
        name="cycle-void",
    ),
    path("<int:patient_id>/adverse-events/", views.ae_list, name="ae-list"),
    path("<int:patient_id>/adverse-events/new/", views.ae_new, name="ae-new"),
    path("<int:patient_id>/adverse-events/<int:event_id>/", views.ae_edit, name="ae-edit"),
    path(
        "<int:patient_id>/adverse-events/<int:event_id>/void/",
        views.ae_void,
        name="ae-void",
    ),
]
