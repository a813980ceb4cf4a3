"""Pages of the data queries under /quality/: the per-site list, a query's thread (answer,
close, re-open) and raising a query on a record.

Who may do what is the role matrix: `trial.raise_query` (monitors, data managers) raises,
closes and re-opens; `trial.answer_query` (coordinators, investigators) answers; either may
read. Every lookup is scoped to the user's sites, so a query or record of another site is a
404 before any permission is considered. The services check again and refuse without change.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trial import queries, query_selectors
from trial.checks import check_label, registered_checks
from trial.forms import QueryActionForm, QueryFilterForm, QueryRaiseForm
from trial.models import DataQuery, QueryStatus
from trial.scoping import sites_for

PAGE_SIZE = 50
READ_PERMISSIONS = (queries.RAISE_PERMISSION, queries.ANSWER_PERMISSION)


def _require_reader(request: HttpRequest) -> None:
    if not any(request.user.has_perm(p) for p in READ_PERMISSIONS):
        raise PermissionDenied(
            _("Only monitors, data managers, coordinators and investigators see queries.")
        )


def _service_errors(form, error: ValidationError) -> None:
    by_field = error.error_dict if hasattr(error, "error_dict") else {None: error.error_list}
    for field, errors in by_field.items():
        target = field if field in form.fields else None
        for item in errors:
            for message in item.messages:
                form.add_error(target, message)


@login_required
@require_http_methods(["GET"])
def query_list(request: HttpRequest) -> HttpResponse:
    """The queries of the user's sites: unresolved ones by default, oldest first."""
    _require_reader(request)
    sites = sites_for(request.user)
    data = request.GET.copy()
    data.setdefault("status", "unresolved")
    filters = QueryFilterForm(
        data,
        sites=sites,
        statuses=[("unresolved", _("Open or answered")), *QueryStatus.choices],
        kinds=DataQuery.Kind.choices,
        rules=[(check.code, check.label) for check in registered_checks()],
        ages=[(bucket.key, bucket.label) for bucket in query_selectors.AGE_BUCKETS],
    )
    criteria = filters.cleaned_data if filters.is_valid() else {}
    today = timezone.localdate()
    sort = criteria.get("sort") or query_selectors.DEFAULT_SORT
    site = criteria.get("site")
    found = query_selectors.query_list(
        user=request.user,
        today=today,
        status=criteria.get("status", ""),
        kind=criteria.get("kind", ""),
        rule=criteria.get("rule", ""),
        site_id=site.pk if site else None,
        age=criteria.get("age", ""),
        sort=sort,
    )
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    keep = data.copy()
    keep.pop("page", None)
    keep.pop("sort", None)
    context = {
        "filters": filters,
        "page": page,
        "rows": query_selectors.query_rows(list(page), today=today),
        "sort": sort,
        "query": keep.urlencode(),
        "page_query": _without(data, "page"),
        "site_count": len(sites),
        "columns": [
            ("subject", _("Subject")),
            ("site", _("Site")),
            ("form", _("Form")),
            ("", _("Field")),
            ("status", _("Status")),
            ("age", _("Age (days)")),
            ("last", _("Last message")),
        ],
    }
    return render(request, "trial/queries/query_list.html", context)


def _without(data, key: str) -> str:
    kept = data.copy()
    kept.pop(key, None)
    return kept.urlencode()


@login_required
@require_http_methods(["GET", "POST"])
def query_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A query's thread, with the steps the user may take: answer (`trial.answer_query`, open
    queries), close and re-open (`trial.raise_query`)."""
    query = query_selectors.query_get(user=request.user, pk=pk)
    _require_reader(request)
    user = request.user
    can_answer = user.has_perm(queries.ANSWER_PERMISSION) and query.status == QueryStatus.OPEN
    can_close = user.has_perm(queries.RAISE_PERMISSION) and query.status != QueryStatus.CLOSED
    can_reopen = user.has_perm(queries.RAISE_PERMISSION) and query.status != QueryStatus.OPEN
    form = None
    if request.method == "POST":
        form = QueryActionForm(request.POST)
        if form.is_valid():
            action = form.cleaned_data["action"]
            step, done = {
                QueryActionForm.ANSWER: (queries.query_answer, _("The answer was sent.")),
                QueryActionForm.CLOSE: (queries.query_close, _("The query was closed.")),
                QueryActionForm.REOPEN: (queries.query_reopen, _("The query was re-opened.")),
            }[action]
            try:
                step(query, user=user, text=form.cleaned_data["text"])
            except ValidationError as error:
                _service_errors(form, error)
            else:
                messages.success(request, done)
                return redirect("quality:query-detail", pk=query.pk)
    model = query.content_type.model_class()
    context = {
        "query": query,
        "form": form,
        "failed_action": form.data.get("action") if form is not None else "",
        "form_label": str(model._meta.verbose_name).capitalize() if model else "",
        "field_label": queries.field_label(model, query.field),
        "rule_label": check_label(query.rule) if query.rule else "",
        "age_days": query_selectors.query_age_days(query, timezone.localdate()),
        "record_url": query_selectors.record_form_url(
            label=f"{query.content_type.app_label}.{query.content_type.model}",
            object_id=query.object_id,
            patient_id=query.patient_id,
        ),
        "can_answer": can_answer,
        "can_close": can_close,
        "can_reopen": can_reopen,
    }
    return render(request, "trial/queries/query_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def query_new(request: HttpRequest, label: str, pk: int) -> HttpResponse:
    """Raise a query on a record (`?field=` preselects the field; empty: the whole form)."""
    record = query_selectors.queryable_record_get(user=request.user, label=label, pk=pk)
    if not request.user.has_perm(queries.RAISE_PERMISSION):
        raise PermissionDenied(_("Only monitors and data managers raise queries."))
    model = type(record)
    choices = [(f.name, str(f.verbose_name).capitalize()) for f in queries.queryable_fields(model)]
    if request.method == "POST":
        form = QueryRaiseForm(request.POST, fields=choices)
    else:
        form = QueryRaiseForm(initial={"field": request.GET.get("field", "")}, fields=choices)
    if request.method == "POST" and form.is_valid():
        try:
            query = queries.query_raise(
                record,
                user=request.user,
                field=form.cleaned_data["field"],
                text=form.cleaned_data["text"],
            )
        except ValidationError as error:
            _service_errors(form, error)
        else:
            messages.success(request, _("The query was raised."))
            return redirect("quality:query-detail", pk=query.pk)
    patient = queries.record_patient(record)
    open_queries = [q for qs in query_selectors.open_queries_by_field(record).values() for q in qs]
    context = {
        "form": form,
        "record": record,
        "patient": patient,
        "form_label": str(model._meta.verbose_name).capitalize(),
        "open_queries": open_queries,
        "record_url": query_selectors.record_form_url(
            label=model._meta.label_lower, object_id=record.pk, patient_id=patient.pk
        ),
        "list_url": reverse("quality:query-list"),
    }
    return render(request, "trial/queries/query_new.html", context)
