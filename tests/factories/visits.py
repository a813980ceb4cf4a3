"""Factories for the visits app.

`ExpectedVisitFactory` makes a stored calendar row directly (worklist and panel tests that
need a visit in a given state); tests of the calendar itself build the records and call
`visits.services.calendar_refresh`.
"""

from datetime import date, timedelta

import factory

from patients.models import Patient
from tests.factories.patients import PatientFactory
from visits.models import ExpectedVisit, VisitClosure, VisitKind, VisitStatus

TODAY = date(2026, 11, 24)


class ExpectedVisitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExpectedVisit

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    site = factory.SelfAttribute("patient.site")
    code = factory.Sequence(lambda n: f"C{n % 90 + 2:02d}")
    kind = VisitKind.CYCLE
    number = 3
    target_on = TODAY
    window_start = factory.LazyAttribute(lambda o: o.target_on - timedelta(days=3))
    window_end = factory.LazyAttribute(lambda o: o.target_on + timedelta(days=7))
    forms = "treatments.chemocycle"
    status = VisitStatus.DUE


class VisitClosureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VisitClosure

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    code = "C03"
    reason = "The patient did not come and could not be reached."


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "visits.VisitClosure": lambda site: VisitClosureFactory.build(
        patient=PatientFactory(site=site, status=Patient.Status.ENROLLED)
    ),
}


def synthetic_cohort(*, site, count: int, today: date, investigator) -> list[int]:
    """`count` enrolled patients at `site` with plain rows made by bulk_create (no services,
    no history: for query-count tests and the benchmark only): screening and enrollment
    spread over the 300 days before `today`, a first-line regimen (mFOLFIRINOX or AG) with its
    cycles up to `today` (at most 8), an evaluation after cycle 4 for every third patient
    (PD for every ninth), and for every sixth one referred to the MDT a decision for
    surgery, the operation two weeks later and postoperative day 1 and 3 panels. Returns the
    patient ids."""
    from assessments.models import ImagingStudy, LabPanel, ResponseEvaluation
    from patients.models import Enrollment, Screening
    from surgery.models import MdtDecision, Operation
    from treatments.models import ChemoCycle, Regimen, RegimenLine
    from trial.models import Cohort, FormStatus

    done = FormStatus.COMPLETE
    site.refresh_from_db()
    first = site.last_subject_number + 1
    patients = Patient.objects.bulk_create(
        Patient(
            site=site,
            subject_code=f"{site.code}-{number:05d}",
            sex="F" if number % 2 else "M",
            status=Patient.Status.ENROLLED,
            cohort=Cohort.PROSPECTIVE,
        )
        for number in range(first, first + count)
    )
    site.last_subject_number = first + count - 1
    site.save(update_fields=["last_subject_number"])
    enrolled = {p.pk: today - timedelta(days=10 + index % 300) for index, p in enumerate(patients)}
    Screening.objects.bulk_create(
        Screening(
            patient=p,
            screened_on=enrolled[p.pk] - timedelta(days=3),
            age_at_screening=60,
            intended_cohort=Cohort.PROSPECTIVE,
            confirmation=Screening.Confirmation.HISTOLOGY,
            is_pdac=True,
            synchronous_liver_metastases=True,
            prior_systemic_therapy=False,
            status=done,
        )
        for p in patients
    )
    Enrollment.objects.bulk_create(
        Enrollment(patient=p, enrolled_on=enrolled[p.pk], cohort=Cohort.PROSPECTIVE, status=done)
        for p in patients
    )
    lines = RegimenLine.objects.bulk_create(
        RegimenLine(
            patient=p,
            line_number=1,
            regimen=Regimen.MFOLFIRINOX if index % 2 else Regimen.AG,
            cycle_length_days=14 if index % 2 else 28,
            started_on=enrolled[p.pk] + timedelta(days=5),
            status=done,
        )
        for index, p in enumerate(patients)
    )
    cycles, given = [], {}
    for line in lines:
        dates = []
        day = line.started_on
        while day <= today and len(dates) < 8:
            dates.append(day)
            day += timedelta(days=line.cycle_length_days)
        given[line.patient_id] = (line, dates)
        cycles += [
            ChemoCycle(
                patient_id=line.patient_id,
                line=line,
                cycle_number=number,
                given_on=on,
                status=done,
            )
            for number, on in enumerate(dates, start=1)
        ]
    ChemoCycle.objects.bulk_create(cycles)
    evaluated = {}
    for index, p in enumerate(patients):
        line, dates = given[p.pk]
        if index % 3 == 0 and len(dates) >= 4:
            on = dates[3] + timedelta(days=line.cycle_length_days)
            if on <= today:
                evaluated[p.pk] = (index, on)
    studies = ImagingStudy.objects.bulk_create(
        ImagingStudy(
            patient_id=pk,
            performed_on=on - timedelta(days=2),
            modality=ImagingStudy.Modality.CT,
            is_baseline=False,
            non_target=ImagingStudy.NonTarget.PRESENT,
            status=done,
        )
        for pk, (_index, on) in evaluated.items()
    )
    ResponseEvaluation.objects.bulk_create(
        ResponseEvaluation(
            patient_id=pk,
            evaluated_on=on,
            imaging=study,
            cycles_completed=4,
            recist_response="PD" if index % 9 == 0 else "PR",
            decision=ResponseEvaluation.Decision.REFER_MDT
            if index % 6 == 0
            else ResponseEvaluation.Decision.CONTINUE,
            status=done,
        )
        for study, (pk, (index, on)) in zip(studies, evaluated.items(), strict=True)
    )
    referred = {
        pk: on + timedelta(days=7)
        for pk, (index, on) in evaluated.items()
        if index % 6 == 0 and on + timedelta(days=21) <= today
    }
    decisions = MdtDecision.objects.bulk_create(
        MdtDecision(
            patient_id=pk,
            decided_on=on,
            attended_surgeon=True,
            decision=MdtDecision.Decision.RADICAL_SURGERY,
            rationale="Synthetic",
            planned_pancreatic="pd",
            investigator=investigator,
            status=done,
        )
        for pk, on in referred.items()
    )
    operations = Operation.objects.bulk_create(
        Operation(
            patient_id=decision.patient_id,
            mdt_decision=decision,
            operated_on=decision.decided_on + timedelta(days=14),
            pancreatic_procedure="pd",
            approach=Operation.Approach.OPEN,
            operative_minutes=360,
            blood_loss_ml=400,
            status=done,
        )
        for decision in decisions
    )
    LabPanel.objects.bulk_create(
        LabPanel(
            patient_id=operation.patient_id,
            context=LabPanel.Context.POSTOP,
            postop_day=day,
            sampled_on=operation.operated_on + timedelta(days=day),
            status=done,
        )
        for operation in operations
        for day in (1, 3)
        if operation.operated_on + timedelta(days=day) <= today
    )
    return [p.pk for p in patients]
