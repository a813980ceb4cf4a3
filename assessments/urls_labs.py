"""URL patterns of the lab pages (included by assessments/urls.py)."""

urlpatterns: list = []
