"""Factories for the biobank app.

The model-level factories bypass the services (fixtures and the audit test only). Tests of
behaviour use `operated_patient` (a patient enrolled through the real services, with an index
operation row) and `collected` (a specimen recorded through `specimen_collect`).
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from biobank import services
from biobank.models import Box, CustodyEvent, Freezer, Rack, Specimen
from patients.models import Patient
from surgery.models import Operation
from tests.factories.patients import PatientFactory, enrolled_patient
from tests.factories.trial import SiteFactory
from trial.models import FormStatus
from trial.services import clinical_save

TODAY = date(2026, 6, 1)


def at(day: date, hour: int = 10) -> datetime:
    """An aware datetime on `day` (local time)."""
    return timezone.make_aware(datetime.combine(day, time(hour, 0)))


class FreezerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Freezer

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"F{n + 1}")
    temperature_c = -80


class RackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rack

    freezer = factory.SubFactory(FreezerFactory)
    name = factory.Sequence(lambda n: f"R{n + 1}")


class BoxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Box

    rack = factory.SubFactory(RackFactory)
    name = factory.Sequence(lambda n: f"B{n + 1:03d}")
    rows = 9
    columns = 9


class OperationRowFactory(factory.django.DjangoModelFactory):
    """A bare index-operation row (no MDT checks): the biobank only needs its patient and date."""

    class Meta:
        model = Operation

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    mdt_document_missing = True
    mdt_missing_reason = "Test fixture"
    operated_on = TODAY - timedelta(days=3)
    pancreatic_procedure = "pd"
    approach = "open"
    operative_minutes = 300
    blood_loss_ml = 400
    status = FormStatus.COMPLETE


class SpecimenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Specimen

    operation = factory.SubFactory(OperationRowFactory)
    patient = factory.SelfAttribute("operation.patient")
    code = factory.Sequence(lambda n: f"TEST-{n + 1:04d}-T01")
    kind = Specimen.Kind.TUMOUR
    origin = Specimen.Origin.PANCREAS
    weight_mg = Decimal("100.0")
    collected_at = factory.LazyAttribute(lambda o: at(o.operation.operated_on))
    preservation = Specimen.Preservation.FRESH_FROZEN
    status = FormStatus.COMPLETE


class CustodyEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustodyEvent

    specimen = factory.SubFactory(SpecimenFactory)
    kind = CustodyEvent.Kind.COLLECTED
    at = factory.LazyAttribute(lambda o: o.specimen.collected_at)


def operated_patient(*, site, user, today=TODAY, operated_days_ago: int = 3) -> Patient:
    """A patient enrolled through the real services (with biobank consent) and an index
    operation `operated_days_ago` days before `today` (a factory row, saved with history)."""
    patient = enrolled_patient(
        site=site, user=user, today=today - timedelta(days=operated_days_ago)
    )
    operation = OperationRowFactory.build(
        patient=patient, operated_on=today - timedelta(days=operated_days_ago)
    )
    clinical_save(operation, user=user, complete=True)
    return patient


def box_at(site, **fields) -> Box:
    """A 9 × 9 box in a −80 °C freezer of `site`."""
    return BoxFactory(rack=RackFactory(freezer=FreezerFactory(site=site)), **fields)


def collected(
    patient: Patient,
    *,
    user,
    today=TODAY,
    kind=Specimen.Kind.TUMOUR,
    origin=Specimen.Origin.PANCREAS,
    weight_mg=Decimal("100"),
    confirm_weight=False,
    **fields,
) -> Specimen:
    """A specimen of `patient`'s operation recorded through `specimen_collect`."""
    operation = Operation.objects.active().get(patient=patient)
    specimen = Specimen(
        patient=patient,
        operation=operation,
        kind=kind,
        origin=origin,
        weight_mg=weight_mg,
        collected_at=fields.pop("collected_at", at(operation.operated_on)),
        preservation=fields.pop("preservation", Specimen.Preservation.FRESH_FROZEN),
        warm_ischaemia_min=fields.pop("warm_ischaemia_min", 15),
        cold_ischaemia_min=fields.pop("cold_ischaemia_min", 20),
        **fields,
    )
    return services.specimen_collect(
        specimen=specimen, user=user, confirm_weight=confirm_weight, today=today
    )


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "biobank.Freezer": lambda site: FreezerFactory.build(site=site),
    "biobank.Rack": lambda site: RackFactory.build(freezer=FreezerFactory(site=site)),
    "biobank.Box": lambda site: BoxFactory.build(
        rack=RackFactory(freezer=FreezerFactory(site=site))
    ),
    "biobank.Specimen": lambda site: SpecimenFactory.build(
        operation=OperationRowFactory(patient=PatientFactory(site=site))
    ),
    "biobank.CustodyEvent": lambda site: CustodyEventFactory.build(
        specimen=SpecimenFactory(operation=OperationRowFactory(patient=PatientFactory(site=site)))
    ),
}
