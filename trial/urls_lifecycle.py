"""URLs of trial/views_lifecycle.py (data management): the record, casebook and study pages."""

from django.urls import path

from trial import views_lifecycle as views

urlpatterns = [
    path("records/<str:label>/<int:pk>/", views.record_page, name="record"),
    path("patients/<int:patient_id>/casebook/", views.casebook_page, name="casebook"),
    path("study/lock/", views.study_lock_page, name="study-lock"),
]
