"""The daily reminders (visits.reminders): what is planned for whom, the digest e-mail, the
idempotent log, edits between planning and sending, mail failures, the command and the admin.

The calendar rows are made directly (tests/visits/reminder_fixtures.py), so these tests do not
depend on the refresh rules; the last test goes from real records to a reminder.
"""

from datetime import date, timedelta
from io import StringIO
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction

from tests.factories.patients import PatientIdentityFactory
from tests.factories.trial import SiteFactory
from tests.visits.reminder_fixtures import (
    DAY,
    TODAY,
    FlakyEmailBackend,
    coordinator_at,
    investigator_at,
    patient_at,
    staff,
    stored_visit,
)
from trial.models import Role
from trial.validation import fmt
from visits import reminders
from visits.models import ExpectedVisit, Reminder, VisitKind, VisitStatus

DUE_SOON, OVERDUE, MDT_PENDING = (
    Reminder.Reason.DUE_SOON,
    Reminder.Reason.OVERDUE,
    Reminder.Reason.MDT_PENDING,
)


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.SITE_URL = "https://edc.example.org"
    settings.REMINDER_DUE_WITHIN_DAYS = 3
    settings.MDT_PENDING_DAYS = 14
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def coord(site_a):
    return coordinator_at("coord_mail_a", site_a)


@pytest.fixture
def inv(site_a):
    return investigator_at("inv_mail_a", site_a)


def _planned(today=TODAY):
    return {
        (p.subject_code, p.visit_code, p.reason, p.recipient_id)
        for p in reminders.reminders_plan(today=today)
    }


# --- the plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opens", "closes", "status", "expected"),
    [
        (4, 10, None, set()),  # opens in 4 days: not yet
        (3, 10, None, {DUE_SOON}),  # opens in 3 days: due soon
        (1, 10, None, {DUE_SOON}),
        (0, 10, None, {DUE_SOON}),  # opens today
        (-5, 2, None, {DUE_SOON}),  # open
        (-10, 0, None, {DUE_SOON}),  # closes today: still due
        (-10, -1, None, {OVERDUE}),  # closed yesterday
        (-40, -30, None, {OVERDUE}),  # long overdue: still reminded until closed as missed
        # Stored "upcoming" by a refresh weeks ago, read on today: overdue.
        (-40, -30, VisitStatus.UPCOMING, {OVERDUE}),
        # Done, missed and not applicable are never reminded, whatever their window.
        (-10, -1, VisitStatus.DONE, set()),
        (-10, -1, VisitStatus.MISSED, set()),
        (-5, 2, VisitStatus.NOT_APPLICABLE, set()),
        (1, 10, VisitStatus.DONE, set()),
    ],
)
def test_due_soon_and_overdue_selection(site_a, coord, opens, closes, status, expected):
    patient = patient_at(site_a, subject_code="SITEA-0001")
    stored_visit(patient, opens=opens, closes=closes, status=status)
    reasons = {p.reason for p in reminders.reminders_plan(today=TODAY)}
    assert reasons == expected


@pytest.mark.parametrize(
    ("referred_days_ago", "coordinator_reason", "investigator_reasons"),
    [
        (13, DUE_SOON, set()),
        (14, DUE_SOON, {MDT_PENDING}),  # 14 days after the referral, the window's last day
        (20, OVERDUE, {MDT_PENDING}),
    ],
)
def test_an_mdt_not_held_14_days_after_the_referral_goes_to_the_investigators(
    site_a, coord, inv, referred_days_ago, coordinator_reason, investigator_reasons
):
    patient = patient_at(site_a)
    start = -referred_days_ago
    stored_visit(patient, code="MDT1", kind=VisitKind.MDT, number=1, opens=start, closes=start + 14)
    plan = reminders.reminders_plan(today=TODAY)
    assert {p.reason for p in plan if p.recipient_id == coord.pk} == {coordinator_reason}
    assert {p.reason for p in plan if p.recipient_id == inv.pk} == investigator_reasons


def test_an_mdt_decided_is_not_pending(site_a, coord, inv):
    patient = patient_at(site_a)
    stored_visit(patient, code="MDT1", kind=VisitKind.MDT, opens=-20, closes=-6, status="done")
    assert reminders.reminders_plan(today=TODAY) == []


def test_a_site_s_visits_go_only_to_that_site_s_coordinators(site_a, site_b, coord):
    coord_b = coordinator_at("coord_mail_b", site_b)
    both = coordinator_at("coord_both", site_a, site_b)
    stored_visit(patient_at(site_a, subject_code="SITEA-0001"), closes=-1)
    stored_visit(patient_at(site_b, subject_code="SITEB-0001"), closes=-1)
    assert _planned() == {
        ("SITEA-0001", "C03", OVERDUE, coord.pk),
        ("SITEA-0001", "C03", OVERDUE, both.pk),
        ("SITEB-0001", "C03", OVERDUE, coord_b.pk),
        ("SITEB-0001", "C03", OVERDUE, both.pk),
    }


def test_inactive_users_users_without_email_and_other_roles_are_not_reminded(site_a, coord):
    coordinator_at("coord_gone", site_a, is_active=False)
    coordinator_at("coord_no_mail", site_a, email="")
    staff("stat_mail", Role.STATISTICIAN, site_a)
    staff("mon_mail", Role.MONITOR, site_a)
    stored_visit(patient_at(site_a), closes=-1)
    assert {p.recipient_id for p in reminders.reminders_plan(today=TODAY)} == {coord.pk}


def test_visits_of_an_inactive_site_are_not_reminded(coord, site_a):
    closed = SiteFactory(code="GONE", is_active=False)
    coordinator_at("coord_gone_site", closed)
    stored_visit(patient_at(closed), closes=-1)
    assert reminders.reminders_plan(today=TODAY) == []


def test_the_plan_runs_two_queries_whatever_the_number_of_visits(
    site_a, coord, django_assert_num_queries
):
    for number in range(12):
        stored_visit(patient_at(site_a), code=f"C{number + 1:02d}", closes=number - 6)
    with django_assert_num_queries(2):
        plan = reminders.reminders_plan(today=TODAY)
    assert len(plan) == 12


# --- the digest -----------------------------------------------------------------------------


def test_one_digest_per_recipient_with_codes_dates_links_and_no_phi(site_a, coord):
    patient = patient_at(site_a, subject_code="SITEA-0007")
    identity = PatientIdentityFactory(
        patient=patient,
        full_name="王秀英",
        hospital_record_number="MRN-7788123",
        date_of_birth=date(1958, 2, 9),
        phone="13912345678",
    )
    stored_visit(patient, code="C03", opens=-12, closes=-5)  # overdue by 5 days
    stored_visit(patient, code="E1", kind=VisitKind.EVALUATION, number=1, opens=2, closes=20)
    stats = reminders.reminders_send(today=TODAY)

    assert (stats.mails_sent, stats.reminders_sent) == (1, 2)
    [message] = mail.outbox
    assert message.to == [coord.email]
    assert "SITEA" in message.subject
    assert "1 overdue" in message.subject
    assert "1 due soon" in message.subject
    html = message.alternatives[0][0]
    assert message.alternatives[0][1] == "text/html"
    for body in (message.body, html):
        assert "SITEA-0007" in body
        assert "Cycle 3 (C03)" in body
        assert "Evaluation 1 (E1)" in body
        assert f"https://edc.example.org/patients/{patient.pk}/" in body
        assert f"https://edc.example.org/visits/worklist/?site={site_a.pk}" in body
        # The overdue visit's window, as dates are written everywhere (trial.validation.fmt).
        assert fmt(date(2026, 11, 12)) in body
        assert fmt(date(2026, 11, 19)) in body
        for phi in ("王秀英", identity.hospital_record_number, "1958", "13912345678"):
            assert phi not in body
    assert "5 days overdue" in message.body
    for phi in ("王秀英", identity.hospital_record_number):
        assert phi not in message.subject


def test_overdue_visits_come_first_most_overdue_first(site_a, coord):
    stored_visit(patient_at(site_a, subject_code="SITEA-0001"), opens=1, closes=9)
    stored_visit(patient_at(site_a, subject_code="SITEA-0002"), opens=-9, closes=-2)
    stored_visit(patient_at(site_a, subject_code="SITEA-0003"), opens=-30, closes=-20)
    reminders.reminders_send(today=TODAY)
    body = mail.outbox[0].body
    assert body.index("SITEA-0003") < body.index("SITEA-0002") < body.index("SITEA-0001")
    assert body.index("Overdue (2)") < body.index("Due within 3 days (1)")


def test_a_coordinator_and_investigator_gets_one_digest_with_both(site_a):
    both = staff("coord_inv", Role.COORDINATOR, site_a)
    both.groups.add(*investigator_at("inv_helper", site_a).groups.all())
    stored_visit(patient_at(site_a), code="MDT1", kind=VisitKind.MDT, opens=-20, closes=-6)
    stats = reminders.reminders_send(today=TODAY)
    mine = [m for m in mail.outbox if m.to == [both.email]]
    assert len(mine) == 1
    assert "awaiting an MDT decision" in mine[0].subject
    assert [d.counts for d in stats.digests if d.recipient_id == both.pk] == [
        {OVERDUE: 1, MDT_PENDING: 1, DUE_SOON: 0}
    ]


# --- idempotency ----------------------------------------------------------------------------


def test_running_twice_the_same_day_sends_nothing_new(site_a, site_b, coord):
    coord_b = coordinator_at("coord_mail_b", site_b)
    stored_visit(patient_at(site_a), closes=-1)
    stored_visit(patient_at(site_a), code="C04", opens=2)
    stored_visit(patient_at(site_b), closes=-1)

    first = reminders.reminders_send(today=TODAY)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([coord.email, coord_b.email])
    assert (first.mails_sent, first.reminders_sent, first.queued) == (2, 3, 3)

    second = reminders.reminders_send(today=TODAY)
    assert len(mail.outbox) == 2
    assert (second.mails_sent, second.reminders_sent, second.queued) == (0, 0, 0)
    assert Reminder.objects.count() == 3
    assert set(Reminder.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_visit_that_becomes_due_later_the_same_day_is_sent_alone(site_a, coord):
    stored_visit(patient_at(site_a, subject_code="SITEA-0001"), closes=-1)
    reminders.reminders_send(today=TODAY)
    stored_visit(patient_at(site_a, subject_code="SITEA-0002"), opens=-1)  # a cycle just given
    stats = reminders.reminders_send(today=TODAY)
    assert (stats.mails_sent, stats.reminders_sent) == (1, 1)
    latest = mail.outbox[-1].body
    assert "SITEA-0002" in latest
    assert "SITEA-0001" not in latest


def test_the_next_day_reminds_again_what_is_still_open(site_a, coord):
    stored_visit(patient_at(site_a), closes=-1)
    reminders.reminders_send(today=TODAY)
    stats = reminders.reminders_send(today=TODAY + DAY)
    assert stats.reminders_sent == 1
    assert list(Reminder.objects.order_by("day").values_list("day", flat=True)) == [
        TODAY,
        TODAY + DAY,
    ]


def _duplicate_refused(site_a, coord):
    patient = patient_at(site_a)
    row = {
        "day": TODAY,
        "reason": OVERDUE,
        "patient": patient,
        "site": site_a,
        "visit_code": "C03",
        "target_on": TODAY,
        "window_end": TODAY,
        "recipient": coord,
    }
    Reminder.objects.create(**row)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reminder.objects.create(**row)
    assert Reminder.objects.count() == 1


def test_the_unique_constraint_refuses_a_duplicate_reminder(site_a, coord):
    _duplicate_refused(site_a, coord)


@pytest.mark.postgres
def test_the_unique_constraint_refuses_a_duplicate_reminder_on_postgresql(site_a, coord):
    _duplicate_refused(site_a, coord)


# --- edits between planning and sending -----------------------------------------------------


def test_a_visit_done_after_planning_is_not_sent_and_its_row_is_cancelled(site_a, coord):
    done_later = stored_visit(patient_at(site_a, subject_code="SITEA-0001"), closes=-1)
    stored_visit(patient_at(site_a, subject_code="SITEA-0002"), closes=-2)
    queued = reminders.reminders_queue(today=TODAY)
    assert queued.queued == 2
    # The cycle is entered; the calendar marks the visit done before the mail goes out.
    ExpectedVisit.objects.filter(pk=done_later.pk).update(status=VisitStatus.DONE, done_on=TODAY)

    stats = reminders.reminders_send(today=TODAY)
    assert (stats.reminders_sent, stats.cancelled) == (1, 1)
    body = mail.outbox[0].body
    assert "SITEA-0002" in body
    assert "SITEA-0001" not in body
    cancelled = Reminder.objects.get(patient=done_later.patient)
    assert (cancelled.status, cancelled.attempts, cancelled.sent_at) == ("cancelled", 0, None)


def test_a_cancelled_reminder_planned_again_is_sent(site_a, coord):
    visit = stored_visit(patient_at(site_a), closes=-1)
    ExpectedVisit.objects.filter(pk=visit.pk).update(status=VisitStatus.MISSED)
    reminders.reminders_queue(today=TODAY)  # nothing planned: nothing queued
    reminders.reminders_queue(today=TODAY)
    ExpectedVisit.objects.filter(pk=visit.pk).update(status=VisitStatus.OVERDUE)
    reminders.reminders_queue(today=TODAY)
    ExpectedVisit.objects.filter(pk=visit.pk).update(status=VisitStatus.MISSED)
    assert reminders.reminders_queue(today=TODAY).cancelled == 1
    ExpectedVisit.objects.filter(pk=visit.pk).update(status=VisitStatus.OVERDUE)  # reopened
    stats = reminders.reminders_send(today=TODAY)
    assert stats.reminders_sent == 1
    assert Reminder.objects.get().status == "sent"


def test_a_coordinator_deactivated_after_planning_gets_nothing(site_a, coord):
    stored_visit(patient_at(site_a), closes=-1)
    reminders.reminders_queue(today=TODAY)
    coord.is_active = False
    coord.save()
    stats = reminders.reminders_send(today=TODAY)
    assert (stats.mails_sent, stats.cancelled) == (0, 1)
    assert mail.outbox == []


# --- mail failures --------------------------------------------------------------------------


def test_a_mail_failure_marks_the_rows_failed_serves_the_others_and_raises(
    site_a, site_b, coord, settings
):
    settings.EMAIL_BACKEND = "tests.visits.reminder_fixtures.FlakyEmailBackend"
    FlakyEmailBackend.reset(failures=1)
    coord_b = coordinator_at("coord_mail_b", site_b)
    stored_visit(patient_at(site_a), closes=-1)
    stored_visit(patient_at(site_b), closes=-1)

    with pytest.raises(SMTPException, match="421"):
        reminders.reminders_send(today=TODAY)
    failed = Reminder.objects.get(recipient=coord)  # the first recipient, by id
    assert (failed.status, failed.attempts, failed.sent_at) == ("failed", 1, None)
    assert failed.last_error == "SMTPException: 421 Service not available, closing channel"
    assert Reminder.objects.get(recipient=coord_b).status == "sent"
    assert [m.to for m in mail.outbox] == [[coord_b.email]]

    # The next run (a retry) sends only the failed digest.
    stats = reminders.reminders_send(today=TODAY)
    assert [d.username for d in stats.digests] == [coord.username]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == ("sent", 2, "")
    assert len(mail.outbox) == 2


# --- the command ----------------------------------------------------------------------------


def test_send_reminders_command_prints_counts_and_sends(site_a, coord, monkeypatch):
    refreshed = []
    monkeypatch.setattr(
        "visits.services.calendar_refresh",
        lambda **kwargs: refreshed.append(kwargs) or type("Stats", (), {"patients": 0})(),
    )
    stored_visit(patient_at(site_a, subject_code="SITEA-0003"), closes=-1)
    out = StringIO()
    call_command("send_reminders", "--date", "2026-11-24", stdout=out)
    text = out.getvalue()
    assert refreshed == [{"today": TODAY}]
    assert "coord_mail_a <coord_mail_a@hospital.example> [SITEA]: 1 reminders" in text
    assert "1 sent in 1 e-mails" in text
    assert len(mail.outbox) == 1

    out = StringIO()
    call_command("send_reminders", "--date", "2026-11-24", stdout=out)
    assert "0 sent in 0 e-mails" in out.getvalue()
    assert len(mail.outbox) == 1


def test_send_reminders_dry_run_sends_and_writes_nothing(site_a, coord, monkeypatch):
    monkeypatch.setattr(
        "visits.services.calendar_refresh",
        lambda **kwargs: pytest.fail("a dry run refreshes nothing"),
    )
    stored_visit(patient_at(site_a, subject_code="SITEA-0003"), closes=-2)
    out = StringIO()
    call_command("send_reminders", "--date", "2026-11-24", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "coord_mail_a <coord_mail_a@hospital.example>: 1 reminders (overdue 1)" in text
    assert "overdue SITEA-0003 C03" in text
    assert "1 reminders in 1 e-mails would be sent; nothing was sent" in text
    assert mail.outbox == []
    assert not Reminder.objects.exists()


def test_send_reminders_fails_loudly_when_mail_cannot_be_sent(site_a, coord, settings, monkeypatch):
    from django.core.management.base import CommandError

    monkeypatch.setattr(
        "visits.services.calendar_refresh", lambda **k: type("S", (), {"patients": 0})()
    )
    settings.EMAIL_BACKEND = "tests.visits.reminder_fixtures.FlakyEmailBackend"
    FlakyEmailBackend.reset(failures=5)
    stored_visit(patient_at(site_a), closes=-1)
    with pytest.raises(CommandError, match="run the command again"):
        call_command("send_reminders", "--date", "2026-11-24", stdout=StringIO())
    assert Reminder.objects.get().status == "failed"


# --- the admin ------------------------------------------------------------------------------


def test_the_site_admin_sees_the_reminder_log_of_their_site_only(
    client_for, site_admin, site_a, site_b, coord
):
    coordinator_at("coord_mail_b", site_b)
    stored_visit(patient_at(site_a, subject_code="SITEA-0042"), closes=-1)
    stored_visit(patient_at(site_b, subject_code="SITEB-0099"), closes=-1)
    reminders.reminders_send(today=TODAY)
    client = client_for(site_admin)

    page = client.get("/admin/visits/reminder/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "SITEA-0042" in content
    assert "SITEB-0099" not in content
    assert "SITEB" not in content  # not even in the site filter

    found = client.get("/admin/visits/reminder/", {"q": "SITEA-0042"})
    assert "SITEA-0042" in found.content.decode()
    other = Reminder.objects.get(site=site_b)
    assert client.get(f"/admin/visits/reminder/{other.pk}/change/").status_code == 302
    mine = Reminder.objects.get(site=site_a)
    detail = client.get(f"/admin/visits/reminder/{mine.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content  # read-only
    assert client.get("/admin/visits/reminder/add/").status_code == 403
    assert client.get(f"/admin/visits/reminder/{mine.pk}/delete/").status_code == 403


def test_a_coordinator_has_no_admin_access_to_the_log(client_for, coord):
    response = client_for(coord).get("/admin/visits/reminder/")
    assert response.status_code == 302  # not staff: to the admin login


# --- from real records to a reminder --------------------------------------------------------


def test_from_an_enrollment_to_a_baseline_reminder(site_a, coord):
    from tests.factories.patients import enrolled_patient

    today = date(2026, 6, 1)
    patient = enrolled_patient(site=site_a, user=coord, today=today)  # enrolled on today − 8
    stats = reminders.reminders_daily(today=today)
    assert stats.refreshed_patients >= 1
    assert ExpectedVisit.objects.filter(patient=patient, code="BL").exists()
    codes = set(Reminder.objects.filter(patient=patient).values_list("visit_code", "reason"))
    assert ("BL", DUE_SOON) in codes  # the baseline is due within 14 days of the enrollment
    assert len(mail.outbox) == 1
    assert "SITEA" in mail.outbox[0].subject

    # A week later the baseline's window has closed without the form: overdue.
    reminders.reminders_daily(today=today + timedelta(days=7))
    assert Reminder.objects.get(day=today + timedelta(days=7), visit_code="BL").reason == OVERDUE
    assert patient.subject_code in mail.outbox[0].body
    assert "Baseline (BL)" in mail.outbox[0].body


def test_a_long_digest_lists_the_most_overdue_and_counts_the_rest(site_a, coord, monkeypatch):
    """A digest lists at most DIGEST_ROWS visits per section, most overdue first, says how many
    more wait on the worklist, and still marks every reminder sent (one UPDATE, not one CASE
    per row)."""
    monkeypatch.setattr(reminders, "DIGEST_ROWS", 3)
    for number in range(1, 6):
        stored_visit(
            patient_at(site_a, subject_code=f"SITEA-{number:04d}"),
            opens=-30 - number,
            closes=-10 - number,
        )
    stats = reminders.reminders_send(today=TODAY)

    assert stats.reminders_sent == 5
    assert Reminder.objects.filter(status=Reminder.Status.SENT, attempts=1).count() == 5
    [message] = mail.outbox
    for body in (message.body, message.alternatives[0][0]):
        assert "Overdue (5)" in body
        assert "and 2 more: see the worklist" in body
        for listed in ("SITEA-0005", "SITEA-0004", "SITEA-0003"):
            assert listed in body
        for left in ("SITEA-0002", "SITEA-0001"):
            assert left not in body
