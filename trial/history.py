"""Readable audit history: who, when, what changed (old → new) and why, from simple-history rows."""

from collections import defaultdict
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
    form: str = ""  # the record's model, "app_label.model_name"
    history_id: int = 0
    user_id: int | None = None


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


def _relation_targets(model: type[Model], attnames: list[str]) -> dict[str, type[Model]]:
    """The model each foreign key among `attnames` points at, by field name."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return {
        by_attname[attname].name: by_attname[attname].related_model
        for attname in attnames
        if by_attname[attname].is_relation
    }


def record_history(histories: Iterable[QuerySet]) -> list[Entry]:
    """Entries for every historical row of the given history querysets, newest first.

    Each queryset is one model's `history` manager filtered to the records wanted. Rows are
    compared with the previous row of the same record in Python: one query per model, then one
    per model referenced by a foreign key (users, regimen lines …) across all the models, so
    the number of queries does not grow with the number of rows.
    """
    fetched = []
    wanted_ids: dict[type[Model], set] = defaultdict(set)
    for queryset in histories:
        model = queryset.model.instance_type
        names = [f.attname for f in model._meta.concrete_fields if f.name not in _SKIP]
        rows = list(queryset.select_related("history_user").order_by("history_date", "history_id"))
        targets = _relation_targets(model, names)
        for name, target in targets.items():
            attname = model._meta.get_field(name).attname
            wanted_ids[target].update(getattr(row, attname) for row in rows)
        fetched.append((model, names, targets, rows))
    objects = {
        target: target._base_manager.in_bulk(ids - {None}) if ids - {None} else {}
        for target, ids in wanted_ids.items()
    }
    entries: list[Entry] = []
    for model, names, targets, rows in fetched:
        related = {name: objects[target] for name, target in targets.items()}
        key = model._meta.pk.attname
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        previous: dict[object, Model] = {}
        for row in rows:
            record_id = getattr(row, key)
            before = previous.get(record_id)
            changes = []
            for attname in names:
                new = getattr(row, attname)
                old = getattr(before, attname) if before is not None else None
                if before is None and new in (None, "", False):
                    continue
                if before is not None and old == new:
                    continue
                name = by_attname[attname].name
                label = str(by_attname[attname].verbose_name)
                changes.append(
                    Change(
                        label,
                        _display(model, name, old, related) if before else "",
                        _display(model, name, new, related),
                    )
                )
            previous[record_id] = row
            entries.append(
                Entry(
                    at=row.history_date,
                    user=str(row.history_user or _("system")),
                    record=str(model._meta.verbose_name),
                    record_id=record_id,
                    kind=str(_KIND.get(row.history_type, row.history_type)),
                    reason=row.history_change_reason or "",
                    version=getattr(row, "version", None),
                    changes=changes,
                    form=model._meta.label_lower,
                    history_id=row.history_id,
                    user_id=row.history_user_id,
                )
            )
    entries.sort(key=lambda e: (e.at, e.history_id), reverse=True)
    return entries
