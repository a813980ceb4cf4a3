"""/api/v1/analytics/: the survival API (included by config/api.py). The exports are in
analytics/api/export_urls.py, the form read endpoints in analytics/api/form_urls.py."""

from django.urls import path

from analytics.api import views

app_name = "analytics_api"

urlpatterns = [
    path("survival/", views.survival_view, name="survival"),
    path("cox/", views.cox_view, name="cox"),
    path("surgery-effect/", views.surgery_effect_view, name="surgery-effect"),
]
