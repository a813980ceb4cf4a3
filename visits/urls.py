"""URLs of the visits app."""

from django.urls import path  # noqa: F401

app_name = "visits"
urlpatterns: list = []
