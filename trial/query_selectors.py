"""Reads of the data queries: the open queries of a record (the marker on its form), one query
with its thread, the per-site query list, the counts by age for the dashboard, and where a
query's record is entered. Every read that a user makes is scoped to their sites
(`trial.scoping`); a query of another site is a 404.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from trial.lifecycle_selectors import form_url
from trial.models import AuditedModel, DataQuery, QueryMessage, QueryStatus
from trial.queries import field_label, record_patient
from trial.scoping import scope_to_user_sites, site_ids_for

# --- age ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeBucket:
    key: str
    label: str
    low: int  # days, inclusive
    high: int | None  # days, inclusive; None: no upper bound


AGE_BUCKETS: tuple[AgeBucket, ...] = (
    AgeBucket("0-7", _("0–7 days"), 0, 7),
    AgeBucket("8-14", _("8–14 days"), 8, 14),
    AgeBucket("15-30", _("15–30 days"), 15, 30),
    AgeBucket("31+", _("more than 30 days"), 31, None),
)
AGE_BUCKETS_BY_KEY = {bucket.key: bucket for bucket in AGE_BUCKETS}
UNRESOLVED = (QueryStatus.OPEN, QueryStatus.ANSWERED)


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _age_filter(bucket: AgeBucket, today: date) -> Q:
    """Queries raised between `bucket.high` and `bucket.low` days before `today` (in days of
    the study's time zone: a query raised yesterday evening is 1 day old)."""
    condition = Q(raised_at__lt=_start_of(today - timedelta(days=bucket.low - 1)))
    if bucket.high is not None:
        condition &= Q(raised_at__gte=_start_of(today - timedelta(days=bucket.high)))
    return condition


def query_age_days(query: DataQuery, today: date) -> int:
    """Days from the query's raising to `today`, or to its closing for a closed query."""
    end = timezone.localdate(query.closed_at) if query.closed_at else today
    return (end - timezone.localdate(query.raised_at)).days


# --- one record -----------------------------------------------------------------------------


def open_queries_by_field(record: models.Model) -> dict[str, list[DataQuery]]:
    """The queries of `record` not yet closed (open or answered), by field ("" for the whole
    form), oldest first. One query; none for an unsaved record."""
    if record.pk is None:
        return {}
    meta = record._meta.concrete_model._meta
    rows = DataQuery.objects.filter(
        content_type__app_label=meta.app_label,
        content_type__model=meta.model_name,
        object_id=record.pk,
        status__in=UNRESOLVED,
    ).order_by("raised_at", "pk")
    result: dict[str, list[DataQuery]] = defaultdict(list)
    for query in rows:
        result[query.field].append(query)
    return dict(result)


def queryable_record_get(
    *, user: AbstractBaseUser | AnonymousUser, label: str, pk: int
) -> models.Model:
    """The clinical record `label` ("app_label.model_name") `pk` of a patient at the user's
    sites, with its patient. Http404 for an unknown model, a model that is not a clinical
    record, a missing record or one of another site."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise Http404("No such form.") from exc
    if not issubclass(model, AuditedModel):
        raise Http404("Not a clinical record.")
    record = model._base_manager.filter(pk=pk).first()
    patient = record_patient(record) if record is not None else None
    if patient is None or patient.site_id not in site_ids_for(user):
        raise Http404("No such record at your sites.")
    return record


# --- where a record is entered ----------------------------------------------------------------


def record_form_url(*, label: str, object_id: int, patient_id: int) -> str:
    """The page of form `label` record `object_id` of patient `patient_id` (one map of the
    edit pages: `trial.lifecycle_selectors.EDIT_PAGES`). No query."""
    return form_url(label, object_id, patient_id)


# --- one query --------------------------------------------------------------------------------


def _with_context(queryset: QuerySet) -> QuerySet:
    return queryset.select_related("patient", "site", "content_type", "raised_by")


def query_get(*, user: AbstractBaseUser | AnonymousUser, pk: int) -> DataQuery:
    """Query `pk` of one of the user's sites, with its thread (messages and authors) in
    `thread`. Two queries. Http404 for any other query."""
    messages = QueryMessage.objects.select_related("author").order_by("at", "pk")
    queryset = _with_context(scope_to_user_sites(DataQuery.objects.all(), user)).prefetch_related(
        Prefetch("messages", queryset=messages, to_attr="thread")
    )
    try:
        return queryset.get(pk=pk)
    except DataQuery.DoesNotExist as exc:
        raise Http404("No such query at your sites.") from exc


# --- the list ---------------------------------------------------------------------------------

# Sort keys of the list page: key → ORDER BY (a leading "-" on the key reverses it).
SORTS: dict[str, tuple[str, ...]] = {
    "age": ("raised_at", "pk"),  # oldest first
    "subject": ("patient__subject_code", "raised_at", "pk"),
    "form": ("content_type__model", "raised_at", "pk"),
    "status": ("status", "raised_at", "pk"),
    "site": ("site__code", "raised_at", "pk"),
    "last": ("last_at", "pk"),
}
DEFAULT_SORT = "age"


def _order(sort: str) -> tuple[str, ...]:
    descending = sort.startswith("-")
    fields = SORTS.get(sort.lstrip("-"), SORTS[DEFAULT_SORT])
    if not descending:
        return fields
    return tuple(f[1:] if f.startswith("-") else f"-{f}" for f in fields)


def query_list(
    *,
    user: AbstractBaseUser | AnonymousUser,
    today: date,
    status: str = "",
    kind: str = "",
    rule: str = "",
    site_id: int | None = None,
    age: str = "",
    sort: str = DEFAULT_SORT,
) -> QuerySet[DataQuery]:
    """The queries of the user's sites, filtered (an empty filter keeps everything; `status`
    "unresolved" keeps open and answered; `age` a key of AGE_BUCKETS) and sorted (a key of
    SORTS, "-" for the reverse). Each row carries its patient, site, form (content type) and
    its last message (`last_text`, `last_action`, `last_at`), so a page of it is one query
    whatever its length."""
    queryset = scope_to_user_sites(DataQuery.objects.all(), user)
    if status == "unresolved":
        queryset = queryset.filter(status__in=UNRESOLVED)
    elif status:
        queryset = queryset.filter(status=status)
    if kind:
        queryset = queryset.filter(kind=kind)
    if rule:
        queryset = queryset.filter(rule=rule)
    if site_id is not None:
        queryset = queryset.filter(site_id=site_id)
    if age in AGE_BUCKETS_BY_KEY:
        queryset = queryset.filter(_age_filter(AGE_BUCKETS_BY_KEY[age], today))
    last = QueryMessage.objects.filter(query=OuterRef("pk")).order_by("-at", "-pk")
    queryset = queryset.annotate(
        last_text=Subquery(last.values("text")[:1]),
        last_action=Subquery(last.values("action")[:1]),
        last_at=Subquery(last.values("at")[:1]),
    )
    return _with_context(queryset).order_by(*_order(sort))


@dataclass(frozen=True)
class QueryRow:
    """A row of the list page, everything computed (no query per row)."""

    query: DataQuery
    form: str
    field: str
    age_days: int
    last_action: str
    record_url: str


def query_rows(queries: list[DataQuery], *, today: date) -> list[QueryRow]:
    """The list page's rows for a page of `query_list`. No query."""
    actions = dict(QueryMessage.Action.choices)
    rows = []
    for query in queries:
        model = query.content_type.model_class()
        rows.append(
            QueryRow(
                query=query,
                form=str(model._meta.verbose_name).capitalize()
                if model
                else query.content_type.model,
                field=field_label(model, query.field),
                age_days=query_age_days(query, today),
                last_action=str(actions.get(query.last_action, "")),
                record_url=record_form_url(
                    label=f"{query.content_type.app_label}.{query.content_type.model}",
                    object_id=query.object_id,
                    patient_id=query.patient_id,
                ),
            )
        )
    return rows


# --- the dashboard ------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeCounts:
    """Unresolved queries of the user's sites by age bucket: open ones (waiting for the site)
    and answered ones (waiting for the monitor)."""

    buckets: tuple[AgeBucket, ...]
    open: dict[str, int]
    answered: dict[str, int]

    @property
    def open_total(self) -> int:
        return sum(self.open.values())

    @property
    def answered_total(self) -> int:
        return sum(self.answered.values())

    def rows(self) -> list[tuple[str, str, list[tuple[str, int]], int]]:
        """(status, label, [(bucket key, count)], total) per status, for the template."""
        return [
            (
                status,
                label,
                [(b.key, counts[b.key]) for b in self.buckets],
                sum(counts.values()),
            )
            for status, label, counts in (
                (QueryStatus.OPEN, QueryStatus.OPEN.label, self.open),
                (QueryStatus.ANSWERED, QueryStatus.ANSWERED.label, self.answered),
            )
        ]


def query_age_counts(*, user: AbstractBaseUser | AnonymousUser, today: date) -> AgeCounts:
    """Open and answered queries of the user's sites counted by age bucket on `today`. One
    query."""
    names: dict[str, tuple[str, str]] = {}
    aggregates = {}
    for status in UNRESOLVED:
        for index, bucket in enumerate(AGE_BUCKETS):
            name = f"n_{status}_{index}"
            names[name] = (status, bucket.key)
            aggregates[name] = Count("pk", filter=Q(status=status) & _age_filter(bucket, today))
    totals = scope_to_user_sites(DataQuery.objects.all(), user).aggregate(**aggregates)
    by_status: dict[str, dict[str, int]] = {status: {} for status in UNRESOLVED}
    for name, count in totals.items():
        status, key = names[name]
        by_status[status][key] = count or 0
    return AgeCounts(
        buckets=AGE_BUCKETS,
        open=by_status[QueryStatus.OPEN],
        answered=by_status[QueryStatus.ANSWERED],
    )
