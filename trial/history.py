"""Readable audit history: who, when, what changed (old → new) and why, from simple-history rows."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _

# Bookkeeping columns, and the patient link (the page is already about one patient).
_SKIP = {"updated_at", "updated_by", "version", "created_at", "created_by", "id", "patient"}
_KIND = {"+": _("created"), "~": _("changed"), "-": _("deleted")}


@dataclass(frozen=True)
class Change:
    label: str
    old: str
    new: str


@dataclass
class Entry:
    at: datetime
    user: str
    record: str
    record_id: int
    kind: str
    reason: str
    version: int | None
    changes: list[Change] = field(default_factory=list)


def _display(model: type[Model], name: str, value: object, related: dict) -> str:
    if value is None or value == "":
        return "—"
    model_field = model._meta.get_field(name)
    if model_field.is_relation:
        return str(related.get(name, {}).get(value, value))
    if model_field.choices:
        return str(dict(model_field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    return str(value)


def _related_objects(model: type[Model], attnames: list[str], rows: list) -> dict:
    """For each foreign key among `attnames`, the referenced objects by id (one query each)."""
    related = {}
    for attname in attnames:
        if not attname.endswith("_id"):
            continue
        name = attname[:-3]
        target = model._meta.get_field(name).related_model
        ids = {getattr(row, attname) for row in rows} - {None}
        related[name] = target._base_manager.in_bulk(ids) if ids else {}
    return related


def record_history(histories: Iterable[QuerySet]) -> list[Entry]:
    """Entries for every historical row of the given history querysets, newest first.

    Each queryset is one model's `history` manager filtered to the records wanted. Rows are
    compared with the previous row of the same record in Python: one query per model.
    """
    entries: list[Entry] = []
    for queryset in histories:
        model = queryset.model.instance_type
        names = [f.attname for f in model._meta.concrete_fields if f.name not in _SKIP]
        rows = list(queryset.select_related("history_user").order_by("history_date", "history_id"))
        related = _related_objects(model, names, rows)
        previous: dict[int, Model] = {}
        for row in rows:
            before = previous.get(row.id)
            changes = []
            for attname in names:
                new = getattr(row, attname)
                old = getattr(before, attname) if before is not None else None
                if before is None and new in (None, "", False):
                    continue
                if before is not None and old == new:
                    continue
                name = attname[:-3] if attname.endswith("_id") and attname != "id" else attname
                label = str(model._meta.get_field(name).verbose_name)
                changes.append(
                    Change(
                        label,
                        _display(model, name, old, related) if before else "",
                        _display(model, name, new, related),
                    )
                )
            previous[row.id] = row
            entries.append(
                Entry(
                    at=row.history_date,
                    user=str(row.history_user or _("system")),
                    record=str(model._meta.verbose_name),
                    record_id=row.id,
                    kind=str(_KIND.get(row.history_type, row.history_type)),
                    reason=row.history_change_reason or "",
                    version=getattr(row, "version", None),
                    changes=changes,
                )
            )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries
