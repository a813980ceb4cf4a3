"""URLs of trial/views_queries.py (data queries), under /quality/ (namespace "quality")."""

from django.urls import path

from trial import views_queries as views

urlpatterns: list = [
    path("queries/", views.query_list, name="query-list"),
    path("queries/<int:pk>/", views.query_detail, name="query-detail"),
    path(
        "records/<str:label>/<int:pk>/queries/new/",
        views.query_new,
        name="query-new",
    ),
]
