"""URL patterns of the imaging and evaluation pages (included by assessments/urls.py)."""

urlpatterns: list = []
