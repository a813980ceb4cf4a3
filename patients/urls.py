from django.urls import path

from patients import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="patient-list"),
    path("screen/", views.candidate_new, name="candidate-new"),
    path("<int:patient_id>/", views.patient_detail, name="patient-detail"),
    path("<int:patient_id>/screening/", views.screening_edit, name="screening-edit"),
    path("<int:patient_id>/consent/", views.consent_edit, name="consent-new"),
    path(
        "<int:patient_id>/consent/<int:consent_id>/",
        views.consent_edit,
        name="consent-edit",
    ),
    path(
        "<int:patient_id>/consent/<int:consent_id>/void/",
        views.consent_void,
        name="consent-void",
    ),
    path("<int:patient_id>/enrollment/", views.enrollment_edit, name="enrollment-edit"),
    path("<int:patient_id>/baseline/", views.baseline_edit, name="baseline-edit"),
    path("<int:patient_id>/withdrawal/", views.withdrawal_edit, name="withdrawal-edit"),
    path("<int:patient_id>/history/", views.patient_history, name="patient-history"),
]
