"""The daily reminder run, inline (deployments without Redis run it from cron):

    python manage.py send_reminders [--date 2026-11-24] [--dry-run]

Refreshes every patient's calendar, then sends one digest e-mail per coordinator or
investigator with their reminders of the day (visits.reminders). Safe to rerun the same day:
what was sent is not sent again. --dry-run prints what would be sent and writes nothing (the
calendar is read as stored). Exits with an error when a mail could not be sent (the rows are
marked failed; run it again to retry them).
"""

from datetime import date

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from visits import reminders


class Command(BaseCommand):
    help = "Send today's reminder digests (or --date's); --dry-run lists them without sending."

    def add_arguments(self, parser):
        parser.add_argument(
            "--date", dest="day", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD"
        )
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, day: date | None, dry_run: bool, **options):
        today = day or timezone.localdate()
        if dry_run:
            self._dry_run(today)
            return
        try:
            stats = reminders.reminders_daily(today=today)
        except Exception as exc:
            raise CommandError(
                "Reminders of %s: a mail could not be sent (%s: %s); the rows are marked "
                "failed, run the command again to retry them." % (today, type(exc).__name__, exc)
            ) from exc
        for digest in stats.digests:
            self.stdout.write(
                "  %s <%s> [%s]: %d reminders (%s)"
                % (
                    digest.username,
                    digest.email,
                    ", ".join(digest.sites),
                    digest.reminders,
                    _counts(digest.counts),
                )
            )
        self.stdout.write(self.style.SUCCESS(stats.summary()))

    def _dry_run(self, today: date) -> None:
        unsent = reminders.reminders_unsent(today=today)
        users = get_user_model().objects.in_bulk(list(unsent))
        total = 0
        for recipient_id, items in sorted(unsent.items()):
            user = users[recipient_id]
            total += len(items)
            self.stdout.write(
                "  %s <%s>: %d reminders (%s)"
                % (user.get_username(), user.email, len(items), _counts(_tally(items)))
            )
            for item in items:
                self.stdout.write(
                    "    %s %s %s, window %s – %s"
                    % (
                        item.reason,
                        item.subject_code,
                        item.visit_code,
                        item.window_start,
                        item.window_end,
                    )
                )
        self.stdout.write(
            self.style.SUCCESS(
                "Dry run for %s: %d reminders in %d e-mails would be sent; nothing was sent."
                % (today.isoformat(), total, len(unsent))
            )
        )


def _tally(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.reason] = counts.get(item.reason, 0) + 1
    return counts


def _counts(counts: dict[str, int]) -> str:
    return ", ".join("%s %d" % (reason, n) for reason, n in counts.items() if n) or "none"
