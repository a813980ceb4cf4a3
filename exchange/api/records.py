"""The forms another hospital system writes through the API, and how each one is saved.

Each `RecordForm` names the model, its request and response bodies and the service calls of
the form's own views (treatments/views.py, assessments/views/labs.py, followup/views.py), so
the API validates, derives (calendar, CTCAE grades, BSA, dose reduction…), audits and asks
for a reason for change exactly as the pages do. The names are those of the read endpoints
(/api/v1/forms/<name>/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from assessments.models import LabPanel, LabResult
from assessments.services.labs import lab_panel_record, lab_panel_void
from exchange.api import serializers as s
from followup import services as followup_services
from followup.models import Death, FollowUpContact, Recurrence
from treatments import services as treatment_services
from treatments.models import AdverseEvent, ChemoCycle, CycleDose
from trial.models import AuditedModel


@dataclass
class Save:
    """One write: the record with the body's values applied, the child rows of the body
    (None: keep the saved ones), the user, the If-Match version, reason and draft flag.
    `keys` receives how the service's error keys of child rows map onto the body
    (service key → (list name, index, field))."""

    record: AuditedModel
    children: list[dict] | None
    user: AbstractBaseUser
    expected_version: int | None
    reason: str
    complete: bool
    keys: dict[str, tuple[str, int, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordForm:
    name: str
    model: type[AuditedModel]
    request: type[s.WriteSerializer]
    save: Callable[[Save], AuditedModel]
    void: Callable[..., AuditedModel]
    # Extra permissions (beyond the model's add/change), as the form's views ask.
    add_perms: tuple[str, ...] = ()
    change_perms: tuple[str, ...] = ()
    # One active record per patient (a second create is a conflict with the first).
    single: bool = False
    # Body fields that cannot change on an edit, with the reason.
    fixed: dict[str, object] = field(default_factory=dict)
    # The active child rows shown in the response (None: the form has none).
    child_rows: Callable[[AuditedModel], list] | None = None

    @property
    def response(self) -> type[serializers.Serializer]:
        return s.RESPONSES[self.name]

    @property
    def children_field(self) -> str | None:
        return getattr(self.request, "CHILDREN", None)

    def perm(self, action: str) -> str:
        meta = self.model._meta
        return f"{meta.app_label}.{action}_{meta.model_name}"

    def perms(self, action: str) -> list[str]:
        extra = {"add": self.add_perms, "change": self.change_perms}.get(action, ())
        return [self.perm(action), *extra]


# --- follow-up ----------------------------------------------------------------------------


def _contact_save(w: Save) -> AuditedModel:
    return followup_services.contact_save(
        contact=w.record,
        user=w.user,
        expected_version=w.expected_version,
        reason=w.reason,
        complete=w.complete,
    )


def _recurrence_save(w: Save) -> AuditedModel:
    return followup_services.recurrence_save(
        recurrence=w.record,
        user=w.user,
        expected_version=w.expected_version,
        reason=w.reason,
        complete=w.complete,
    )


def _death_save(w: Save) -> AuditedModel:
    return followup_services.death_save(
        death=w.record,
        user=w.user,
        expected_version=w.expected_version,
        reason=w.reason,
        complete=w.complete,
    )


# --- treatments ---------------------------------------------------------------------------


def _event_save(w: Save) -> AuditedModel:
    return treatment_services.adverse_event_save(
        event=w.record,
        user=w.user,
        expected_version=w.expected_version,
        reason=w.reason,
        complete=w.complete,
    )


def _dose_identity(drug: str, other: str) -> tuple[str, str]:
    return drug, (other or "").strip().lower()


def _cycle_doses(cycle: ChemoCycle, items: list[dict] | None) -> list[CycleDose]:
    """The dose grid to save: the saved doses when the body gives none, else the body's
    entries matched to saved doses by `id` or by drug (ValidationError for an `id` that is not
    an active dose of this cycle)."""
    saved = (
        list(CycleDose.objects.active().filter(cycle_id=cycle.pk).order_by("id"))
        if cycle.pk
        else []
    )
    if items is None:
        return saved
    by_id = {dose.pk: dose for dose in saved}
    by_drug = {_dose_identity(dose.drug, dose.drug_other): dose for dose in saved}
    taken: set[int] = set()
    doses: list[CycleDose] = []
    errors: dict = {}
    for index, item in enumerate(items):
        values = {name: value for name, value in item.items() if name != "id"}
        if item.get("id") is not None:
            dose = by_id.get(item["id"])
            if dose is None or dose.pk in taken:
                errors[f"doses-{index}-id"] = [
                    _("%(id)s is not a dose of this cycle: leave the id out for a new drug.")
                    % {"id": item["id"]}
                ]
                continue
        else:
            found = by_drug.get(_dose_identity(item.get("drug", ""), item.get("drug_other", "")))
            dose = found if found is not None and found.pk not in taken else CycleDose()
        if dose.pk:
            taken.add(dose.pk)
        for name, value in values.items():
            setattr(dose, name, value)
        doses.append(dose)
    if errors:
        raise ValidationError(errors)
    return doses


def _cycle_save(w: Save) -> AuditedModel:
    doses = _cycle_doses(w.record, w.children)
    return treatment_services.cycle_record(
        cycle=w.record,
        doses=doses,
        user=w.user,
        expected_version=w.expected_version,
        reason=w.reason,
        complete=w.complete,
    )


def _cycle_void(*, record, user, reason, expected_version):
    return treatment_services.cycle_void(
        cycle=record, user=user, reason=reason, expected_version=expected_version
    )


# --- assessments --------------------------------------------------------------------------


def _panel_save(w: Save) -> AuditedModel:
    panel = w.record
    if w.children is None:
        saved = list(LabResult.objects.active().filter(panel_id=panel.pk).order_by("id"))
        items = [
            {
                "analyte": r.analyte,
                "entered_value": r.entered_value,
                "entered_unit": r.entered_unit,
                "extreme_confirmed": r.extreme_confirmed,
            }
            for r in saved
        ]
    else:
        items = w.children
    errors: dict = {}
    values: dict = {}
    confirmed: set[str] = set()
    for index, item in enumerate(items):
        code = item["analyte"]
        if code in values:
            errors[f"results-{index}-analyte"] = [
                _("%(code)s is listed twice: give each analyte once.") % {"code": code}
            ]
            continue
        w.keys[code] = ("results", index, "entered_value")
        values[code] = (item["entered_value"], item.get("entered_unit") or None)
        if item.get("extreme_confirmed"):
            confirmed.add(code)
    if errors:
        raise ValidationError(errors)
    return lab_panel_record(
        panel=panel,
        values=values,
        user=w.user,
        confirmed_extremes=frozenset(confirmed),
        expected_version=w.expected_version,
        reason=w.reason,
        complete=w.complete,
    )


def _voider(service: Callable, arg: str) -> Callable[..., AuditedModel]:
    def void(*, record, user, reason, expected_version):
        return service(**{arg: record}, user=user, reason=reason, expected_version=expected_version)

    return void


def _doses(cycle: ChemoCycle) -> list:
    return _rows_of(cycle, CycleDose._base_manager.filter(cycle_id=cycle.pk))


def _results(panel: LabPanel) -> list:
    return _rows_of(panel, LabResult._base_manager.filter(panel_id=panel.pk))


def _rows_of(record: AuditedModel, queryset) -> list:
    """The active child rows; for a voided record, those voided with it."""
    if record.voided_at is None:
        return list(queryset.filter(voided_at__isnull=True).order_by("id"))
    return list(queryset.filter(voided_at__gte=record.voided_at).order_by("id"))


FORMS: tuple[RecordForm, ...] = (
    RecordForm(
        "lab_panels",
        LabPanel,
        s.LabPanelWrite,
        _panel_save,
        _voider(lab_panel_void, "panel"),
        child_rows=_results,
    ),
    RecordForm(
        "followup_contacts",
        FollowUpContact,
        s.FollowUpContactWrite,
        _contact_save,
        _voider(followup_services.contact_void, "contact"),
    ),
    RecordForm(
        "adverse_events",
        AdverseEvent,
        s.AdverseEventWrite,
        _event_save,
        _voider(treatment_services.adverse_event_void, "event"),
    ),
    RecordForm(
        "cycles",
        ChemoCycle,
        s.CycleWrite,
        _cycle_save,
        _cycle_void,
        add_perms=("treatments.add_cycledose",),
        change_perms=("treatments.change_cycledose",),
        fixed={
            "line_id": gettext_lazy(
                "A cycle stays on its line: void it and record it on the other line instead."
            )
        },
        child_rows=_doses,
    ),
    RecordForm(
        "recurrences",
        Recurrence,
        s.RecurrenceWrite,
        _recurrence_save,
        _voider(followup_services.recurrence_void, "recurrence"),
    ),
    RecordForm(
        "deaths",
        Death,
        s.DeathWrite,
        _death_save,
        _voider(followup_services.death_void, "death"),
        single=True,
    ),
)
FORMS_BY_NAME = {form.name: form for form in FORMS}

# Error keys of the services (model field names) → body field names.
FIELD_KEYS = {
    NON_FIELD_ERRORS: "non_field_errors",
    "reason": "change_reason",
    "line": "line_id",
    "contact": "contact_id",
    "patient": "subject_code",
}
CHILD_KEY = re.compile(r"(doses|results)-(\d+)-(\w+)")
