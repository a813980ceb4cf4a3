"""Factories for the treatments app.

The model-level factories bypass the services (fixtures and the audit test only). Tests of
behaviour use the helpers below, which go through the real services: `line_started`,
`cycle_doses` (the standard dose grid for a BSA) and `cycle_given`.
"""

from datetime import date, timedelta
from decimal import Decimal

import factory

from patients.models import Patient
from tests.factories.patients import PatientFactory
from treatments import regimens, services
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, Regimen, RegimenLine
from trial.models import FormStatus

TODAY = date(2026, 6, 1)


class RegimenLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RegimenLine

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    line_number = 1
    regimen = Regimen.AG
    cycle_length_days = 28
    started_on = TODAY - timedelta(days=60)
    status = FormStatus.COMPLETE


class ChemoCycleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChemoCycle

    line = factory.SubFactory(RegimenLineFactory)
    patient = factory.SelfAttribute("line.patient")
    cycle_number = 1
    given_on = factory.SelfAttribute("line.started_on")
    bsa_m2 = Decimal("1.75")
    status = FormStatus.COMPLETE


class CycleDoseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CycleDose

    cycle = factory.SubFactory(ChemoCycleFactory)
    drug = "gemcitabine"
    planned_mg_m2 = Decimal("1000")
    given_mg = Decimal("1750")
    planned_days = 3
    given_days = 3


class AdverseEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AdverseEvent

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    term = "Neutrophil count decreased"
    grade = 2
    onset_on = TODAY - timedelta(days=20)
    resolved_on = TODAY - timedelta(days=10)
    serious = False
    attribution = AdverseEvent.Attribution.PROBABLE
    action_taken = AdverseEvent.Action.DELAYED
    outcome = AdverseEvent.Outcome.RECOVERED
    status = FormStatus.COMPLETE


# --- through the services -------------------------------------------------------------------


def line_started(
    patient: Patient,
    *,
    user,
    started_on: date,
    regimen: str = Regimen.AG,
    today: date = TODAY,
    **fields,
) -> RegimenLine:
    """A regimen line started through `services.line_start`."""
    line = RegimenLine(patient=patient, regimen=regimen, started_on=started_on, **fields)
    return services.line_start(line=line, user=user, today=today)


def cycle_doses(regimen: str, bsa: Decimal, **given: Decimal) -> list[CycleDose]:
    """The regimen's standard dose grid for `bsa` (unsaved), with `given` mg overrides by drug."""
    spec = regimens.regimen_spec(regimen)
    return [
        CycleDose(
            drug=standard.drug,
            planned_mg_m2=standard.mg_m2,
            given_mg=given.get(standard.drug, regimens.dose_for_bsa(standard.mg_m2, bsa)),
            planned_days=standard.administrations,
            given_days=standard.administrations,
        )
        for standard in spec.doses
    ]


def cycle_given(
    line: RegimenLine,
    *,
    user,
    given_on: date,
    bsa: Decimal = Decimal("1.74"),
    today: date = TODAY,
    doses: list[CycleDose] | None = None,
    **fields,
) -> ChemoCycle:
    """A cycle of `line` recorded through `services.cycle_record` at full standard doses for
    `bsa` (the baselined patients of tests.factories.patients have a BSA of 1.74 m²)."""
    cycle = ChemoCycle(line=line, patient=line.patient, given_on=given_on, **fields)
    return services.cycle_record(
        cycle=cycle,
        doses=doses if doses is not None else cycle_doses(line.regimen, bsa),
        user=user,
        today=today,
    )


def _saved_cycle(site) -> ChemoCycle:
    return ChemoCycleFactory(line=RegimenLineFactory(patient=PatientFactory(site=site)))


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "treatments.RegimenLine": lambda site: RegimenLineFactory.build(
        patient=PatientFactory(site=site)
    ),
    "treatments.ChemoCycle": lambda site: ChemoCycleFactory.build(
        line=RegimenLineFactory(patient=PatientFactory(site=site))
    ),
    "treatments.CycleDose": lambda site: CycleDoseFactory.build(cycle=_saved_cycle(site)),
    "treatments.AdverseEvent": lambda site: AdverseEventFactory.build(
        patient=PatientFactory(site=site)
    ),
}
