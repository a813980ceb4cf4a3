"""The data version of an export, so that a statistician can cite exactly what was analysed.

A data version is two things:

- `as_of`: the time of the last change (created, edited or voided) of any clinical record of
  the exported patients (one aggregate query per table);
- `hash`: a SHA-256 content hash of the exported tables, computed from the rows themselves
  (not from a file): the active (not voided) rows of each table, before any date shift, each
  row as canonical JSON. Rows are combined per table by addition modulo 2**256 of their
  SHA-256 digests, so the hash does not depend on the order of the rows (CSV, JSON and ODM
  list them in different orders) nor on the format; the per-table sums are then hashed in
  registry order together with the table names.

The same data gives the same hash in every format, with or without the date shift; any change
to an exported value, any new or voided row changes it. Every streamed export computes the hash
of what it streams (`ContentHash` fed by `forms.export_rows`) and records it in the export log;
`data_version` computes it on its own for citation ("PLM-EDC data as of 2026-11-24T10:31:02+08:00,
sha256 3f2a…").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Max, QuerySet
from django.utils import timezone

from analytics.exports.forms import FORMS, ExportForm, export_rows, form_queryset, json_default

MODULUS = 2**256


def canonical(row: dict) -> bytes:
    """A row as canonical JSON (keys in column order, ISO dates, decimals as numbers)."""
    return json.dumps(row, default=json_default, ensure_ascii=False, separators=(",", ":")).encode()


class ContentHash:
    """The order-independent content hash of one or more tables, fed row by row."""

    def __init__(self) -> None:
        self.sums: dict[str, int] = {}
        self.rows = 0

    def update(self, table: str, row: dict) -> None:
        digest = hashlib.sha256(canonical(row)).digest()
        self.sums[table] = (self.sums.get(table, 0) + int.from_bytes(digest, "big")) % MODULUS
        self.rows += 1

    def hexdigest(self, tables: Iterable[str] | None = None) -> str:
        """The hash over `tables` (default: the tables fed), in the order given; a table with
        no rows counts as an empty sum, so "no rows" is part of the version too."""
        final = hashlib.sha256()
        for table in tables if tables is not None else sorted(self.sums):
            final.update(b"%s:%064x\n" % (table.encode(), self.sums.get(table, 0)))
        return final.hexdigest()


def as_of(*, patients_qs: QuerySet, forms: Iterable[ExportForm] = FORMS) -> datetime | None:
    """The last change to any record of `forms` of these patients (voided ones included: a
    voiding is a change), one aggregate query per table; None when there is no record."""
    latest = None
    for form in forms:
        stamp = "updated_at" if form.audited else "refreshed_at"
        value = form_queryset(
            form, patients_qs=patients_qs, include_voided=True, by_patient_id=True
        ).aggregate(latest=Max(stamp))["latest"]
        if value is not None and (latest is None or value > latest):
            latest = value
    return timezone.localtime(latest) if latest else None


def data_version(*, patients_qs: QuerySet, forms: Iterable[ExportForm] | None = None) -> dict:
    """{"as_of": ISO time of the last change or None, "hash": SHA-256 hex, "tables": [names],
    "rows": number of rows hashed} over `forms` (default: every registered form) of the
    patients of `patients_qs`. Reads every row of those tables once."""
    forms = list(forms if forms is not None else FORMS)
    hasher = ContentHash()
    for form in forms:
        for _row in export_rows(form, patients_qs=patients_qs, hasher=hasher):
            pass
    stamp = as_of(patients_qs=patients_qs, forms=forms)
    return {
        "as_of": stamp.isoformat() if stamp else None,
        "hash": hasher.hexdigest([form.name for form in forms]),
        "tables": [form.name for form in forms],
        "rows": hasher.rows,
    }
