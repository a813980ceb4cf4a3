"""URLs of trial/views_queries.py (data management)."""

urlpatterns: list = []
