"""URLs of trial/views_lifecycle.py (data management)."""

urlpatterns: list = []
