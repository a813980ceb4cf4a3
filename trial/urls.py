"""Data management pages under /quality/: each part keeps its own URL module."""

from django.urls import include, path

app_name = "quality"

urlpatterns = [
    path("", include("trial.urls_lifecycle")),
    path("", include("trial.urls_queries")),
    path("", include("trial.urls_audit")),
]
