"""URLs of trial/views_audit.py (data management)."""

urlpatterns: list = []
