"""A cache of the analysis dataset, keyed by a stamp of every table it is derived from.

Building the dataset of 10,000 patients takes seconds (bench/analytics.py); the survival
endpoints, the dashboard and the figures all start from it and are asked again and again while
the data does not change. So the rows (and the pandas frame of the API) are kept in Django's
cache (the "default" cache: per-process memory unless the settings configure a shared one) under
a key made of:

- the user's sites (ids and codes: the rows carry the site code);
- the origin and the kind of value (rows or frame);
- the code of the derivation (a hash of analytics/dataset.py and followup/selectors.py, so a
  deployment that changes a rule never serves rows derived by the old one);
- the data stamp: for every table the dataset reads (`INPUT_MODELS`), the number of rows, the sum
  of the record versions and the last `updated_at`, in one query.

Why that stamp cannot miss a change: clinical records are never deleted; a new row (saved one
by one or bulk-created by an import) moves the count; every edit and every voiding through
trial.services moves the record's version (so the sum), and any other save moves `updated_at`
(auto_now, also set by bulk_create). The stamp is read BEFORE the dataset is built, so a write
that commits in between is at worst cached under the older stamp, which no later request sees
again. The dataset does not depend on today's date (durations end at recorded dates).
tests/analytics/test_cache.py edits, voids and adds each kind of input and checks that the
survival endpoint changes, and checks that the tables `dataset.build` reads are all stamped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Model

from assessments.models import ResponseEvaluation
from exchange.models import RetrospectiveAbstract
from followup import selectors as followup_selectors
from followup.models import Death, Recurrence
from patients.models import Baseline, Enrollment, Patient, Screening, Withdrawal
from surgery.models import Complication, Discharge, MdtDecision, Operation, Pathology
from treatments.models import ChemoCycle, RegimenLine
from trial.models import Site

T = TypeVar("T")

# The audited tables `analytics.dataset.build` reads: its own, and the sources of the last date
# known alive (followup.selectors.SOURCES, read through last_known_alive_by_patient).
INPUT_MODELS: tuple[type[Model], ...] = tuple(
    dict.fromkeys(
        (
            Patient,
            Enrollment,
            Screening,
            Baseline,
            Withdrawal,
            RegimenLine,
            ChemoCycle,
            ResponseEvaluation,
            MdtDecision,
            Operation,
            Pathology,
            Complication,
            Discharge,
            Recurrence,
            Death,
            RetrospectiveAbstract,
            *(source.model for source in followup_selectors.SOURCES),
        )
    )
)

# How long an entry may stay (the stamp, not the timeout, keeps the entries correct; the timeout
# only bounds the memory of entries no stamp will ask for again).
TIMEOUT_SECONDS = getattr(settings, "ANALYTICS_CACHE_SECONDS", 3600)


def _code_version() -> str:
    digest = hashlib.sha256()
    for module in ("dataset.py",):
        digest.update((Path(__file__).parent / module).read_bytes())
    digest.update(Path(followup_selectors.__file__).read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()


def data_stamp() -> list[tuple]:
    """One row per input table: (table, row count, sum of versions, last updated_at as text).
    One query (a UNION ALL of one aggregate per table, over whole tables: a change at any site
    renews every entry, which costs a rebuild, never a stale answer)."""
    parts = []
    quote = connection.ops.quote_name
    for model in INPUT_MODELS:
        table = model._meta.db_table
        parts.append(
            f"SELECT '{table}', COUNT(*), COALESCE(SUM({quote('version')}), 0), "
            f"MAX({quote('updated_at')}) FROM {quote(table)}"
        )
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts))
        return [(table, int(n), int(versions), str(last)) for table, n, versions, last in cursor]


def cache_key(*, site_ids: Iterable[int], kind: str, origin: str) -> str:
    """The key of one cached value: the sites (with their codes), the kind, the origin, the
    derivation code and the data stamp, hashed. Two queries."""
    sites = sorted(Site.objects.filter(pk__in=list(site_ids)).values_list("pk", "code"))
    digest = hashlib.sha256(repr((sites, data_stamp())).encode()).hexdigest()
    return f"plm:analytics:{CODE_VERSION}:{kind}:{origin}:{digest}"


def cached(key: str, compute: Callable[[], T]) -> T:
    """The value under `key`, computed and stored when missing."""
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, TIMEOUT_SECONDS)
    return value
