"""The study dashboard's reads (analytics/dashboard.py) and the swimmer / waterfall inputs
(analytics/figures_data.py): funnel, rates, enrollment by month, per-site work, site scoping
and a query count that does not grow with the number of patients.

`build_cohort` makes a deterministic cohort by bulk_create (no services, no history: fixed
cost, for reads only), with every protocol stage represented; test_pages.py uses it too.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import dashboard, figures_data
from analytics.selectors import analysis_rows
from assessments.models import ImagingStudy, ResponseEvaluation
from followup.models import Death, FollowUpContact, TreatmentEnd
from patients.models import Enrollment, Patient, Screening
from surgery.models import MdtDecision, Operation, Pathology
from tests.factories.surgery import PathologyFactory
from treatments.models import ChemoCycle, Regimen, RegimenLine
from trial.models import Cohort, FormStatus
from visits.models import ExpectedVisit, VisitKind, VisitStatus

TODAY = date(2026, 11, 24)
DONE = FormStatus.COMPLETE


@dataclass(frozen=True)
class Plan:
    """What build_cohort gives patient number i (0-based) of a cohort."""

    i: int

    @property
    def enrolled_days_ago(self) -> int:
        return 200 + 10 * self.i

    @property
    def chemo(self) -> bool:
        return self.i % 10 != 9

    @property
    def evaluated(self) -> bool:
        return self.chemo and self.i % 5 != 4

    @property
    def change_pct(self) -> Decimal:
        return Decimal(-60 + 5 * (self.i % 20))

    @property
    def response(self) -> str:
        change = self.change_pct
        return "PR" if change <= -30 else ("PD" if change >= 20 else "SD")

    @property
    def referred(self) -> bool:
        return self.evaluated and self.i % 3 == 0

    @property
    def resected(self) -> bool:
        return self.referred and self.i % 2 == 0

    @property
    def r0(self) -> bool:
        return self.resected and self.i % 4 == 0

    @property
    def died(self) -> bool:
        return self.i % 4 == 1 or self.i == 12  # patient 12 is resected

    @property
    def contacted(self) -> bool:
        """Reached by phone 3 days ago (alive), so followed to today."""
        return not self.died and not self.lost

    @property
    def lost(self) -> bool:
        return not self.died and self.i % 7 == 3

    @property
    def treatment_ended(self) -> bool:
        return self.i % 4 == 2

    @property
    def draft_cycle(self) -> bool:
        return self.chemo and self.i % 6 == 0

    @property
    def overdue_visit(self) -> bool:
        return self.i % 2 == 0


def build_cohort(*, site, count: int, investigator, today: date = TODAY) -> list[Patient]:
    """`count` enrolled patients at `site` following `Plan`, by bulk_create."""
    site.refresh_from_db()
    first = site.last_subject_number + 1
    plans = [Plan(i) for i in range(count)]
    patients = Patient.objects.bulk_create(
        Patient(
            site=site,
            subject_code=f"{site.code}-{first + plan.i:04d}",
            sex="F" if plan.i % 2 else "M",
            status=Patient.Status.DECEASED
            if plan.died
            else (Patient.Status.LOST if plan.lost else Patient.Status.ENROLLED),
            cohort=Cohort.RETROSPECTIVE if plan.i % 3 == 1 else Cohort.PROSPECTIVE,
            died_on=today - timedelta(days=5) if plan.died else None,
        )
        for plan in plans
    )
    site.last_subject_number = first + count - 1
    site.save(update_fields=["last_subject_number"])
    enrolled = {
        p.pk: today - timedelta(days=plan.enrolled_days_ago)
        for p, plan in zip(patients, plans, strict=True)
    }
    Screening.objects.bulk_create(
        Screening(
            patient=p,
            screened_on=enrolled[p.pk] - timedelta(days=3),
            age_at_screening=60,
            intended_cohort=p.cohort,
            confirmation=Screening.Confirmation.HISTOLOGY,
            is_pdac=True,
            synchronous_liver_metastases=True,
            prior_systemic_therapy=False,
            status=DONE,
        )
        for p in patients
    )
    Enrollment.objects.bulk_create(
        Enrollment(patient=p, enrolled_on=enrolled[p.pk], cohort=p.cohort, status=DONE)
        for p in patients
    )
    with_chemo = [(p, plan) for p, plan in zip(patients, plans, strict=True) if plan.chemo]
    lines = RegimenLine.objects.bulk_create(
        RegimenLine(
            patient=p,
            line_number=1,
            regimen=Regimen.AG,
            cycle_length_days=28,
            started_on=enrolled[p.pk] + timedelta(days=5),
            status=DONE,
        )
        for p, _plan in with_chemo
    )
    ChemoCycle.objects.bulk_create(
        ChemoCycle(
            patient_id=line.patient_id,
            line=line,
            cycle_number=number,
            given_on=line.started_on + timedelta(days=28 * (number - 1)),
            status=FormStatus.DRAFT if plan.draft_cycle and number == 4 else DONE,
        )
        for line, (_p, plan) in zip(lines, with_chemo, strict=True)
        for number in range(1, 5)
    )
    evaluated = [(p, plan) for p, plan in with_chemo if plan.evaluated]
    evaluated_on = {p.pk: enrolled[p.pk] + timedelta(days=5 + 112) for p, _plan in evaluated}
    studies = ImagingStudy.objects.bulk_create(
        ImagingStudy(
            patient=p,
            performed_on=evaluated_on[p.pk] - timedelta(days=2),
            modality=ImagingStudy.Modality.CT,
            is_baseline=False,
            non_target=ImagingStudy.NonTarget.PRESENT,
            change_from_baseline_pct=plan.change_pct,
            response=plan.response,
            status=DONE,
        )
        for p, plan in evaluated
    )
    ResponseEvaluation.objects.bulk_create(
        ResponseEvaluation(
            patient=p,
            evaluated_on=evaluated_on[p.pk],
            imaging=study,
            cycles_completed=4,
            recist_response=plan.response,
            ca19_9_change_pct=Decimal(-70 + 7 * (plan.i % 15)),
            ca19_9_uninformative=plan.i % 11 == 10,
            decision=ResponseEvaluation.Decision.REFER_MDT
            if plan.referred
            else ResponseEvaluation.Decision.CONTINUE,
            status=DONE,
        )
        for study, (p, plan) in zip(studies, evaluated, strict=True)
    )
    resected = [(p, plan) for p, plan in evaluated if plan.resected]
    decisions = MdtDecision.objects.bulk_create(
        MdtDecision(
            patient=p,
            decided_on=evaluated_on[p.pk] + timedelta(days=7),
            attended_surgeon=True,
            decision=MdtDecision.Decision.RADICAL_SURGERY,
            rationale="Synthetic",
            planned_pancreatic="pd",
            investigator=investigator,
            status=DONE,
        )
        for p, _plan in resected
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
            status=DONE,
        )
        for decision in decisions
    )
    Pathology.objects.bulk_create(
        PathologyFactory.build(
            operation=operation,
            reported_on=operation.operated_on + timedelta(days=10),
            margin_pancreas=Pathology.Margin.R0 if plan.r0 else Pathology.Margin.R1,
        )
        for operation, (_p, plan) in zip(operations, resected, strict=True)
    )
    Death.objects.bulk_create(
        Death(
            patient=p,
            died_on=p.died_on,
            cause=Death.Cause.PROGRESSION,
            source=Death.Source.HOSPITAL,
            status=DONE,
        )
        for p in patients
        if p.died_on
    )
    FollowUpContact.objects.bulk_create(
        FollowUpContact(
            patient=p,
            contacted_on=today - timedelta(days=3),
            mode=FollowUpContact.Mode.PHONE,
            reached=True,
            vital_status=FollowUpContact.VitalStatus.ALIVE,
            ecog=1,
            recurrence=False,
            status=DONE,
        )
        for p, plan in zip(patients, plans, strict=True)
        if plan.contacted
    )
    TreatmentEnd.objects.bulk_create(
        TreatmentEnd(
            patient=p,
            ended_on=enrolled[p.pk] + timedelta(days=150),
            reason=TreatmentEnd.Reason.COMPLETED,
            status=DONE,
        )
        for p, plan in zip(patients, plans, strict=True)
        if plan.treatment_ended
    )
    visits = []
    for p, plan in zip(patients, plans, strict=True):
        # A visit done and one still ahead never count; an overdue one does.
        visits.append(_visit(p, "BL", enrolled[p.pk], VisitStatus.DONE))
        visits.append(_visit(p, "FU001", today + timedelta(days=10), VisitStatus.UPCOMING))
        if plan.overdue_visit:
            visits.append(_visit(p, "C02", today - timedelta(days=20), VisitStatus.DUE))
    ExpectedVisit.objects.bulk_create(visits)
    return patients


def _visit(patient, code, target, status) -> ExpectedVisit:
    return ExpectedVisit(
        patient=patient,
        site=patient.site,
        code=code,
        kind=VisitKind.CYCLE,
        number=2,
        target_on=target,
        window_start=target - timedelta(days=3),
        window_end=target + timedelta(days=7),
        forms="treatments.chemocycle",
        status=status,
    )


def expected(count: int) -> dict:
    plans = [Plan(i) for i in range(count)]
    return {
        "enrolled": count,
        "chemotherapy": sum(p.chemo for p in plans),
        "evaluated": sum(p.evaluated for p in plans),
        "mdt": sum(p.referred for p in plans),
        "resected": sum(p.resected for p in plans),
        "follow_up": sum(p.treatment_ended or p.contacted for p in plans),
        "deceased": sum(p.died for p in plans),
        "withdrawn": 0,
        "lost": sum(p.lost for p in plans),
        "responders": sum(p.evaluated and p.response == "PR" for p in plans),
        "r0": sum(p.r0 for p in plans),
        "drafts": sum(p.draft_cycle for p in plans),
        "overdue": sum(p.overdue_visit for p in plans),
    }


# ---------------------------------------------------------------------------------------------


@pytest.fixture
def cohort_a(site_a, investigator):
    return build_cohort(site=site_a, count=20, investigator=investigator)


@pytest.fixture
def cohort_b(site_b, investigator):
    return build_cohort(site=site_b, count=7, investigator=investigator)


def test_funnel_counts_each_stage_from_the_dataset(statistician, cohort_a):
    want = expected(20)
    board = dashboard.study_dashboard(user=statistician, today=TODAY)

    counts = {stage.key: stage.count for stage in board.funnel}
    assert counts == {key: want[key] for key in counts}
    assert [stage.key for stage in board.funnel if stage.outcome] == [
        "deceased",
        "withdrawn",
        "lost",
    ]
    assert board.total == 20


def test_stage_members_are_the_patients_counted(statistician, cohort_a):
    rows = analysis_rows(user=statistician)
    facts = dashboard.patient_facts(user=statistician)
    members = dashboard.stage_members(user=statistician, key="resected")

    resected = [p.subject_code for i, p in enumerate(cohort_a) if Plan(i).resected]
    assert [m.subject_code for m in members] == sorted(resected)
    assert dashboard.stage_codes(rows, facts, "resected") == sorted(resected)
    assert all(m.pk == facts[m.subject_code].pk for m in members)
    with pytest.raises(KeyError):
        dashboard.stage_members(user=statistician, key="nonsense")


def test_rates_give_numerator_denominator_and_a_wilson_interval(statistician, cohort_a):
    want = expected(20)
    rates = {
        rate.key: rate for rate in dashboard.study_dashboard(user=statistician, today=TODAY).rates
    }

    response = rates["response"]
    assert (response.numerator, response.denominator) == (want["responders"], want["evaluated"])
    assert (rates["resection"].numerator, rates["resection"].denominator) == (want["resected"], 20)
    assert (rates["r0"].numerator, rates["r0"].denominator) == (want["r0"], want["resected"])
    low, high = response.ci
    assert low < response.percent < high


def test_wilson_interval_matches_the_published_example():
    # Newcombe (1998), Stat Med 17:857, method 3: 81/263 -> 0.2553 to 0.3662.
    low, high = dashboard.wilson(81, 263)
    assert round(low / 100, 4) == 0.2553
    assert round(high / 100, 4) == 0.3662
    assert dashboard.wilson(0, 0) is None
    assert dashboard.wilson(0, 10)[0] == 0.0


def test_ninety_day_mortality_counts_only_patients_followed_ninety_days():
    operated = date(2026, 1, 1)
    rows = [
        {
            "resected": True,
            "surgery_on": operated,
            "last_known_alive": operated + timedelta(days=30),
            "mortality_90d": True,
            "r_status": "R0",
        },
        {
            "resected": True,
            "surgery_on": operated,
            "last_known_alive": operated + timedelta(days=200),
            "mortality_90d": False,
            "r_status": None,
        },
        {
            "resected": True,
            "surgery_on": operated,
            "last_known_alive": operated + timedelta(days=40),
            "mortality_90d": False,
            "r_status": "R1",
        },
    ]
    rates = {rate.key: rate for rate in dashboard.rates(rows)}

    mortality = rates["mortality_90d"]
    assert (mortality.numerator, mortality.denominator) == (1, 2)
    assert "1 resected followed for less than 90 days" in mortality.note
    assert (rates["r0"].numerator, rates["r0"].denominator) == (1, 2)
    assert "1 resected without a pathology margin" in rates["r0"].note


def test_enrollment_by_month_fills_empty_months_and_accumulates():
    rows = [
        {"enrolled_on": date(2026, 1, 5), "cohort": "prospective"},
        {"enrolled_on": date(2026, 1, 20), "cohort": "retrospective"},
        {"enrolled_on": date(2026, 3, 2), "cohort": "prospective"},
    ]
    months = dashboard.enrollment_by_month(rows, today=date(2026, 4, 10))

    assert [m.month for m in months] == [date(2026, m, 1) for m in (1, 2, 3, 4)]
    assert [m.counts for m in months][1] == {"retrospective": 0, "prospective": 0}
    assert months[-1].cumulative == {"retrospective": 1, "prospective": 2, "total": 3}
    svg = dashboard.enrollment_svg(months)
    assert svg.startswith("<svg")
    assert "<title" in svg
    assert "<desc" in svg
    assert dashboard.enrollment_by_month([]) == []


def test_enrollment_chart_escapes_and_says_what_it_shows():
    months = dashboard.enrollment_by_month(
        [{"enrolled_on": date(2026, 1, 5), "cohort": "<script>"}], today=date(2026, 1, 30)
    )
    svg = dashboard.enrollment_svg(months)
    assert "<script>" not in svg
    assert "2026-01" in svg


def test_site_work_counts_overdue_visits_and_drafts_per_site(
    data_manager, cohort_a, cohort_b, site_a, site_b
):
    board = dashboard.study_dashboard(user=data_manager, today=TODAY)
    work = {w.site.code: w for w in board.sites}

    assert (work["SITEA"].enrolled, work["SITEB"].enrolled) == (20, 7)
    assert work["SITEA"].overdue_visits == expected(20)["overdue"]
    assert work["SITEB"].overdue_visits == expected(7)["overdue"]
    assert work["SITEA"].draft_total == expected(20)["drafts"]
    assert work["SITEA"].draft_forms == [("chemotherapy cycles", expected(20)["drafts"])]


def test_voided_drafts_do_not_count(data_manager, cohort_a):
    from django.utils import timezone

    ChemoCycle.objects.filter(status=FormStatus.DRAFT).update(voided_at=timezone.now())
    board = dashboard.study_dashboard(user=data_manager, today=TODAY)
    assert {w.site.code: w.draft_total for w in board.sites}["SITEA"] == 0


def test_every_crf_model_reaches_its_patient():
    from django.apps import apps

    from trial.models import ClinicalModel

    models = [m for m in apps.get_models() if issubclass(m, ClinicalModel)]
    covered = {m for m, _path in dashboard.clinical_forms()}
    assert set(models) == covered


def test_an_investigator_sees_only_the_patients_of_their_site(investigator, cohort_a, cohort_b):
    board = dashboard.study_dashboard(user=investigator, today=TODAY)
    rows = analysis_rows(user=investigator)
    codes_b = {p.subject_code for p in cohort_b}

    assert board.total == 20
    assert [w.site.code for w in board.sites] == ["SITEA"]
    for stage in dashboard.STAGES:
        members = dashboard.stage_members(user=investigator, key=stage.key)
        assert not codes_b & {m.subject_code for m in members}
    swimmer = figures_data.swimmer_rows(user=investigator, rows=rows)
    assert not codes_b & {row.subject_code for row in swimmer.rows}
    for build in (figures_data.recist_waterfall, figures_data.ca19_9_waterfall):
        assert not codes_b & {v.subject_code for v in build(user=investigator, rows=rows).values}


def test_swimmer_rows_carry_each_patients_journey(statistician, cohort_a):
    rows = analysis_rows(user=statistician)
    data = figures_data.swimmer_rows(user=statistician, rows=rows)
    by_code = {row.subject_code: row for row in data.rows}

    first = by_code[cohort_a[0].subject_code]  # i = 0: chemo, evaluated, resected, alive
    assert first.chemo == (5.0, 5.0 + 3 * 28)
    assert first.evaluations == ((117.0, "PR"),)
    assert first.surgery_day == 117 + 21
    assert first.died is False
    dead = by_code[cohort_a[1].subject_code]  # i = 1 died 5 days ago, enrolled 210 days ago
    assert dead.died is True
    assert dead.follow_up_days == 205
    no_chemo = by_code[cohort_a[9].subject_code]
    assert no_chemo.chemo is None
    assert no_chemo.evaluations == ()
    assert data.left_out == 0


def test_waterfalls_take_the_best_change(statistician, cohort_a):
    rows = analysis_rows(user=statistician)
    recist = figures_data.recist_waterfall(user=statistician, rows=rows)
    values = {v.subject_code: v for v in recist.values}

    assert values[cohort_a[0].subject_code].change_pct == -60.0
    assert values[cohort_a[0].subject_code].response == "PR"
    assert values[cohort_a[9].subject_code].change_pct is None  # no chemotherapy, no scan
    assert recist.with_value == expected(20)["evaluated"]

    patient = cohort_a[0]
    study = ImagingStudy.objects.get(patient=patient)
    ImagingStudy.objects.create(
        patient=patient,
        performed_on=study.performed_on + timedelta(days=60),
        modality=ImagingStudy.Modality.CT,
        non_target=ImagingStudy.NonTarget.PRESENT,
        change_from_baseline_pct=Decimal("-100"),  # after the operation: not a response
        status=DONE,
    )
    ImagingStudy.objects.create(
        patient=patient,
        performed_on=study.performed_on + timedelta(days=10),
        modality=ImagingStudy.Modality.CT,
        non_target=ImagingStudy.NonTarget.PRESENT,
        change_from_baseline_pct=Decimal("-70"),
        status=DONE,
    )
    again = figures_data.recist_waterfall(user=statistician, rows=rows)
    assert {v.subject_code: v.change_pct for v in again.values}[patient.subject_code] == -70.0

    ca = figures_data.ca19_9_waterfall(user=statistician, rows=rows)
    ca_values = {v.subject_code: v.change_pct for v in ca.values}
    assert ca_values[cohort_a[0].subject_code] == -70.0
    assert ca_values[cohort_a[10].subject_code] is None  # i = 10: uninformative baseline
    assert ca.uninformative == 1


def _queries(user, build) -> int:
    """Queries of `build` from cold: no site ids cached on the user, no dataset in the cache
    (analytics/cache.py would otherwise serve the second call without building)."""
    from django.core.cache import cache

    cache.clear()
    user = type(user).objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as context:
        build(user)
    return len(context.captured_queries)


def _everything(user) -> None:
    dashboard.study_dashboard(user=user, today=TODAY)
    rows = analysis_rows(user=user)
    figures_data.swimmer_rows(user=user, rows=rows)
    figures_data.recist_waterfall(user=user, rows=rows)
    figures_data.ca19_9_waterfall(user=user, rows=rows)
    dashboard.stage_members(user=user, key="mdt")


def test_query_count_does_not_grow_with_the_patients(statistician, site_a, investigator):
    build_cohort(site=site_a, count=5, investigator=investigator)
    small = _queries(statistician, _everything)
    build_cohort(site=site_a, count=25, investigator=investigator)
    assert analysis_rows(user=statistician).__len__() == 30
    large = _queries(statistician, _everything)

    assert small == large
    assert large <= 120
