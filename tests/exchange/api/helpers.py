"""Shared by the record API tests: a token client, a patient on chemotherapy at site A, and a
valid body per form (the dates lie in the patient's study period, before the machine's today)."""

from datetime import date
from decimal import Decimal

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories.treatments import cycle_doses
from treatments.models import Regimen

ENTRY_DAY = date(2026, 7, 1)  # the services' "today" for the records made without the API
BSA = Decimal("1.74")  # the baselined patients' BSA


def records_url(form: str, record_id: int | str | None = None) -> str:
    return f"/api/v1/records/{form}/" + (f"{record_id}/" if record_id is not None else "")


def token_client(user) -> APIClient:
    """An API client authenticated by the user's token only (no session)."""
    token, _created = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def etag(response) -> str:
    return response["ETag"]


def dose_items(regimen: str = Regimen.MFOLFIRINOX, **given: Decimal) -> list[dict]:
    return [
        {
            "drug": dose.drug,
            "planned_mg_m2": str(dose.planned_mg_m2),
            "given_mg": str(dose.given_mg),
            "planned_days": dose.planned_days,
            "given_days": dose.given_days,
        }
        for dose in cycle_doses(regimen, BSA, **given)
    ]


def bodies(patient, line) -> dict[str, dict]:
    """A valid create body per form for `patient` (on chemotherapy on `line`)."""
    code = patient.subject_code
    return {
        "lab_panels": {
            "subject_code": code,
            "sampled_on": "2026-06-07",
            "context": "on_treatment",
            "results": [
                {"analyte": "hemoglobin", "entered_value": "121", "entered_unit": "g/L"},
                {"analyte": "anc", "entered_value": "0.8"},
            ],
        },
        "followup_contacts": {
            "subject_code": code,
            "contacted_on": "2026-07-01",
            "mode": "phone",
            "reached": True,
            "vital_status": "alive",
            "ecog": 1,
            "recurrence": False,
            "subsequent_therapy": False,
        },
        "adverse_events": {
            "subject_code": code,
            "term": "Neutrophil count decreased",
            "grade": 3,
            "onset_on": "2026-06-07",
            "resolved_on": "2026-06-15",
            "serious": False,
            "attribution": "probable",
            "action_taken": "delayed",
            "outcome": "recovered",
        },
        "cycles": {
            "subject_code": code,
            "line_id": line.pk,
            "given_on": "2026-06-23",
            "delay_days": 1,
            "delay_reason": "Neutropenia",
            "gcsf": True,
            "doses": dose_items(),
        },
        "recurrences": {
            "subject_code": code,
            "detected_on": "2026-07-15",
            "kind": "progression",
            "site_liver": True,
            "detected_by": "imaging",
        },
        "deaths": {
            "subject_code": code,
            "died_on": "2026-08-01",
            "cause": "progression",
            "source": "hospital",
        },
    }
