"""Pages of the exchange app, under /exchange/ (included in config/urls.py)."""

from django.urls import path

from exchange import views

app_name = "exchange"
urlpatterns = [
    path("import/", views.import_page, name="import"),
]
