"""URLs of trial/views_audit.py (data management): the audit-trail viewer and its exports."""

from django.urls import path, register_converter

from trial import views_audit


class ModelLabelConverter:
    """ "app_label.model_name", as in `/quality/records/patients.baseline/12/audit/`."""

    regex = r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelLabelConverter, "audit_model_label")

urlpatterns = [
    path(
        "patients/<int:patient_pk>/audit/",
        views_audit.patient_audit,
        name="audit-patient",
    ),
    path(
        "records/<audit_model_label:label>/<int:pk>/audit/",
        views_audit.record_audit,
        name="audit-record",
    ),
]
