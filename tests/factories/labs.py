"""Factories and helpers for the lab panels (assessments.LabPanel, assessments.LabResult).

The model factories bypass the services (fixtures only); `record_panel` goes through
`lab_panel_record`; `cycles_on` gives a patient chemotherapy cycles as plain rows (the
treatments services are not what these tests are about).
"""

from datetime import date
from decimal import Decimal

import factory

from assessments.models import LabPanel, LabResult
from assessments.services.labs import lab_panel_record
from patients.models import Patient
from tests.factories.patients import PatientFactory
from treatments.models import ChemoCycle, RegimenLine
from trial.models import FormStatus


class LabPanelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabPanel

    patient = factory.SubFactory(PatientFactory)
    sampled_on = date(2026, 5, 1)
    context = LabPanel.Context.BASELINE
    status = FormStatus.COMPLETE


class LabResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LabResult

    panel = factory.SubFactory(LabPanelFactory)
    analyte = "hemoglobin"
    value = Decimal("128")
    entered_value = Decimal("128")
    entered_unit = "g/L"
    flag = LabResult.Flag.LOW


def cycles_on(patient: Patient, *dates: date, regimen: str = "AG") -> list[ChemoCycle]:
    """Chemotherapy cycles of one regimen line on `dates` (plain rows, numbered in order)."""
    line = RegimenLine.objects.create(
        patient=patient,
        line_number=1,
        regimen=regimen,
        cycle_length_days=28 if regimen == "AG" else 14,
        started_on=min(dates),
        status=FormStatus.COMPLETE,
    )
    return [
        ChemoCycle.objects.create(
            patient=patient,
            line=line,
            cycle_number=number,
            given_on=given_on,
            status=FormStatus.COMPLETE,
        )
        for number, given_on in enumerate(sorted(dates), start=1)
    ]


def as_values(**values) -> dict[str, tuple[Decimal, str | None]]:
    """`as_values(alt=80, tbil=("1.2", "mg/dL"))` → the `values` argument of the service."""
    result = {}
    for code, value in values.items():
        number, unit = value if isinstance(value, tuple) else (value, None)
        result[code] = (Decimal(str(number)), unit)
    return result


def record_panel(
    patient: Patient,
    user,
    on: date,
    *,
    context: str = LabPanel.Context.BASELINE,
    today: date,
    confirmed: frozenset[str] = frozenset(),
    **values,
) -> LabPanel:
    """A panel recorded through the service, e.g. record_panel(p, u, d, today=t, alt=80)."""
    return lab_panel_record(
        panel=LabPanel(patient=patient, sampled_on=on, context=context),
        values=as_values(**values),
        user=user,
        confirmed_extremes=confirmed,
        today=today,
    )


def lab_post(*, on: date, context: str = "baseline", button: str = "save_complete", **values):
    """POST data of the panel form: `values` by analyte code, a value or (value, unit)."""
    data = {"sampled_on": on.isoformat(), "context": context, "postop_day": "", "notes": ""}
    for code, value in values.items():
        number, unit = value if isinstance(value, tuple) else (value, "")
        data[code] = str(number)
        if unit:
            data[f"{code}__unit"] = unit
    data[button] = "1"
    return data


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "assessments.LabPanel": lambda site: LabPanelFactory.build(patient=PatientFactory(site=site)),
    "assessments.LabResult": lambda site: LabResultFactory.build(
        panel=LabPanelFactory(patient=PatientFactory(site=site))
    ),
}
