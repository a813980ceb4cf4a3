"""POST data for the patients pages, as a browser sends it (strings; unticked boxes left out).

`*_post(...)` give a valid new form for the page; `post_from_form(form, **changes)` turns an
unbound form (e.g. one built on a saved record, so it carries the hidden version) into the
data of submitting it unchanged, with `changes` applied on top.
"""

from datetime import date, timedelta
from decimal import Decimal

from django import forms

from trial.models import Cohort


def _as_post(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def post_from_form(
    form: forms.BaseForm, *, button: str | None = "save_complete", **changes
) -> dict:
    """The data a browser posts for unbound `form` as rendered, with `changes` (by field name).

    Disabled fields are left out, as browsers do; `button=None` adds no submit button.
    """
    data: dict[str, str | list[str]] = {}
    for name, field in form.fields.items():
        value = changes.pop(name) if name in changes else form[name].value()
        key = form.add_prefix(name)
        if field.disabled:
            continue
        if isinstance(field.widget, forms.CheckboxInput):
            if value:
                data[key] = "on"
            continue
        if isinstance(value, list | tuple):
            data[key] = [_as_post(item) for item in value]
            continue
        text = _as_post(value)
        if text is not None:
            data[key] = text
    if changes:
        raise KeyError(f"not fields of {type(form).__name__}: {sorted(changes)}")
    if button:
        data[button] = "1"
    return data


def candidate_post(*, today: date, button: str = "save_complete", **changes) -> dict:
    """The screening page of a new candidate: identity (prefix `id-`) and an eligible checklist."""
    data = {
        "id-full_name": "张伟明",
        "id-hospital_record_number": "MRN-000123",
        "id-date_of_birth": "1961-04-09",
        "id-phone": "13800138000",
        "id-sex": "M",
        "screened_on": (today - timedelta(days=10)).isoformat(),
        "intended_cohort": Cohort.PROSPECTIVE,
        "confirmation": "histology",
        "is_pdac": "True",
        "synchronous_liver_metastases": "True",
        "imaging_on": (today - timedelta(days=14)).isoformat(),
        "prior_systemic_therapy": "False",
        "notes": "",
        button: "1",
    }
    data.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        data.pop(key, None)
    return data


def consent_post(*, on: date, button: str = "save_complete", **changes) -> dict:
    data = {
        "basis": "signed",
        "consented_on": on.isoformat(),
        "consent_version": "v1.2 2025-03-01",
        "waiver_reference": "",
        "study_consent": "True",
        "biobank_consent": "True",
        button: "1",
    }
    data.update(changes)
    return data


def enrollment_post(*, on: date, cohort: str = Cohort.PROSPECTIVE, **changes) -> dict:
    data = {
        "enrolled_on": on.isoformat(),
        "cohort": cohort,
        "diagnosed_on": "",
        "save_complete": "1",
    }
    data.update(changes)
    return data


def baseline_post(*, on: date, button: str = "save_complete", **changes) -> dict:
    data = {
        "assessed_on": on.isoformat(),
        "ecog": "1",
        "height_cm": "170.0",
        "weight_kg": "64.0",
        "primary_site": "head",
        "primary_size_mm": "32.0",
        "ajcc_t": "T3",
        "ajcc_n": "N1",
        "liver_met_count": "3",
        "liver_met_largest_mm": "21.0",
        "liver_met_distribution": "bilobar",
        "ca19_9_u_ml": "845.0",
        "cea_ng_ml": "",
        "ca125_u_ml": "",
        "other_met_other": "",
        "biliary_stent_type": "",
        "comorbid_other": "",
        button: "1",
    }
    data.update({k: str(v) if isinstance(v, Decimal | int) else v for k, v in changes.items()})
    return data


def withdrawal_post(*, on: date, last_medication_on: date | None, **changes) -> dict:
    data = {
        "withdrawn_on": on.isoformat(),
        "kind": "drop_out",
        "reason": "patient_decision",
        "reason_detail": "",
        "last_medication_on": last_medication_on.isoformat() if last_medication_on else "",
        "save_complete": "1",
    }
    data.update(changes)
    return data
