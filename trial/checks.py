"""Automatic cross-form checks: a registry the apps fill, run per patient and daily.

A check reads records of one or more apps and reports what is inconsistent as `Finding`s
(record, field, question). `trial` cannot import the apps above it, so each app registers its
checks in its AppConfig.ready() (`register_check`), like the patient-page panels and the
refreshers. `run_checks` runs them and hands each one's findings to
`trial.queries.system_query_sync`, which raises a system query for a new finding and closes
the ones whose data were fixed. Two triggers: after every save of a patient's records (the
refresher below, order 950, after the calendar it may read), and daily for everyone (the
Celery task `trial.tasks.run_data_checks`, or `manage.py run_checks`).

A check's `run(patient_ids, today)` looks at `patient_ids` (None: every patient) as of
`today`, and must use a fixed number of queries whatever the number of patients and records
(select the patient with the record: the sync reads its site).
"""

from collections.abc import Callable, Collection, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction
from django.utils import timezone

from trial.derived import Refresher, register_refresher
from trial.queries import Finding, SyncResult, system_query_sync

__all__ = ["Check", "Finding", "register_check", "registered_checks", "run_checks"]


@dataclass(frozen=True)
class Check:
    code: str  # stored as DataQuery.rule: never rename or reuse
    label: str
    # run(patient_ids or None, today) -> the findings
    run: Callable[[Collection[int] | None, date], Iterable[Finding]]


_CHECKS: dict[str, Check] = {}
BATCH = 500  # patient ids per run: SQLite allows 999 parameters per query


def register_check(check: Check) -> None:
    """Add (or replace, by code) an automatic check."""
    _CHECKS[check.code] = check


def registered_checks() -> list[Check]:
    """The registered checks, by code."""
    return [_CHECKS[code] for code in sorted(_CHECKS)]


def check_label(code: str) -> str:
    """The label of check `code` (the code itself for a check no longer registered)."""
    check = _CHECKS.get(code)
    return str(check.label) if check else code


def run_checks(
    patient_ids: Collection[int] | None = None, *, today: date | None = None
) -> dict[str, SyncResult]:
    """Run every check for `patient_ids` (None: everyone) on `today` (default: the local date)
    and sync its system queries. Run on its own (the daily run), each check has its own
    transaction, so a failing check leaves the others' queries in place; inside a save, the
    save's transaction holds them. Returns the sync counts by check code."""
    today = today or timezone.localdate()
    if patient_ids is None:
        batches: list[list[int] | None] = [None]
    else:
        ids = sorted(set(patient_ids))
        batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
    results: dict[str, SyncResult] = {}
    for check in registered_checks():
        total = results.setdefault(check.code, SyncResult())
        for batch in batches:
            # Inside a save (the refresher) the save's transaction already holds it all.
            block = nullcontext() if connection.in_atomic_block else transaction.atomic()
            with block:
                found = system_query_sync(check.code, check.run(batch, today), patient_ids=batch)
            total.raised += found.raised
            total.closed += found.closed
            total.kept += found.kept
    return results


def _refresh(*, patient, user, source: str) -> None:
    run_checks([patient.pk])


def _batch(patient_ids: list[int]) -> None:
    run_checks(patient_ids)


# After the calendar (900): the overdue-visit check reads the expected visits.
register_refresher(Refresher(key="checks", order=950, refresh=_refresh, batch=_batch))
