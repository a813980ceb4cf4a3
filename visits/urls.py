"""URLs of the visits app, under /visits/ (included in config/urls.py)."""

from django.urls import path

from visits import views

app_name = "visits"
urlpatterns = [
    path("worklist/", views.worklist, name="worklist"),
    path(
        "patients/<int:patient_id>/<str:code>/close/",
        views.visit_close,
        name="visit-close",
    ),
    path(
        "patients/<int:patient_id>/closures/<int:closure_id>/reopen/",
        views.visit_reopen,
        name="visit-reopen",
    ),
]
