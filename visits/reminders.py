"""The daily reminder run: which visits to remind whom of, and one digest e-mail per person.

Celery-free, so the beat task (`visits.tasks.send_daily_reminders`) and the cron command
(`manage.py send_reminders`) share it. The run, for a day `today`:

1. `reminders_plan` reads the CURRENT calendar (`ExpectedVisit`, each open visit's status
   recomputed on `today` with `protocol.open_status`; done, missed and not-applicable visits
   are never reminded) and lists, per recipient:
   - due_soon: a visit not yet overdue whose window opens within REMINDER_DUE_WITHIN_DAYS (3)
     days or is already open, i.e. window_start <= today + 3 and window_end >= today. It is
     listed every day from three days before its window opens until the window closes;
   - overdue: a visit whose window closed before `today` (window_end < today). It is listed
     every day until the visit is done or a coordinator closes it as missed;
   both to the active coordinators of the visit's site who have an e-mail address; and
   - mdt_pending: an MDT visit not done MDT_PENDING_DAYS (14) days or more after the
     referral (window_start <= today − 14), to the site's active investigators with an e-mail
     address (the coordinators are told of it as due_soon / overdue like any visit).
2. `reminders_queue` writes the plan to the `Reminder` log idempotently: the unique
   constraint (patient, visit, reason, day, recipient) is the guarantee, rows already there
   are left alone. Today's rows still pending or failed that are no longer planned (the
   visit was done, closed or voided since; the recipient left the site or was deactivated)
   are cancelled; a cancelled row planned again is pending again.
3. `reminders_send` sends each recipient ONE digest of their pending and failed rows of the
   day, marking them sent (attempts + 1, sent_at) in the transaction that holds their lock,
   once the mail backend accepted the message. Rows already sent today are never sent again,
   so a second run the same day sends only what became due since. A mail failure marks the
   recipient's rows failed (attempts + 1, last_error), the other recipients are still served,
   and the first failure is raised at the end, so the Celery task retries: the retry sends
   only the failed rows.

Catch-up: a day missed (Redis down, worker or beat off, server off) needs nothing: the next
run plans from the calendar as it is that day, and a visit missed meanwhile is overdue by
then, so it is in the next digest. Rows of a past day left pending or failed stay in the log
as they are (they record what did not go out); they are never sent late.

The e-mails carry subject codes only, never PHI (no names, record numbers or birth dates);
they are written in every language of LANGUAGES that has a translation (the user has no
language preference), each version once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from smtplib import SMTPException

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from trial.models import Role, Site, SiteMembership
from trial.validation import fmt
from visits import protocol
from visits.models import ExpectedVisit, Reminder, VisitKind, VisitStatus
from visits.selectors import visit_label

logger = logging.getLogger("visits.reminders")

OPEN = (VisitStatus.UPCOMING, VisitStatus.DUE, VisitStatus.OVERDUE)
UNSENT = (Reminder.Status.PENDING, Reminder.Status.FAILED)
# The order of the sections of a digest.
REASONS = (Reminder.Reason.OVERDUE, Reminder.Reason.MDT_PENDING, Reminder.Reason.DUE_SOON)
# Who is reminded of what.
RECIPIENT_ROLES = {
    Reminder.Reason.DUE_SOON: Role.COORDINATOR,
    Reminder.Reason.OVERDUE: Role.COORDINATOR,
    Reminder.Reason.MDT_PENDING: Role.INVESTIGATOR,
}
WRITE_BATCH = 500
# The digest's first line; a language whose catalogue translates it gets its own version.
INTRO = gettext_noop("Visits of your patients that need you, on %(day)s:")

Key = tuple[int, str, str, int]  # patient id, visit code, reason, recipient id


@dataclass(frozen=True)
class Planned:
    """One reminder the run plans: a visit, why, and to whom (all plain values)."""

    reason: str
    recipient_id: int
    site_id: int
    patient_id: int
    subject_code: str
    visit_code: str
    kind: str
    number: int | None
    target_on: date
    window_start: date
    window_end: date
    days_overdue: int

    @property
    def key(self) -> Key:
        return (self.patient_id, self.visit_code, self.reason, self.recipient_id)


@dataclass
class Digest:
    """What one recipient was sent (or would be, on a dry run)."""

    recipient_id: int
    username: str
    email: str
    sites: list[str]
    reminders: int
    counts: dict[str, int]
    status: str  # "sent", "failed" or "planned" (dry run)
    error: str = ""


@dataclass
class SendStats:
    day: date
    planned: int = 0  # reminders in today's plan
    queued: int = 0  # rows added to the log by this run
    cancelled: int = 0  # pending rows dropped: their visit is no longer open
    mails_sent: int = 0
    reminders_sent: int = 0
    mails_failed: int = 0
    reminders_failed: int = 0
    refreshed_patients: int | None = None  # calendar_refresh before the run (None: not run)
    digests: list[Digest] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-serializable (the Celery result)."""
        data = asdict(self)
        data["day"] = self.day.isoformat()
        return data

    def summary(self) -> str:
        return (
            "Reminders of %(day)s: %(planned)d planned, %(queued)d new, %(cancelled)d "
            "cancelled; %(sent)d sent in %(mails)d e-mails; %(failed)d failed in "
            "%(failed_mails)d e-mails."
        ) % {
            "day": self.day.isoformat(),
            "planned": self.planned,
            "queued": self.queued,
            "cancelled": self.cancelled,
            "sent": self.reminders_sent,
            "mails": self.mails_sent,
            "failed": self.reminders_failed,
            "failed_mails": self.mails_failed,
        }


# --- the plan -------------------------------------------------------------------------------


def _recipients(site_ids: Iterable[int]) -> dict[tuple[int, str], list[int]]:
    """Ids of the users to remind, by (site id, role): active users in the role's group,
    members of the site, with an e-mail address. One query."""
    rows = (
        SiteMembership.objects.filter(
            site_id__in=set(site_ids),
            user__is_active=True,
            user__groups__name__in=set(RECIPIENT_ROLES.values()),
        )
        .exclude(user__email="")
        .values_list("site_id", "user__groups__name", "user_id")
        .distinct()
    )
    found: dict[tuple[int, str], list[int]] = defaultdict(list)
    for site_id, role, user_id in rows:
        found[(site_id, role)].append(user_id)
    return found


def _reasons(visit: dict, *, today: date) -> list[str]:
    status = protocol.open_status(
        window_start=visit["window_start"], window_end=visit["window_end"], today=today
    )
    reasons = []
    if status == protocol.Status.OVERDUE:
        reasons.append(Reminder.Reason.OVERDUE)
    else:  # due, or upcoming with its window opening within the next days (see the query)
        reasons.append(Reminder.Reason.DUE_SOON)
    pending_since = today - timedelta(days=settings.MDT_PENDING_DAYS)
    if visit["kind"] == VisitKind.MDT and visit["window_start"] <= pending_since:
        reasons.append(Reminder.Reason.MDT_PENDING)
    return reasons


def reminders_plan(*, today: date) -> list[Planned]:
    """The reminders due on `today`, from the calendar as stored now (see the module's doc
    for the rules): one `Planned` per visit, reason and recipient, ordered by recipient,
    reason, window end and subject code.

    Open visits only (upcoming, due, overdue as stored; each re-read on `today` with
    `protocol.open_status`), at active sites; recipients are the active coordinators
    (due_soon, overdue) and investigators (mdt_pending) of the visit's site who have an
    e-mail address. Two queries whatever the number of visits; writes nothing.
    """
    horizon = today + timedelta(days=settings.REMINDER_DUE_WITHIN_DAYS)
    visits = list(
        ExpectedVisit.objects.filter(
            status__in=OPEN, window_start__lte=horizon, site__is_active=True
        ).values(
            "patient_id",
            "patient__subject_code",
            "site_id",
            "code",
            "kind",
            "number",
            "target_on",
            "window_start",
            "window_end",
        )
    )
    if not visits:
        return []
    recipients = _recipients(v["site_id"] for v in visits)
    plan = []
    for visit in visits:
        for reason in _reasons(visit, today=today):
            for user_id in recipients.get((visit["site_id"], RECIPIENT_ROLES[reason]), ()):
                plan.append(
                    Planned(
                        reason=str(reason),
                        recipient_id=user_id,
                        site_id=visit["site_id"],
                        patient_id=visit["patient_id"],
                        subject_code=visit["patient__subject_code"],
                        visit_code=visit["code"],
                        kind=visit["kind"],
                        number=visit["number"],
                        target_on=visit["target_on"],
                        window_start=visit["window_start"],
                        window_end=visit["window_end"],
                        days_overdue=max((today - visit["window_end"]).days, 0),
                    )
                )
    plan.sort(key=lambda p: (p.recipient_id, p.reason, p.window_end, p.subject_code, p.key))
    return plan


# --- the log --------------------------------------------------------------------------------


def _key(row: Reminder) -> Key:
    return (row.patient_id, row.visit_code, row.reason, row.recipient_id)


@transaction.atomic
def reminders_queue(*, today: date, plan: list[Planned] | None = None) -> SendStats:
    """Write today's plan (`reminders_plan(today=today)` unless given) to the Reminder log.

    New rows are inserted as pending (`bulk_create(ignore_conflicts=True)`: a row already
    there, whatever its status, is left alone, so running twice adds nothing). Today's
    pending or failed rows that are no longer planned are cancelled, and cancelled rows
    planned again are pending again. Returns the counts (planned, queued, cancelled); sends
    nothing.
    """
    plan = reminders_plan(today=today) if plan is None else plan
    stats = SendStats(day=today, planned=len(plan))
    before = Reminder.objects.filter(day=today).count()
    Reminder.objects.bulk_create(
        [
            Reminder(
                day=today,
                reason=p.reason,
                patient_id=p.patient_id,
                site_id=p.site_id,
                visit_code=p.visit_code,
                target_on=p.target_on,
                window_end=p.window_end,
                recipient_id=p.recipient_id,
            )
            for p in plan
        ],
        batch_size=WRITE_BATCH,
        ignore_conflicts=True,
    )
    stats.queued = Reminder.objects.filter(day=today).count() - before
    wanted = {p.key for p in plan}
    cancel, revive = [], []
    rows = Reminder.objects.filter(day=today).exclude(status=Reminder.Status.SENT)
    for row in rows.only("pk", "patient_id", "visit_code", "reason", "recipient_id", "status"):
        planned = _key(row) in wanted
        if row.status in UNSENT and not planned:
            cancel.append(row.pk)
        elif row.status == Reminder.Status.CANCELLED and planned:
            revive.append(row.pk)
    if cancel:
        stats.cancelled = Reminder.objects.filter(pk__in=cancel).update(
            status=Reminder.Status.CANCELLED
        )
    if revive:
        Reminder.objects.filter(pk__in=revive).update(status=Reminder.Status.PENDING)
    return stats


def reminders_unsent(*, today: date) -> dict[int, list[Planned]]:
    """Today's plan without what was already sent today, by recipient id: what a run would
    send now (the dry run). Reads only."""
    sent = set(
        Reminder.objects.filter(day=today, status=Reminder.Status.SENT).values_list(
            "patient_id", "visit_code", "reason", "recipient_id"
        )
    )
    unsent: dict[int, list[Planned]] = defaultdict(list)
    for planned in reminders_plan(today=today):
        if planned.key not in sent:
            unsent[planned.recipient_id].append(planned)
    return dict(unsent)


# --- the digest -----------------------------------------------------------------------------


def _languages() -> list[str]:
    codes = [code for code, _name in settings.LANGUAGES]
    first = settings.LANGUAGE_CODE
    return [first] + [code for code in codes if code != first]


def _translated(language: str) -> bool:
    with translation.override(language):
        return _(INTRO) != INTRO


def _site_url(path: str) -> str:
    return settings.SITE_URL + path


def _counts(items: Iterable[Planned]) -> dict[str, int]:
    counts = {str(reason): 0 for reason in REASONS}
    for item in items:
        counts[item.reason] += 1
    return counts


def _subject(*, sites: list[Site], counts: dict[str, int], today: date) -> str:
    parts = []
    if counts[Reminder.Reason.OVERDUE]:
        parts.append(_("%(count)d overdue") % {"count": counts[Reminder.Reason.OVERDUE]})
    if counts[Reminder.Reason.MDT_PENDING]:
        parts.append(
            _("%(count)d awaiting an MDT decision") % {"count": counts[Reminder.Reason.MDT_PENDING]}
        )
    if counts[Reminder.Reason.DUE_SOON]:
        parts.append(_("%(count)d due soon") % {"count": counts[Reminder.Reason.DUE_SOON]})
    return _("[PLM-EDC] %(sites)s: %(counts)s (%(day)s)") % {
        "sites": ", ".join(site.code for site in sites),
        "counts": ", ".join(parts),
        "day": fmt(today),
    }


# The most urgent visits listed per section of a digest; the rest are counted and left to the
# worklist (a mail of a thousand rows is read by nobody, and takes seconds to render).
DIGEST_ROWS = 50


def _context(*, recipient, items: list[Planned], sites: dict[int, Site], today: date) -> dict:
    """The template context, built under the language being rendered (labels translate)."""
    by_reason: dict[str, list[Planned]] = defaultdict(list)
    for item in items:
        by_reason[item.reason].append(item)
    sections = []
    for reason in REASONS:
        rows = sorted(
            by_reason.get(reason, ()),
            key=lambda p: (-p.days_overdue, p.window_end, p.subject_code, p.visit_code),
        )
        if not rows:
            continue
        listed, total = rows[:DIGEST_ROWS], len(rows)
        rows = listed
        sections.append(
            {
                "reason": reason,
                "title": Reminder.Reason(reason).label,
                "total": total,
                "more": total - len(listed),
                "rows": [
                    {
                        "subject_code": p.subject_code,
                        "site": sites[p.site_id].code,
                        "visit": visit_label(p.kind, p.number),
                        "code": p.visit_code,
                        "target_on": p.target_on,
                        "window_start": p.window_start,
                        "window_end": p.window_end,
                        "days_overdue": p.days_overdue,
                        "url": _site_url(reverse("patients:patient-detail", args=[p.patient_id])),
                    }
                    for p in rows
                ],
            }
        )
    worklist = reverse("visits:worklist")
    site_ids = sorted({p.site_id for p in items}, key=lambda pk: sites[pk].code)
    return {
        "recipient_name": recipient.get_full_name() or recipient.get_username(),
        "intro": _(INTRO) % {"day": fmt(today)},
        "today": today,
        "sections": sections,
        "worklists": [
            {"site": sites[pk], "url": _site_url("%s?site=%d" % (worklist, pk))} for pk in site_ids
        ],
        "study_code": settings.STUDY_CODE,
    }


def digest_message(
    *, recipient, items: list[Planned], sites: dict[int, Site], today: date, connection=None
) -> EmailMultiAlternatives:
    """The digest e-mail of `items` for `recipient`: plain text and an HTML alternative, in
    each language of LANGUAGES (a version identical to one before it is left out), listing
    subject codes, visits, target dates, windows, days overdue and links (SITE_URL) to each
    patient's page and to the site's worklist. No PHI."""
    site_list = sorted({sites[p.site_id] for p in items}, key=lambda s: s.code)
    counts = _counts(items)
    subjects, texts, htmls = [], [], []
    for language in _languages():
        with translation.override(language):
            context = _context(recipient=recipient, items=items, sites=sites, today=today)
            subject = _subject(sites=site_list, counts=counts, today=today)
            text = render_to_string("visits/email/reminder_digest.txt", context)
            html = render_to_string("visits/email/_reminder_digest_body.html", context)
        if texts and not _translated(language):
            continue  # not translated (yet): the same text twice helps nobody
        subjects.append(subject)
        texts.append(text)
        htmls.append(html)
    separator = "\n" + "—" * 40 + "\n\n"
    message = EmailMultiAlternatives(
        subject=" / ".join(dict.fromkeys(subjects)),
        body=separator.join(text.strip() + "\n" for text in texts),
        to=[recipient.email],
        connection=connection,
    )
    html = render_to_string("visits/email/reminder_digest.html", {"bodies": htmls})
    message.attach_alternative(html, "text/html")
    return message


# --- sending --------------------------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    return ("%s: %s" % (type(exc).__name__, exc))[:500]


def _mark(rows: list[Reminder], **values) -> None:
    """One UPDATE per 2,000 rows setting the same values (bulk_update would build a CASE per
    row and field: seconds for a digest of a thousand rows)."""
    ids = [row.pk for row in rows]
    for start in range(0, len(ids), 2000):
        Reminder.objects.filter(pk__in=ids[start : start + 2000]).update(**values)


def reminders_send(*, today: date, connection=None) -> SendStats:
    """Plan, queue (`reminders_queue`) and send today's reminders: one digest per recipient
    of their rows of `today` still pending or failed, through `connection` (a Django mail
    backend; the configured one when None).

    For each recipient, in one transaction holding their rows (SELECT … FOR UPDATE SKIP
    LOCKED on PostgreSQL, so two runs at once never send the same rows): the mail is sent,
    then the rows are marked sent (sent_at, attempts + 1). On a mail failure the rows are
    marked failed (attempts + 1, last_error) and the next recipient is served; once all are
    done, the first failure is raised again (SMTPException, OSError …) so the task retries.
    Returns the counts and one `Digest` per recipient.
    """
    plan = reminders_plan(today=today)
    stats = reminders_queue(today=today, plan=plan)
    planned: dict[int, dict[Key, Planned]] = defaultdict(dict)
    for item in plan:
        planned[item.recipient_id][item.key] = item
    users = get_user_model().objects.in_bulk(list(planned))
    sites = Site.objects.in_bulk({item.site_id for item in plan})
    failures: list[BaseException] = []
    for recipient_id in sorted(planned):
        recipient = users[recipient_id]
        with transaction.atomic():
            rows = [
                row
                for row in Reminder.objects.select_for_update(skip_locked=True)
                .filter(day=today, recipient_id=recipient_id, status__in=UNSENT)
                .order_by("pk")
                if _key(row) in planned[recipient_id]
            ]
            if not rows:
                continue  # all sent already today (or being sent by a run beside this one)
            items = [planned[recipient_id][_key(row)] for row in rows]
            digest = Digest(
                recipient_id=recipient_id,
                username=recipient.get_username(),
                email=recipient.email,
                sites=sorted({sites[item.site_id].code for item in items}),
                reminders=len(rows),
                counts=_counts(items),
                status="sent",
            )
            message = digest_message(
                recipient=recipient, items=items, sites=sites, today=today, connection=connection
            )
            try:
                if message.send() != 1:
                    raise SMTPException("The mail backend did not accept the message.")
            except Exception as exc:  # noqa: BLE001 - any backend failure: logged, re-raised
                failures.append(exc)
                digest.status, digest.error = "failed", _error_text(exc)
                _mark(
                    rows,
                    status=Reminder.Status.FAILED,
                    attempts=F("attempts") + 1,
                    last_error=digest.error,
                )
                stats.mails_failed += 1
                stats.reminders_failed += len(rows)
                logger.warning(
                    "Reminder digest to user %s (%d reminders) failed: %s",
                    recipient_id,
                    len(rows),
                    digest.error,
                )
            else:
                _mark(
                    rows,
                    status=Reminder.Status.SENT,
                    attempts=F("attempts") + 1,
                    last_error="",
                    sent_at=timezone.now(),
                )
                # The visit's window as sent, where it moved since the row was queued.
                moved: dict[tuple, list[int]] = defaultdict(list)
                for row, item in zip(rows, items, strict=True):
                    if (row.target_on, row.window_end) != (item.target_on, item.window_end):
                        moved[(item.target_on, item.window_end)].append(row.pk)
                for (target_on, window_end), ids in moved.items():
                    Reminder.objects.filter(pk__in=ids).update(
                        target_on=target_on, window_end=window_end
                    )
                stats.mails_sent += 1
                stats.reminders_sent += len(rows)
                logger.info(
                    "Reminder digest to user %s: %d reminders sent.", recipient_id, len(rows)
                )
        stats.digests.append(digest)
    logger.info(stats.summary())
    if failures:
        raise failures[0]
    return stats


def reminders_daily(*, today: date | None = None, connection=None) -> SendStats:
    """The daily job: refresh every patient's calendar (`visits.services.calendar_refresh`,
    so the plan sees today's records), then `reminders_send` for `today` (default: the local
    date). Raises what `reminders_send` raises."""
    today = today or timezone.localdate()
    from visits import services  # lazily: the calendar's writer is not needed to import this

    refresh = getattr(services, "calendar_refresh", None)
    refreshed = None
    if refresh is None:
        logger.warning("visits.services.calendar_refresh is missing: the calendar is as stored.")
    else:
        refreshed = refresh(today=today).patients
    stats = reminders_send(today=today, connection=connection)
    stats.refreshed_patients = refreshed
    return stats
