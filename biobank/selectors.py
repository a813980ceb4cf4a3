"""Reads of the biobank for views and the patient page; all scoped to the user's sites, each in
a fixed number of queries however many specimens there are."""

from collections import Counter
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from biobank.models import Box, CustodyEvent, Specimen, position_label
from trial.scoping import scope_to_user_sites

_SPECIMEN_RELATED = ("patient", "operation", "parent", "box__rack__freezer")


def _specimens(user: AbstractBaseUser) -> QuerySet[Specimen]:
    return scope_to_user_sites(Specimen.objects.active(), user, site_field="patient__site")


def specimen_search(
    *, user: AbstractBaseUser, q: str = "", kind: str = "", state: str = "", limit: int = 100
) -> list[Specimen]:
    """Specimens of the user's sites whose code or patient subject code contains `q`
    (case-insensitive), of `kind` and custody `state` if given; at most `limit`, by code."""
    queryset = _specimens(user).select_related(*_SPECIMEN_RELATED)
    q = (q or "").strip()
    if q:
        queryset = queryset.filter(Q(code__icontains=q) | Q(patient__subject_code__icontains=q))
    if kind:
        queryset = queryset.filter(kind=kind)
    if state:
        queryset = queryset.filter(state=state)
    return list(queryset.order_by("code")[:limit])


def specimen_get(*, specimen_id: int, user: AbstractBaseUser) -> Specimen:
    """One specimen of the user's sites with its events (and who recorded them) and aliquots;
    Http404 for any other specimen."""
    events = CustodyEvent.objects.active().select_related("by", "box").order_by("at", "id")
    queryset = (
        scope_to_user_sites(Specimen.objects.all(), user, site_field="patient__site")
        .select_related("patient__site", *_SPECIMEN_RELATED)
        .prefetch_related(
            Prefetch("events", queryset=events),
            Prefetch("aliquots", queryset=Specimen.objects.active().order_by("code")),
        )
    )
    try:
        return queryset.get(pk=specimen_id)
    except Specimen.DoesNotExist as exc:
        raise Http404("No such specimen at your sites.") from exc


def box_list(*, user: AbstractBaseUser) -> list[Box]:
    """The boxes of the user's sites with freezer, rack and the number of occupied positions."""
    queryset = scope_to_user_sites(Box.objects.active(), user, site_field="rack__freezer__site")
    occupied = Count("specimens", filter=Q(specimens__voided_at__isnull=True))
    return list(
        queryset.select_related("rack__freezer__site")
        .annotate(occupied=occupied)
        .order_by("rack__freezer__site__code", "rack__freezer__name", "rack__name", "name")
    )


def box_get(*, box_id: int, user: AbstractBaseUser) -> Box:
    """One box of the user's sites; Http404 for any other."""
    queryset = scope_to_user_sites(Box.objects.active(), user, site_field="rack__freezer__site")
    try:
        return queryset.select_related("rack__freezer__site").get(pk=box_id)
    except Box.DoesNotExist as exc:
        raise Http404("No such box at your sites.") from exc


@dataclass(frozen=True)
class Cell:
    row: int
    column: int
    specimen: Specimen | None

    @property
    def label(self) -> str:
        return position_label(self.row, self.column)


def box_grid(*, box: Box) -> list[list[Cell]]:
    """The box as rows of cells, each with its occupant or None. One query."""
    occupants = {
        (s.row, s.column): s
        for s in Specimen.objects.active().filter(box=box).select_related("patient")
    }
    return [
        [Cell(row, column, occupants.get((row, column))) for column in range(1, box.columns + 1)]
        for row in range(1, box.rows + 1)
    ]


def patient_specimens(*, patient) -> list[Specimen]:
    """The patient's specimens (aliquots after their parent, by code) with their events and
    position. Three queries."""
    events = CustodyEvent.objects.active().select_related("by").order_by("at", "id")
    return list(
        Specimen.objects.active()
        .filter(patient=patient)
        .select_related("box__rack__freezer")
        .prefetch_related(Prefetch("events", queryset=events))
        .order_by("code")
    )


@dataclass(frozen=True)
class PatientSummary:
    total: int
    by_kind: list[tuple[str, int]]
    by_state: list[tuple[str, int]]
    flagged: int


def patient_specimen_summary(*, patient) -> PatientSummary:
    """Counts of the patient's specimens by kind and custody status, and how many await
    destruction. One query."""
    rows = list(
        Specimen.objects.active()
        .filter(patient=patient)
        .values_list("kind", "state", "flagged_for_destruction")
    )
    kinds = Counter(kind for kind, _state, _flag in rows)
    states = Counter(state for _kind, state, _flag in rows)
    flagged = sum(1 for _kind, state, flag in rows if flag and state != Specimen.State.DESTROYED)
    return PatientSummary(
        total=len(rows),
        by_kind=[(label, kinds[value]) for value, label in Specimen.Kind.choices if kinds[value]],
        by_state=[
            (label, states[value]) for value, label in Specimen.State.choices if states[value]
        ],
        flagged=flagged,
    )


def destruction_worklist(*, user: AbstractBaseUser) -> list[Specimen]:
    """Specimens of the user's sites flagged for destruction (biobank consent withdrawn) that
    have no "destroyed" event yet, oldest flag first."""
    return list(
        _specimens(user)
        .filter(flagged_for_destruction=True)
        .exclude(state=Specimen.State.DESTROYED)
        .select_related("patient", "box__rack__freezer")
        .order_by("flagged_on", "code")
    )
