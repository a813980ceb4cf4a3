"""Factories for imaging, RECIST target lesions and response evaluations, and helpers that go
through the real services (`study_record`, `evaluation_record`).

Chemotherapy cycles and lab panels are made here as plain audited rows (`cycles_record`,
`panel_record`): the imaging tests need them as facts, not the treatments or lab rules.
"""

from datetime import date, timedelta
from decimal import Decimal

import factory

from assessments.models import (
    ImagingStudy,
    LabPanel,
    LabResult,
    ResponseEvaluation,
    TargetLesion,
)
from assessments.services.imaging import evaluation_save, imaging_study_save
from patients.models import Patient
from tests.factories.patients import PatientFactory
from treatments.models import ChemoCycle, Regimen, RegimenLine
from trial.models import FormStatus
from trial.services import clinical_save

# Enrollment on 2 Jan 2026 (see `imaging_patient`); the services are called "today" below.
ENROLLED_TODAY = date(2026, 1, 10)
TODAY = date(2026, 11, 24)


class ImagingStudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImagingStudy

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    performed_on = date(2026, 1, 5)
    modality = ImagingStudy.Modality.CT
    is_baseline = True
    non_target = ImagingStudy.NonTarget.PRESENT
    status = FormStatus.COMPLETE


class TargetLesionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TargetLesion

    study = factory.SubFactory(ImagingStudyFactory)
    label = factory.Sequence(lambda n: f"T{n % 5 + 1}")
    organ = TargetLesion.Organ.LIVER
    diameter_mm = Decimal("24.0")


class ResponseEvaluationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ResponseEvaluation

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    evaluated_on = date(2026, 3, 2)
    imaging = factory.SubFactory(
        ImagingStudyFactory,
        patient=factory.SelfAttribute("..patient"),
        is_baseline=False,
        performed_on=date(2026, 2, 28),
    )
    decision = ResponseEvaluation.Decision.CONTINUE
    status = FormStatus.COMPLETE


def lesion(label: str, mm, organ: str = TargetLesion.Organ.LIVER) -> TargetLesion:
    """An unsaved target lesion for `imaging_study_save`."""
    return TargetLesion(label=label, organ=organ, diameter_mm=Decimal(str(mm)))


def study_record(
    patient: Patient,
    user,
    on: date,
    lesions: dict[str, object] | list[TargetLesion],
    *,
    baseline: bool = False,
    non_target: str = ImagingStudy.NonTarget.PRESENT,
    new_lesions: bool = False,
    radiologist: str = "",
    today: date = TODAY,
) -> ImagingStudy:
    """An imaging study through the service; `lesions` as {label: mm} (liver) or rows."""
    rows = (
        [lesion(label, mm) for label, mm in lesions.items()]
        if isinstance(lesions, dict)
        else lesions
    )
    study = ImagingStudy(
        patient=patient,
        performed_on=on,
        modality=ImagingStudy.Modality.CT,
        is_baseline=baseline,
        non_target=non_target,
        new_lesions=new_lesions,
        radiologist_response=radiologist,
    )
    return imaging_study_save(study=study, lesions=rows, user=user, today=today)


def evaluation_record(
    patient: Patient,
    user,
    on: date,
    imaging: ImagingStudy,
    *,
    panel: LabPanel | None = None,
    decision: str = ResponseEvaluation.Decision.CONTINUE,
    today: date = TODAY,
) -> ResponseEvaluation:
    return evaluation_save(
        evaluation=ResponseEvaluation(
            patient=patient, evaluated_on=on, imaging=imaging, lab_panel=panel, decision=decision
        ),
        user=user,
        today=today,
    )


def line_record(
    patient: Patient,
    user,
    start: date,
    *,
    number: int = 1,
    regimen: str = Regimen.MFOLFIRINOX,
    regimen_other: str = "",
    cycle_length: int = 14,
) -> RegimenLine:
    line = RegimenLine(
        patient=patient,
        line_number=number,
        regimen=regimen,
        regimen_other=regimen_other,
        cycle_length_days=cycle_length,
        started_on=start,
        change_reason="progression" if number > 1 else "",
    )
    return clinical_save(line, user=user, complete=True)


def cycles_record(
    patient: Patient,
    user,
    start: date,
    count: int,
    *,
    line: RegimenLine | None = None,
    first_number: int = 1,
    **line_fields,
) -> RegimenLine:
    """`count` cycles every cycle length from `start` (a new line unless `line` is given)."""
    line = line or line_record(patient, user, start, **line_fields)
    for index in range(count):
        clinical_save(
            ChemoCycle(
                patient=patient,
                line=line,
                cycle_number=first_number + index,
                given_on=start + timedelta(days=line.cycle_length_days * index),
                bsa_m2=Decimal("1.70"),
            ),
            user=user,
            complete=True,
        )
    return line


def panel_record(
    patient: Patient,
    user,
    on: date,
    *,
    context: str = LabPanel.Context.ASSESSMENT,
    ca19_9: object = None,
) -> LabPanel:
    """A lab panel with (optionally) a CA19-9 result in U/mL, as plain audited rows."""
    panel = clinical_save(
        LabPanel(patient=patient, sampled_on=on, context=context), user=user, complete=True
    )
    if ca19_9 is not None:
        value = Decimal(str(ca19_9))
        clinical_save(
            LabResult(
                panel=panel,
                analyte="ca19_9",
                value=value,
                entered_value=value,
                entered_unit="U/mL",
                flag="H" if value > 37 else "",
            ),
            user=user,
        )
    return panel


def _evaluation(site) -> ResponseEvaluation:
    patient = PatientFactory(site=site, status=Patient.Status.ENROLLED)
    imaging = ImagingStudyFactory(patient=patient, is_baseline=False, performed_on=date(2026, 3, 1))
    return ResponseEvaluationFactory.build(patient=patient, imaging=imaging)


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "assessments.ImagingStudy": lambda site: ImagingStudyFactory.build(
        patient=PatientFactory(site=site)
    ),
    "assessments.TargetLesion": lambda site: TargetLesionFactory.build(
        study=ImagingStudyFactory(patient=PatientFactory(site=site))
    ),
    "assessments.ResponseEvaluation": _evaluation,
}
