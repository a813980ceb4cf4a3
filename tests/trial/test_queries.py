"""Data queries: the lifecycle and its thread and history, refused steps that change nothing,
who may do what, site scoping, the marker on the form, the list page and the dashboard counts."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories.patients import PatientFactory
from tests.factories.treatments import AdverseEventFactory
from treatments.models import AdverseEvent
from trial.models import DataQuery, QueryMessage, QueryStatus
from trial.queries import (
    query_answer,
    query_close,
    query_raise,
    query_reopen,
    record_patient,
)
from trial.query_selectors import open_queries_by_field, query_age_counts

LIST_URL = "/quality/queries/"


@pytest.fixture
def event(site_a) -> AdverseEvent:
    return AdverseEventFactory(patient=PatientFactory(site=site_a), grade=2)


@pytest.fixture
def event_b(site_b) -> AdverseEvent:
    return AdverseEventFactory(patient=PatientFactory(site=site_b), grade=2)


def _raise(event, monitor, field="onset_on", text="Onset date differs from the chart (3 May)."):
    return query_raise(event, user=monitor, field=field, text=text)


def _snapshot(query: DataQuery) -> tuple:
    query.refresh_from_db()
    return (
        query.status,
        query.closed_at,
        query.messages.count(),
        query.history.count(),
        QueryMessage.history.filter(query_id=query.pk).count(),
    )


# --- the lifecycle ------------------------------------------------------------------------


def test_full_lifecycle_keeps_the_thread_and_the_history(event, monitor, coordinator):
    query = _raise(event, monitor)
    assert (query.status, query.site_id, query.patient_id) == (
        QueryStatus.OPEN,
        event.patient.site_id,
        event.patient_id,
    )
    assert (query.kind, query.field, query.raised_by) == (
        DataQuery.Kind.MANUAL,
        "onset_on",
        monitor,
    )

    query = query_answer(query, user=coordinator, text="Checked the chart: 3 May, corrected.")
    assert query.status == QueryStatus.ANSWERED
    query = query_close(query, user=monitor, text="Thanks.")
    assert query.status == QueryStatus.CLOSED
    assert query.closed_at is not None
    query = query_reopen(query, user=monitor, text="The resolution date needs the same check.")
    assert (query.status, query.closed_at) == (QueryStatus.OPEN, None)
    query = query_close(query, user=monitor)
    assert query.status == QueryStatus.CLOSED

    thread = list(query.messages.order_by("at", "pk"))
    assert [m.action for m in thread] == ["raise", "answer", "close", "reopen", "close"]
    assert [m.author for m in thread] == [monitor, coordinator, monitor, monitor, monitor]
    assert thread[1].text == "Checked the chart: 3 May, corrected."
    # Every change is in the audit history, attributed to whoever made it.
    history = list(query.history.order_by("history_date", "history_id"))
    assert [h.status for h in history] == ["open", "answered", "closed", "open", "closed"]
    assert [h.history_user for h in history] == [
        monitor,
        coordinator,
        monitor,
        monitor,
        monitor,
    ]
    assert QueryMessage.history.filter(query_id=query.pk).count() == 5


def test_a_query_on_the_whole_form_and_on_a_child_record(site_a, monitor):
    event = AdverseEventFactory(patient=PatientFactory(site=site_a))
    query = query_raise(event, user=monitor, field="", text="Is this event a duplicate of #3?")
    assert query.field == ""
    assert record_patient(event) == event.patient


# --- refused steps change nothing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "key"),
    [
        ("no_such_field", "Why?", "field"),
        ("status", "Why?", "field"),  # bookkeeping, not data
        ("version", "Why?", "field"),
        ("onset_on", "   ", "text"),
        ("onset_on", "x" * 1001, "text"),
    ],
)
def test_bad_raise_is_refused_on_its_field_and_saves_nothing(event, monitor, field, text, key):
    with pytest.raises(ValidationError) as caught:
        query_raise(event, user=monitor, field=field, text=text)
    assert key in caught.value.message_dict
    assert not DataQuery.objects.exists()
    assert not QueryMessage.objects.exists()


def test_a_voided_record_cannot_be_queried(event, monitor):
    AdverseEvent.objects.filter(pk=event.pk).update(voided_at=timezone.now())
    event.refresh_from_db()
    with pytest.raises(ValidationError, match="voided"):
        _raise(event, monitor)
    assert not DataQuery.objects.exists()


def test_illegal_transitions_are_refused_and_change_nothing(event, monitor, coordinator):
    query = _raise(event, monitor)
    with pytest.raises(ValidationError, match="already open"):
        query_reopen(query, user=monitor, text="again")
    query_answer(query, user=coordinator, text="Checked.")
    before = _snapshot(query)
    with pytest.raises(ValidationError, match="only an open query can be answered"):
        query_answer(query, user=coordinator, text="Checked twice.")
    assert _snapshot(query) == before
    query_close(query, user=monitor)
    before = _snapshot(query)
    with pytest.raises(ValidationError, match="already closed"):
        query_close(query, user=monitor)
    with pytest.raises(ValidationError, match="only an open query can be answered"):
        query_answer(query, user=coordinator, text="Late answer.")
    with pytest.raises(ValidationError) as caught:
        query_reopen(query, user=monitor, text="")
    assert "text" in caught.value.message_dict
    assert _snapshot(query) == before


def test_answer_needs_a_text(event, monitor, coordinator):
    query = _raise(event, monitor)
    before = _snapshot(query)
    with pytest.raises(ValidationError) as caught:
        query_answer(query, user=coordinator, text="")
    assert "text" in caught.value.message_dict
    assert _snapshot(query) == before


# --- permissions --------------------------------------------------------------------------


def test_who_may_do_what(event, monitor, coordinator, investigator, data_manager, statistician):
    with pytest.raises(PermissionDenied):
        _raise(event, coordinator)
    with pytest.raises(PermissionDenied):
        _raise(event, statistician)
    query = _raise(event, data_manager)  # data managers raise too
    with pytest.raises(PermissionDenied):
        query_answer(query, user=monitor, text="I answer my own question.")
    with pytest.raises(PermissionDenied):
        query_close(query, user=coordinator)
    before = _snapshot(query)
    with pytest.raises(PermissionDenied):
        query_reopen(query, user=investigator, text="x")
    assert _snapshot(query) == before
    query_answer(query, user=investigator, text="Confirmed with the chart.")
    query_close(query, user=monitor)
    assert DataQuery.objects.count() == 1


def test_a_monitor_cannot_raise_on_another_sites_record(event_b, monitor):
    with pytest.raises(PermissionDenied):
        _raise(event_b, monitor)
    assert not DataQuery.objects.exists()


def test_pages_refuse_the_wrong_role_and_change_nothing(event, monitor, coordinator, client_for):
    query = _raise(event, monitor)
    client = client_for(coordinator)
    new_url = f"/quality/records/treatments.adverseevent/{event.pk}/queries/new/"
    assert client.get(new_url).status_code == 403
    assert client.post(new_url, {"field": "", "text": "x"}).status_code == 403
    response = client.post(f"/quality/queries/{query.pk}/", {"action": "close", "text": ""})
    assert response.status_code == 403
    client = client_for(monitor)
    response = client.post(f"/quality/queries/{query.pk}/", {"action": "answer", "text": "Me?"})
    assert response.status_code == 403
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN
    assert query.messages.count() == 1


def test_statisticians_and_site_admins_see_no_queries(statistician, site_admin, client_for):
    for user in (statistician, site_admin):
        assert client_for(user).get(LIST_URL).status_code == 403


def test_other_sites_queries_and_records_are_404(event, event_b, monitor, data_manager, client_for):
    query_b = _raise(event_b, data_manager)
    client = client_for(monitor)
    assert client.get(f"/quality/queries/{query_b.pk}/").status_code == 404
    response = client.post(f"/quality/queries/{query_b.pk}/", {"action": "close", "text": ""})
    assert response.status_code == 404
    new_url = f"/quality/records/treatments.adverseevent/{event_b.pk}/queries/new/"
    assert client.get(new_url).status_code == 404
    assert client.post(new_url, {"field": "", "text": "x"}).status_code == 404
    assert client.get("/quality/records/trial.site/1/queries/new/").status_code == 404
    assert client.get("/quality/records/nope.nope/1/queries/new/").status_code == 404
    query_b.refresh_from_db()
    assert query_b.status == QueryStatus.OPEN
    listed = client.get(LIST_URL)
    assert query_b.patient.subject_code not in listed.content.decode()


# --- the pages ------------------------------------------------------------------------------


def test_raise_answer_and_close_through_the_pages(event, monitor, coordinator, client_for):
    client = client_for(monitor)
    new_url = f"/quality/records/treatments.adverseevent/{event.pk}/queries/new/"
    page = client.get(new_url + "?field=grade")
    assert page.status_code == 200
    assert 'value="grade" selected' in page.content.decode()
    response = client.post(new_url, {"field": "bogus", "text": "x"})
    assert response.status_code == 200  # re-rendered with the error
    assert not DataQuery.objects.exists()
    response = client.post(new_url, {"field": "grade", "text": "Grade 2 or 3? See the notes."})
    query = DataQuery.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/quality/queries/{query.pk}/"

    client = client_for(coordinator)
    thread = client.get(f"/quality/queries/{query.pk}/").content.decode()
    assert "Grade 2 or 3? See the notes." in thread
    assert f"/patients/{event.patient_id}/adverse-events/{event.pk}/" in thread  # the form
    assert 'value="answer"' in thread
    assert 'value="close"' not in thread
    empty = client.post(f"/quality/queries/{query.pk}/", {"action": "answer", "text": ""})
    assert empty.status_code == 200
    assert "Write the answer." in empty.content.decode()
    client.post(f"/quality/queries/{query.pk}/", {"action": "answer", "text": "Grade 3."})
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED

    client = client_for(monitor)
    thread = client.get(f"/quality/queries/{query.pk}/").content.decode()
    assert 'value="close"' in thread
    assert 'value="reopen"' in thread
    assert 'value="answer"' not in thread
    client.post(f"/quality/queries/{query.pk}/", {"action": "close", "text": ""})
    query.refresh_from_db()
    assert query.status == QueryStatus.CLOSED


def test_the_marker_shows_next_to_the_field_on_the_form(event, monitor, coordinator, client_for):
    field_query = _raise(event, monitor, field="grade", text="Grade 2 or 3?")
    form_query = _raise(event, monitor, field="", text="Duplicate of another event?")
    closed = _raise(event, monitor, field="outcome", text="Outcome?")
    query_close(closed, user=monitor)
    page = client_for(coordinator).get(f"/patients/{event.patient_id}/adverse-events/{event.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    # The grade field's marker only (the closed one is gone); the form's own query is listed
    # at the top ("1 open query on this form").
    assert html.count("1 open query</span>") == 1
    assert "1 open query on this form" in html
    assert f'href="/quality/queries/{field_query.pk}/"' in html
    marker = html.index('id="id_grade_queries"')
    assert html.index('name="grade"') < marker < html.index('name="serious"')
    # The whole-form query is listed by the partial the CRF pages include at the top.
    assert f"/quality/queries/{closed.pk}/" not in html
    assert form_query.pk in [q.pk for q in open_queries_by_field(event)[""]]


def test_the_form_looks_queries_up_once_and_only_for_a_saved_record(event, monitor):
    from treatments.forms import AdverseEventForm

    _raise(event, monitor, field="grade", text="?")
    form = AdverseEventForm(instance=event)
    with CaptureQueriesContext(connection) as context:
        assert len(form.fields["grade"].open_queries()) == 1
        assert form.fields["term"].open_queries() == []
        assert form.form_queries() == []
    assert len(context.captured_queries) == 1
    blank = AdverseEventForm(instance=AdverseEvent(patient=event.patient))
    with CaptureQueriesContext(connection) as context:
        assert blank.fields["grade"].open_queries() == []
    assert len(context.captured_queries) == 0


def test_the_form_queries_partial_lists_whole_form_queries(event, monitor, rf):
    from django.template.loader import render_to_string

    from treatments.forms import AdverseEventForm

    query = _raise(event, monitor, field="", text="Is this a duplicate?")
    html = render_to_string(
        "trial/partials/_form_queries.html", {"form": AdverseEventForm(instance=event)}
    )
    assert "Is this a duplicate?" in html
    assert f"/quality/queries/{query.pk}/" in html


def _queries_of_list_page(client) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(LIST_URL + "?sort=-last")
    assert response.status_code == 200
    return len(context.captured_queries)


def test_list_page_runs_the_same_queries_for_5_and_50(
    site_a, monitor, client_for, django_assert_max_num_queries
):
    def make(count: int) -> None:
        for index in range(count):
            event = AdverseEventFactory(patient=PatientFactory(site=site_a))
            query = _raise(event, monitor, field="grade", text=f"Question {index}")
            if index % 2:
                query_close(query, user=monitor, text="ok")
                query_reopen(query, user=monitor, text="not ok")

    client = client_for(monitor)
    make(5)
    small = _queries_of_list_page(client)
    make(45)
    large = _queries_of_list_page(client)
    assert small == large
    with django_assert_max_num_queries(small):
        html = client.get(LIST_URL).content.decode()
    assert "50 queries" in html
    assert "not ok" in html  # the last message


def test_list_filters_and_sorts(site_a, event, monitor, coordinator, client_for):
    first = _raise(event, monitor, text="First")
    second = _raise(
        AdverseEventFactory(patient=PatientFactory(site=site_a)), monitor, text="Second"
    )
    query_answer(second, user=coordinator, text="Answered it")
    DataQuery.objects.filter(pk=first.pk).update(raised_at=timezone.now() - timedelta(days=20))
    client = client_for(monitor)

    def listed(params: str) -> list[int]:
        return [row.query.pk for row in client.get(LIST_URL + params).context["rows"]]

    assert listed("") == [first.pk, second.pk]  # unresolved, oldest first
    assert listed("?sort=-age") == [second.pk, first.pk]
    assert listed("?status=answered") == [second.pk]
    assert listed("?status=open&age=15-30") == [first.pk]
    assert listed("?age=0-7") == [second.pk]
    assert listed("?kind=system") == []
    rows = client.get(LIST_URL).context["rows"]
    assert rows[0].age_days == 20
    assert rows[0].field == "Onset date"


def test_dashboard_counts_unresolved_queries_by_age(
    site_a, site_b, monitor, coordinator, data_manager
):
    today = timezone.localdate()
    ages = {0: "0-7", 7: "0-7", 8: "8-14", 15: "15-30", 30: "15-30", 31: "31+", 90: "31+"}
    for days in ages:
        query = _raise(AdverseEventFactory(patient=PatientFactory(site=site_a)), monitor)
        DataQuery.objects.filter(pk=query.pk).update(
            raised_at=timezone.now() - timedelta(days=days)
        )
    answered = _raise(AdverseEventFactory(patient=PatientFactory(site=site_a)), monitor)
    query_answer(answered, user=coordinator, text="done")
    closed = _raise(AdverseEventFactory(patient=PatientFactory(site=site_a)), monitor)
    query_close(closed, user=monitor)
    _raise(AdverseEventFactory(patient=PatientFactory(site=site_b)), data_manager)  # other site
    with CaptureQueriesContext(connection) as context:
        counts = query_age_counts(user=monitor, today=today)
    assert len(context.captured_queries) <= 2  # the count (and the user's sites, once)
    assert counts.open == {"0-7": 2, "8-14": 1, "15-30": 2, "31+": 2}
    assert counts.answered == {"0-7": 1, "8-14": 0, "15-30": 0, "31+": 0}
    assert query_age_counts(user=data_manager, today=today).open_total == 8


def test_the_study_dashboard_shows_the_query_counts(site_a, monitor, client_for):
    from tests.factories.trial import UserFactory
    from trial.models import Role

    _raise(AdverseEventFactory(patient=PatientFactory(site=site_a)), monitor)
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site_a], username="inv_dash")
    html = client_for(investigator).get("/analytics/").content.decode()
    assert "Data queries not yet closed, by age" in html
    assert "/quality/queries/?status=open&amp;age=0-7" in html
