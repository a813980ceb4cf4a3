"""Keeps the materialized protocol calendar current (registered with trial.derived in
VisitsConfig.ready): whenever a service of a lower app changes a patient's records, that
patient's expected visits are recomputed in the same transaction. Order 900: after the other
refreshers, whose derived values (adjuvant flags, evaluation cycle counts) the calendar reads.
"""

from django.utils import timezone

from trial.derived import Refresher, register_refresher
from visits.services import calendar_refresh

# Every app whose records feed visits.protocol.Facts.
SOURCE_APPS = ("patients", "treatments", "assessments", "surgery", "followup")


def _refresh(*, patient, user, source: str) -> None:
    if source.split(".", 1)[0] in SOURCE_APPS:
        calendar_refresh(patient_ids=[patient.pk], today=timezone.localdate())


def _batch(patient_ids: list[int]) -> None:
    calendar_refresh(patient_ids=patient_ids, today=timezone.localdate())


register_refresher(Refresher(key="visits", order=900, refresh=_refresh, batch=_batch))
