"""The hash chain over the audit history: tampering with a history table becomes evident.

Every history table derives from `trial.models.ChainedHistory`. When simple-history writes a
history row, `chain_history_row` (a `pre_create_historical_record` receiver) sets

    row_hash = HMAC-SHA256(key, hash of the record's previous history row + canonical content)

so a history row edited, inserted or deleted in the database, outside the application, breaks
the chain: `verify_chain` (and `manage.py verify_audit`) finds the first broken link of each
table. The key is `settings.AUDIT_CHAIN_KEY` (or SECRET_KEY): without it nobody can compute a
valid hash, so rewriting the history needs both the database and the key.

The canonical content is every concrete column of the history row except `row_hash` and
`history_id`, as sorted JSON: dates and datetimes as ISO strings (datetimes in UTC), decimals as
plain numbers without trailing zeros, JSON columns re-encoded. `history_id` is not part of it
because simple-history assigns it only when the row is inserted, after this receiver ran; a
row's position is covered by the previous row's hash instead (rows are chained in
`(record id, history_id)` order). Columns whose value equals the column's (non-callable) default
are left out, so a migration that adds a column with a default to an audited model does not
invalidate the rows written before it.

Concurrency: simple-history writes the history row after the record's own UPDATE, which holds
the record's row lock until commit, so two concurrent edits of one record read each other's
history row in turn (PostgreSQL, read committed); SQLite serialises writers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.db.models import Max, Q
from django.utils import timezone

from trial.models import ChainedHistory

CHUNK = 2000
# Records looked up per query when sealing a bulk list (well under SQLite's variable limit).
LOOKUP_CHUNK = 900
_EXCLUDED = frozenset({"row_hash", "history_id"})
_DISPATCH_UID = "trial.audit.chain_history_row"
_NO_DEFAULT = object()


# --- the hash ---------------------------------------------------------------------------------


def chain_key() -> bytes:
    """The HMAC key: AUDIT_CHAIN_KEY, or SECRET_KEY when it is empty (read at call time, so
    tests and settings overrides apply)."""
    return (getattr(settings, "AUDIT_CHAIN_KEY", "") or settings.SECRET_KEY).encode()


def _plain_decimal(value: Decimal) -> str:
    """`1.50` and `1.5` are the same number: one text for both (the stored scale varies by
    backend and with the column's decimal places)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def canonical_value(model_field: models.Field, value: Any) -> Any:
    """A JSON value for `value` of `model_field` that is the same before the row is saved (the
    Python value simple-history copied from the record) and after it is read back from
    SQLite or PostgreSQL."""
    if value is None:
        return None
    if isinstance(model_field, models.JSONField):
        encoder = model_field.encoder or DjangoJSONEncoder
        return json.loads(json.dumps(value, cls=encoder))
    if isinstance(value, models.Model):
        value = value.pk
    if isinstance(model_field, models.DateTimeField):
        value = model_field.to_python(value)
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_default_timezone())
        return value.astimezone(UTC).isoformat()
    if isinstance(model_field, models.DateField):
        return model_field.to_python(value).isoformat()
    if isinstance(model_field, models.TimeField):
        return model_field.to_python(value).isoformat()
    if isinstance(model_field, models.DecimalField):
        try:
            number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
            number = number.quantize(
                Decimal(1).scaleb(-model_field.decimal_places), rounding=ROUND_HALF_EVEN
            )
        except (InvalidOperation, TypeError, ValueError):
            return str(value)
        return _plain_decimal(number)
    if isinstance(model_field, models.BooleanField):
        return bool(model_field.to_python(value))
    if isinstance(model_field, models.FloatField):
        return repr(float(value))
    if isinstance(model_field, models.DurationField):
        return model_field.to_python(value).total_seconds()
    if isinstance(model_field, models.BinaryField):
        return bytes(value).hex()
    if isinstance(model_field, models.ForeignKey):
        model_field = model_field.target_field
    if isinstance(model_field, models.IntegerField | models.AutoField):
        try:
            return int(value)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return str(value)


@cache
def _hashed_fields(history_model: type[models.Model]) -> tuple[tuple[str, models.Field, Any], ...]:
    """(attname, field, canonical default or _NO_DEFAULT) of the columns a row's hash covers."""
    result = []
    for model_field in history_model._meta.concrete_fields:
        if model_field.attname in _EXCLUDED:
            continue
        if model_field.has_default() and callable(model_field.default):
            default = _NO_DEFAULT
        else:
            default = canonical_value(model_field, model_field.get_default())
        result.append((model_field.attname, model_field, default))
    return tuple(result)


def _hashed_attnames(history_model: type[models.Model]) -> list[str]:
    return [attname for attname, _field, _default in _hashed_fields(history_model)]


def canonical_content(history_model: type[models.Model], values: dict[str, Any]) -> str:
    """The stable text of a history row's content (`values` by attname)."""
    content = {}
    for attname, model_field, default in _hashed_fields(history_model):
        value = canonical_value(model_field, values.get(attname))
        if default is not _NO_DEFAULT and value == default:
            continue
        content[attname] = value
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash_of(history_model: type[models.Model], values: dict[str, Any], previous: str) -> str:
    """HMAC-SHA256 over the previous row's hash and this row's canonical content."""
    message = f"{previous}\n{canonical_content(history_model, values)}".encode()
    return hmac.new(chain_key(), message, hashlib.sha256).hexdigest()


def _same(stored: str, computed: str) -> bool:
    """Constant-time comparison that also copes with a non-ASCII value written by hand."""
    return hmac.compare_digest(stored.encode(), computed.encode())


def _row_values(row: models.Model) -> dict[str, Any]:
    return {attname: getattr(row, attname) for attname in _hashed_attnames(type(row))}


def record_key_attname(history_model: type[models.Model]) -> str:
    """The history column holding the record's primary key (`id`, or e.g. `patient_id`)."""
    return history_model.instance_type._meta.pk.attname


def history_models(labels: Iterable[str] | None = None) -> list[type[ChainedHistory]]:
    """Every history table (concrete subclasses of ChainedHistory), by label; or the history
    tables of the given record models ("app_label.Model"), LookupError for any other label."""
    every = sorted(
        (m for m in apps.get_models() if issubclass(m, ChainedHistory)),
        key=lambda m: m._meta.label,
    )
    if labels is None:
        return every
    by_record = {m.instance_type._meta.label_lower: m for m in every}
    by_table = {m._meta.label_lower: m for m in every}
    chosen = []
    for label in labels:
        wanted = label.lower()
        model = by_record.get(wanted) or by_table.get(wanted)
        if model is None:
            raise LookupError(label)
        chosen.append(model)
    return chosen


# --- writing: the receiver and bulk paths -----------------------------------------------------


def chain_history_row(sender, history_instance, using=None, **kwargs) -> None:
    """pre_create_historical_record receiver: hash the row about to be written, chained to the
    latest stored history row of the same record (one SELECT)."""
    if not isinstance(history_instance, ChainedHistory):
        return
    model = type(history_instance)
    key_attname = record_key_attname(model)
    database = using or router.db_for_write(model)
    previous = (
        model._base_manager.db_manager(database)
        .filter(**{key_attname: getattr(history_instance, key_attname)})
        .order_by("-history_id")
        .values_list("row_hash", flat=True)
        .first()
    )
    history_instance.row_hash = row_hash_of(model, _row_values(history_instance), previous or "")


def connect() -> None:
    """Connect the receiver (idempotent). `trial.apps.TrialConfig.ready` calls it."""
    from simple_history.signals import pre_create_historical_record

    pre_create_historical_record.connect(chain_history_row, dispatch_uid=_DISPATCH_UID)


def disconnect() -> None:
    from simple_history.signals import pre_create_historical_record

    pre_create_historical_record.disconnect(dispatch_uid=_DISPATCH_UID)


def is_connected() -> bool:
    from simple_history.signals import pre_create_historical_record

    return any(key[0] == _DISPATCH_UID for key, *_rest in pre_create_historical_record.receivers)


def seal_history(rows: list[models.Model], *, using: str | None = None) -> list[models.Model]:
    """Set `row_hash` on unsaved history rows, in list order, for bulk paths that bypass the
    receiver (simple-history's bulk_history_create sends no signal).

    Rows of one record chain to each other in list order; the first row of each record chains
    to the record's latest stored history row, looked up with one query per model (per
    LOOKUP_CHUNK records). Returns `rows`, ready for `bulk_create`.
    """
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for row in rows:
        if isinstance(row, ChainedHistory):
            by_model.setdefault(type(row), []).append(row)
    for model, model_rows in by_model.items():
        key_attname = record_key_attname(model)
        database = using or router.db_for_write(model)
        keys = list({getattr(row, key_attname) for row in model_rows} - {None})
        latest: dict[Any, str] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start : start + LOOKUP_CHUNK]
            manager = model._base_manager.db_manager(database)
            last_ids = (
                manager.filter(**{f"{key_attname}__in": chunk})
                .values(key_attname)
                .annotate(last=Max("history_id"))
                .values("last")
            )
            latest.update(
                manager.filter(history_id__in=last_ids).values_list(key_attname, "row_hash")
            )
        for row in model_rows:
            key = getattr(row, key_attname)
            row.row_hash = row_hash_of(model, _row_values(row), latest.get(key, ""))
            latest[key] = row.row_hash
    return rows


def bulk_history_create(
    model: type[models.Model],
    objs: Iterable[models.Model],
    *,
    update: bool = False,
    default_user=None,
    default_change_reason: str = "",
    default_date: datetime | None = None,
    batch_size: int | None = None,
) -> list[models.Model]:
    """simple-history's `bulk_history_create`, sealed: history rows for records saved in bulk
    (`bulk_create` / `bulk_update`), hashed into the chain before they are inserted."""
    history_model = model.history.model
    now = default_date or timezone.now()
    rows = []
    for instance in objs:
        row = history_model(
            history_date=getattr(instance, "_history_date", now),
            history_user=getattr(instance, "_history_user", default_user),
            history_change_reason=getattr(instance, "_change_reason", "") or default_change_reason,
            history_type="~" if update else "+",
            **{f.attname: getattr(instance, f.attname) for f in history_model.tracked_fields},
        )
        rows.append(row)
    seal_history(rows)
    return history_model._base_manager.bulk_create(rows, batch_size=batch_size)


# --- checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenLink:
    """One place where the history no longer proves itself."""

    kind: str  # "hash mismatch", "missing hash", "history disagrees", "no history", …
    table: str
    history_id: int | None
    record_id: Any
    detail: str

    def __str__(self) -> str:
        where = f"history_id={self.history_id}" if self.history_id is not None else "no row"
        return f"{self.table} {where} record id={self.record_id}: {self.kind}: {self.detail}"


@dataclass
class TableReport:
    label: str
    table: str
    rows_checked: int = 0
    records_checked: int = 0
    problems: int = 0
    first_broken: BrokenLink | None = None
    problem_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problems == 0

    def add(self, link: BrokenLink) -> None:
        self.problems += 1
        self.problem_kinds[link.kind] = self.problem_kinds.get(link.kind, 0) + 1
        if self.first_broken is None:
            self.first_broken = link


HASH_MISMATCH = "hash mismatch"
MISSING_HASH = "missing hash"
HISTORY_DISAGREES = "latest history row disagrees with the record"
NO_HISTORY = "record without history"
DELETED_UNRECORDED = "record gone without a deletion in its history"


def _live_rows(record_model: type[models.Model], attnames: list[str]) -> Iterator[tuple]:
    pk = record_model._meta.pk.attname
    return (
        record_model._base_manager.order_by(pk)
        .values_list(pk, *attnames)
        .iterator(chunk_size=CHUNK)
    )


def verify_table(history_model: type[models.Model]) -> TableReport:
    """Check one history table: every row's hash against its content and the previous row of the
    same record, and every live record against its latest history row (in one pass over both,
    ordered by record id, so memory stays flat)."""
    record_model = history_model.instance_type
    key = record_key_attname(history_model)
    hashed = _hashed_attnames(history_model)
    tracked = [f.attname for f in history_model.tracked_fields if f.attname != key]
    fields_by_attname = {f.attname: f for f in history_model._meta.concrete_fields}
    report = TableReport(label=record_model._meta.label, table=history_model._meta.db_table)

    columns = ["history_id", "row_hash", *hashed]
    history_rows = (
        history_model._base_manager.order_by(key, "history_id")
        .values_list(*columns)
        .iterator(chunk_size=CHUNK)
    )
    live_iter = _live_rows(record_model, tracked)
    live = next(live_iter, None)

    def table_link(kind: str, history_id: int | None, record_id: Any, detail: str) -> None:
        report.add(BrokenLink(kind, report.table, history_id, record_id, detail))

    def close_record(record_id: Any, last: dict[str, Any]) -> None:
        """Compare the record's latest history row with the live row, then move past it."""
        nonlocal live
        while live is not None and live[0] < record_id:
            table_link(NO_HISTORY, None, live[0], "a stored record has no history row")
            live = next(live_iter, None)
        if live is not None and live[0] == record_id:
            if last["history_type"] == "-":
                table_link(
                    HISTORY_DISAGREES,
                    last["history_id"],
                    record_id,
                    "the history says the record was deleted, but it is stored",
                )
            else:
                differing = [
                    attname
                    for attname, value in zip(tracked, live[1:], strict=True)
                    if canonical_value(fields_by_attname[attname], value)
                    != canonical_value(fields_by_attname[attname], last.get(attname))
                ]
                if differing:
                    table_link(
                        HISTORY_DISAGREES,
                        last["history_id"],
                        record_id,
                        "the stored record differs in "
                        + ", ".join(differing)
                        + " (history truncated or edited, or a change made without history)",
                    )
            live = next(live_iter, None)
        elif last["history_type"] != "-":
            table_link(
                DELETED_UNRECORDED,
                last["history_id"],
                record_id,
                "the record is not stored but its last history row is not a deletion",
            )

    current: Any = None
    last: dict[str, Any] | None = None
    previous_hash = ""
    for values in history_rows:
        row = dict(zip(columns, values, strict=True))
        record_id = row[key]
        if last is not None and record_id != current:
            close_record(current, last)
            previous_hash = ""
        if record_id != current:
            report.records_checked += 1
        current = record_id
        report.rows_checked += 1
        stored = row["row_hash"]
        if not stored:
            table_link(MISSING_HASH, row["history_id"], record_id, "the row has no hash")
        elif not _same(stored, row_hash_of(history_model, row, previous_hash)):
            table_link(
                HASH_MISMATCH,
                row["history_id"],
                record_id,
                "the row's content or its place in the chain changed after it was written "
                "(row edited, or an earlier row of the record deleted or inserted)",
            )
        previous_hash = stored or ""
        last = row
    if last is not None:
        close_record(current, last)
    while live is not None:
        table_link(NO_HISTORY, None, live[0], "a stored record has no history row")
        live = next(live_iter, None)
    return report


def verify_chain(models: Iterable[type[models.Model]] | None = None) -> list[TableReport]:
    """One report per history table (all of them, or the given history models)."""
    return [verify_table(model) for model in (models or history_models())]


# --- sealing rows written before the chain existed --------------------------------------------


@dataclass
class SealReport:
    label: str
    sealed: int = 0
    relinked: int = 0
    gaps_left: int = 0
    invalid_left: int = 0
    populated: int = 0


POPULATED_REASON = "History started by seal_audit (the record had none)."


def populate_missing(history_model: type[models.Model], *, dry_run: bool = False) -> int:
    """Write a sealed initial history row ("+", no user, reason POPULATED_REASON) for every
    stored record that has none: rows inserted by data migrations (the study) or before the
    model was audited. Like simple-history's populate_history, but chained. Returns the count."""
    record_model = history_model.instance_type
    key = record_key_attname(history_model)
    missing = record_model._base_manager.exclude(
        pk__in=history_model._base_manager.values(key)
    ).order_by("pk")
    count = 0
    batch: list[models.Model] = []
    for record in missing.iterator(chunk_size=CHUNK):
        batch.append(record)
        if len(batch) >= CHUNK:
            count += len(batch)
            if not dry_run:
                bulk_history_create(record_model, batch, default_change_reason=POPULATED_REASON)
            batch = []
    count += len(batch)
    if batch and not dry_run:
        bulk_history_create(record_model, batch, default_change_reason=POPULATED_REASON)
    return count


def seal_table(
    history_model: type[models.Model], *, include_gaps: bool = False, dry_run: bool = False
) -> SealReport:
    """Fill `row_hash` of the rows that have none, in (record id, history_id) order.

    Rows written before the chain existed form the leading part of each record's history; the
    first rows written after the upgrade were chained to their empty hash, so once those legacy
    rows are sealed the later rows are re-hashed onto them, each only after its stored hash is
    proved valid against the old chain (so sealing never blesses an edited row). A row without a
    hash that follows a sealed row of the same record is not a legacy row (its hash was removed,
    or a bulk path skipped `seal_history`): it is counted and left for `verify_audit` to report,
    unless `include_gaps`. Keyset pagination and one bulk UPDATE per chunk keep memory flat.
    """
    report = SealReport(label=history_model.instance_type._meta.label)
    key = record_key_attname(history_model)
    hashed = _hashed_attnames(history_model)
    columns = ["history_id", "row_hash", *hashed]
    manager = history_model._base_manager
    after: tuple[Any, int] | None = None
    current: Any = None
    old_previous = new_previous = ""
    seen_sealed = broken = False
    while True:
        queryset = manager.order_by(key, "history_id")
        if after is not None:
            queryset = queryset.filter(
                Q(**{f"{key}__gt": after[0]}) | Q(**{key: after[0], "history_id__gt": after[1]})
            )
        chunk = list(queryset.values_list(*columns)[:CHUNK])
        if not chunk:
            break
        updates = []
        for values in chunk:
            row = dict(zip(columns, values, strict=True))
            if row[key] != current:
                current, old_previous, new_previous = row[key], "", ""
                seen_sealed = broken = False
            stored = row["row_hash"]
            if broken:
                # Past an invalid row nothing of this record is rewritten: verify_audit reports it.
                new_hash = stored
            elif not stored:
                if seen_sealed and not include_gaps:
                    report.gaps_left += 1
                    broken = True
                    new_hash = stored
                else:
                    new_hash = row_hash_of(history_model, row, new_previous)
                    report.sealed += 1
            else:
                seen_sealed = True
                valid = _same(stored, row_hash_of(history_model, row, old_previous))
                if not valid:
                    report.invalid_left += 1
                    broken = True
                    new_hash = stored
                elif new_previous != old_previous:
                    new_hash = row_hash_of(history_model, row, new_previous)
                    report.relinked += 1
                else:
                    new_hash = stored
            if new_hash != stored:
                updates.append(history_model(history_id=row["history_id"], row_hash=new_hash))
            old_previous, new_previous = stored or "", new_hash or ""
        if updates and not dry_run:
            with transaction.atomic(using=router.db_for_write(history_model)):
                manager.bulk_update(updates, ["row_hash"], batch_size=500)
        after = (chunk[-1][columns.index(key)], chunk[-1][0])
    return report
