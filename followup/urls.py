"""Pages of the follow-up app, under /patients/<id>/followup/ (included in config/urls.py).

Each record kind has `<kind>-new` (patient_id), `<kind>-edit` and `<kind>-void` (patient_id,
pk): contact, recurrence, death, lost, treatment-end.
"""

from django.urls import path

from followup import views

app_name = "followup"

_SEGMENTS = {
    "contact": "contacts",
    "recurrence": "recurrences",
    "death": "death",
    "lost": "lost",
    "treatment-end": "treatment-end",
}

urlpatterns = [path("<int:patient_id>/followup/", views.followup, name="followup")]
for _kind, _segment in _SEGMENTS.items():
    _base = f"<int:patient_id>/followup/{_segment}/"
    urlpatterns += [
        path(f"{_base}new/", views.record_new, {"kind": _kind}, name=f"{_kind}-new"),
        path(f"{_base}<int:pk>/", views.record_edit, {"kind": _kind}, name=f"{_kind}-edit"),
        path(f"{_base}<int:pk>/void/", views.record_void, {"kind": _kind}, name=f"{_kind}-void"),
    ]
