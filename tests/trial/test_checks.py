"""Automatic checks: each of the four rules raises a system query and closes it when the data
are fixed; re-runs never duplicate (even when a concurrent run got there first); a query a
person closed is not raised again; each rule's run is a fixed number of queries; the
per-save refresher, the daily task and the management command."""

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assessments.checks import CODE as LAB_AFTER_DEATH
from assessments.checks import labs_after_death
from assessments.models import LabPanel
from surgery.checks import CODE as NO_PATHOLOGY
from surgery.checks import operations_without_pathology
from tests.factories.labs import LabPanelFactory
from tests.factories.patients import PatientFactory
from tests.factories.surgery import OperationFactory, PathologyFactory
from tests.factories.treatments import AdverseEventFactory
from tests.factories.visits import ExpectedVisitFactory
from treatments.checks import CODE as SEVERE_AE
from treatments.checks import severe_events_without_action
from treatments.models import AdverseEvent
from trial import checks, queries
from trial.checks import run_checks
from trial.derived import _REFRESHERS
from trial.models import DataQuery, QueryMessage, QueryStatus
from trial.queries import Finding, query_answer, query_close, query_reopen, system_query_sync
from trial.tasks import run_data_checks
from trial.validation import fmt
from visits.checks import CODE as VISIT_OVERDUE
from visits.checks import visits_overdue
from visits.models import ExpectedVisit, VisitStatus

TODAY = date(2026, 11, 24)
DIED_ON = date(2026, 9, 1)


def _system(rule: str) -> list[DataQuery]:
    return list(DataQuery.objects.filter(kind=DataQuery.Kind.SYSTEM, rule=rule).order_by("pk"))


def _assert_auto_closed(query: DataQuery) -> None:
    query.refresh_from_db()
    assert query.status == QueryStatus.CLOSED
    assert query.closed_at is not None
    last = query.messages.order_by("at", "pk").last()
    assert (last.action, last.author) == (QueryMessage.Action.CLOSE, None)
    assert "corrected" in last.text
    assert query.history.order_by("history_date").last().history_user is None


# --- the four rules -------------------------------------------------------------------------


def _dead_patient(site):
    return PatientFactory(site=site, died_on=DIED_ON)


def test_lab_panel_after_death_raises_and_closes_when_fixed(site_a):
    patient = _dead_patient(site_a)
    before = LabPanelFactory(patient=patient, sampled_on=DIED_ON - timedelta(days=3))
    after = LabPanelFactory(patient=patient, sampled_on=DIED_ON + timedelta(days=2))
    LabPanelFactory(patient=PatientFactory(site=site_a), sampled_on=DIED_ON + timedelta(days=9))

    results = run_checks(today=TODAY)
    assert results[LAB_AFTER_DEATH].raised == 1
    (query,) = _system(LAB_AFTER_DEATH)
    assert (query.object_id, query.field, query.site_id, query.patient_id) == (
        after.pk,
        "sampled_on",
        site_a.pk,
        patient.pk,
    )
    assert query.raised_by is None
    assert fmt(after.sampled_on) in query.text
    assert fmt(DIED_ON) in query.text
    assert before.pk != query.object_id

    after.sampled_on = DIED_ON - timedelta(days=1)
    after.save()
    assert run_checks(today=TODAY)[LAB_AFTER_DEATH].closed == 1
    _assert_auto_closed(query)


def test_a_voided_panel_is_no_longer_found(site_a):
    from django.utils import timezone

    panel = LabPanelFactory(patient=_dead_patient(site_a), sampled_on=DIED_ON + timedelta(days=1))
    run_checks(today=TODAY)
    LabPanel.objects.filter(pk=panel.pk).update(voided_at=timezone.now())
    run_checks(today=TODAY)
    _assert_auto_closed(_system(LAB_AFTER_DEATH)[0])


def test_operation_without_pathology_after_30_days(site_a):
    operation = OperationFactory(patient=PatientFactory(site=site_a), operated_on=date(2026, 4, 20))
    assert run_checks(today=date(2026, 5, 19))[NO_PATHOLOGY].raised == 0  # 29 days
    assert run_checks(today=date(2026, 5, 20))[NO_PATHOLOGY].raised == 1  # 30 days
    (query,) = _system(NO_PATHOLOGY)
    assert (query.object_id, query.field) == (operation.pk, "")
    assert "No pathology report 30 days after" in query.text

    PathologyFactory(operation=operation, reported_on=date(2026, 5, 25))
    assert run_checks(today=date(2026, 5, 26))[NO_PATHOLOGY].closed == 1
    _assert_auto_closed(query)


def test_severe_adverse_event_without_action(site_a):
    patient = PatientFactory(site=site_a)
    event = AdverseEventFactory(patient=patient, grade=3, action_taken=AdverseEvent.Action.NONE)
    AdverseEventFactory(patient=patient, grade=2, action_taken=AdverseEvent.Action.NONE)
    AdverseEventFactory(patient=patient, grade=4, action_taken=AdverseEvent.Action.DELAYED)
    run_checks(today=TODAY)
    (query,) = _system(SEVERE_AE)
    assert (query.object_id, query.field) == (event.pk, "action_taken")
    assert "grade 3" in query.text

    event.action_taken = AdverseEvent.Action.DOSE_REDUCED
    event.save()
    run_checks(today=TODAY)
    _assert_auto_closed(query)


def test_visit_overdue_for_more_than_30_days(site_a):
    patient = PatientFactory(site=site_a)
    late = ExpectedVisitFactory(
        patient=patient, target_on=TODAY - timedelta(days=40), status=VisitStatus.OVERDUE
    )
    late.window_end = TODAY - timedelta(days=31)
    late.save()
    ExpectedVisitFactory(  # 30 days: not yet
        patient=patient,
        target_on=TODAY - timedelta(days=37),
        window_end=TODAY - timedelta(days=30),
        status=VisitStatus.OVERDUE,
    )
    ExpectedVisitFactory(  # done late: nothing to ask
        patient=patient,
        target_on=TODAY - timedelta(days=90),
        window_end=TODAY - timedelta(days=83),
        status=VisitStatus.DONE,
    )
    run_checks(today=TODAY)
    (query,) = _system(VISIT_OVERDUE)
    assert query.object_id == late.pk
    assert "overdue by 31 days" in query.text

    ExpectedVisit.objects.filter(pk=late.pk).update(status=VisitStatus.MISSED)
    run_checks(today=TODAY)
    _assert_auto_closed(query)


def test_the_retrospective_cohort_gets_no_overdue_visit_queries(site_a):
    """Chart-abstracted patients: a protocol visit without a form was not collected, not late."""
    patient = PatientFactory(site=site_a, cohort="retrospective")
    ExpectedVisitFactory(
        patient=patient,
        target_on=TODAY - timedelta(days=400),
        window_end=TODAY - timedelta(days=393),
        status=VisitStatus.OVERDUE,
    )
    assert list(visits_overdue([patient.pk], TODAY)) == []
    run_checks(today=TODAY)
    assert _system(VISIT_OVERDUE) == []


# --- no duplicates, races, people's decisions ------------------------------------------------


def test_reruns_never_duplicate(site_a):
    event = AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    first = run_checks(today=TODAY)[SEVERE_AE]
    second = run_checks(today=TODAY)[SEVERE_AE]
    third = run_checks([event.patient_id], today=TODAY)[SEVERE_AE]
    assert (first.raised, second.raised, third.raised) == (1, 0, 0)
    assert (second.kept, third.kept) == (1, 1)
    assert len(_system(SEVERE_AE)) == 1
    assert QueryMessage.objects.count() == 1


def test_an_answered_system_query_stays_until_the_data_are_fixed(site_a, coordinator):
    event = AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    run_checks(today=TODAY)
    (query,) = _system(SEVERE_AE)
    query_answer(query, user=coordinator, text="Looking at the chart.")
    run_checks(today=TODAY)
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED
    event.action_taken = AdverseEvent.Action.WITHDRAWN
    event.save()
    run_checks(today=TODAY)
    _assert_auto_closed(query)


def test_a_race_with_a_concurrent_run_keeps_one_query(site_a, monkeypatch):
    event = AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    finding = Finding(record=event, field="action_taken", text="No action.")
    real = queries._closed_by_a_person

    def concurrent_run_first(rule, patient_ids):
        # Another run commits its query between this run's read and its insert.
        monkeypatch.setattr(queries, "_closed_by_a_person", real)
        system_query_sync(rule, [finding], patient_ids=patient_ids)
        return real(rule, patient_ids)

    monkeypatch.setattr(queries, "_closed_by_a_person", concurrent_run_first)
    result = system_query_sync(SEVERE_AE, [finding], patient_ids=[event.patient_id])
    assert (result.raised, result.kept) == (0, 1)
    assert len(_system(SEVERE_AE)) == 1
    assert QueryMessage.objects.count() == 1


def test_a_query_a_monitor_closed_is_not_raised_again(site_a, monitor):
    AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    run_checks(today=TODAY)
    (query,) = _system(SEVERE_AE)
    query_close(query, user=monitor, text="Confirmed with the investigator: no change.")
    assert run_checks(today=TODAY)[SEVERE_AE].raised == 0
    assert len(_system(SEVERE_AE)) == 1
    # Re-opened by the monitor, it is the one open query again (no second one on re-runs).
    query_reopen(query, user=monitor, text="Please record the action after all.")
    run_checks(today=TODAY)
    assert [q.status for q in _system(SEVERE_AE)] == [QueryStatus.OPEN]


def test_a_fixed_then_broken_record_is_asked_again(site_a):
    event = AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    run_checks(today=TODAY)
    event.action_taken = AdverseEvent.Action.DELAYED
    event.save()
    run_checks(today=TODAY)
    event.action_taken = AdverseEvent.Action.NONE
    event.save()
    run_checks(today=TODAY)
    assert [q.status for q in _system(SEVERE_AE)] == [QueryStatus.CLOSED, QueryStatus.OPEN]


def test_a_run_for_some_patients_leaves_the_others_queries_alone(site_a):
    one = AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    other = AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    run_checks(today=TODAY)
    AdverseEvent.objects.filter(pk=other.pk).update(action_taken=AdverseEvent.Action.DELAYED)
    run_checks([one.patient_id], today=TODAY)
    assert {q.object_id: q.status for q in _system(SEVERE_AE)} == {
        one.pk: QueryStatus.OPEN,
        other.pk: QueryStatus.OPEN,
    }
    run_checks([other.patient_id], today=TODAY)
    assert {q.object_id: q.status for q in _system(SEVERE_AE)}[other.pk] == QueryStatus.CLOSED


# --- fixed number of queries ------------------------------------------------------------------


def _make(site, count: int) -> list[int]:
    ids = []
    for _index in range(count):
        patient = _dead_patient(site)
        ids.append(patient.pk)
        LabPanelFactory(patient=patient, sampled_on=DIED_ON + timedelta(days=1))
        OperationFactory(patient=patient, operated_on=date(2026, 4, 20))
        AdverseEventFactory(patient=patient, grade=3, action_taken=AdverseEvent.Action.NONE)
        ExpectedVisitFactory(
            patient=patient,
            code="C02",
            target_on=TODAY - timedelta(days=60),
            window_end=TODAY - timedelta(days=50),
            status=VisitStatus.OVERDUE,
        )
    return ids


@pytest.mark.parametrize(
    "run",
    [labs_after_death, operations_without_pathology, severe_events_without_action, visits_overdue],
)
def test_each_rule_runs_a_fixed_number_of_queries(site_a, run):
    def count(ids) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as context:
            found = list(run(ids, TODAY))
            for finding in found:
                queries.record_patient(finding.record).site_id  # noqa: B018 - what the sync reads
        return len(found), len(context.captured_queries)

    few = _make(site_a, 2)
    many = few + _make(site_a, 8)
    assert count(few) == (2, 1)
    assert count(many) == (10, 1)
    assert count(None) == (10, 1)


def test_a_rerun_with_nothing_new_is_a_fixed_number_of_queries(site_a):
    def rerun() -> int:
        run_checks(today=TODAY)
        with CaptureQueriesContext(connection) as context:
            run_checks(today=TODAY)
        return len(context.captured_queries)

    _make(site_a, 2)
    few = rerun()
    _make(site_a, 8)
    assert rerun() == few
    assert DataQuery.objects.count() == 40


# --- triggers ---------------------------------------------------------------------------------


def test_the_refresher_runs_after_the_calendar():
    refresher = _REFRESHERS["checks"]
    assert refresher.order == 950 > _REFRESHERS["visits"].order
    assert refresher.batch is not None
    assert {c.code for c in checks.registered_checks()} >= {
        LAB_AFTER_DEATH,
        NO_PATHOLOGY,
        SEVERE_AE,
        VISIT_OVERDUE,
    }


def test_a_save_through_a_service_runs_the_patients_checks(site_a, investigator):
    from tests.factories.surgery import operated_patient

    # Operated on 20 Apr 2026: by the real clock, long more than 30 days ago.
    operation = operated_patient(site=site_a, investigator=investigator)
    (query,) = _system(NO_PATHOLOGY)
    assert query.object_id == operation.pk
    other = AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    assert not _system(SEVERE_AE)  # only the saved patient's records were checked
    assert other.pk


def test_the_daily_task_and_the_command(site_a):
    AdverseEventFactory(
        patient=PatientFactory(site=site_a), grade=3, action_taken=AdverseEvent.Action.NONE
    )
    result = run_data_checks.delay(day=TODAY.isoformat()).get()
    assert result[SEVERE_AE] == {"raised": 1, "closed": 0, "kept": 0}
    out = StringIO()
    call_command("run_checks", "--today", TODAY.isoformat(), stdout=out)
    assert f"{SEVERE_AE}: 0 raised, 0 closed, 1 still open" in out.getvalue()
    assert len(_system(SEVERE_AE)) == 1


def test_beat_runs_the_data_checks_daily():
    from celery.schedules import crontab

    from config.celery import app
    from trial.tasks import run_data_checks

    entry = app.conf.beat_schedule["run-data-checks"]
    assert entry["task"] == run_data_checks.name == "trial.tasks.run_data_checks"
    assert entry["schedule"] == crontab(hour=2, minute=0)
