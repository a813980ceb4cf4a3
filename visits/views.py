"""Pages of the visits app: the worklist of due and overdue visits, closing a visit as missed
and reopening it.

Every patient lookup goes through `patients.selectors.patient_get` (a patient of another site
is a 404) before anything else is read.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from patients.selectors import patient_get
from trial.http import is_htmx
from trial.scoping import sites_for
from trial.views import void_page
from visits import selectors, services
from visits.forms import VisitCloseForm, WorklistFilterForm
from visits.models import ExpectedVisit, VisitClosure

PAGE_SIZE = 50


def _sort_links(query: str, order: str) -> dict[str, dict]:
    """For each sortable column: the URL that sorts by it (reversed when it already sorts
    ascending) and its aria-sort value."""
    key, descending = order.lstrip("-"), order.startswith("-")
    links = {}
    for column in selectors.ORDERS:
        current = column == key
        wanted = f"-{column}" if current and not descending else column
        links[column] = {
            "url": "?%s%sorder=%s" % (query, "&" if query else "", wanted),
            "aria": ("descending" if descending else "ascending") if current else "none",
        }
    return links


def _next_url(request: HttpRequest, fallback: str) -> str:
    """Where to go back to: the `next` parameter when it is a page of this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@login_required
@permission_required("visits.view_expectedvisit", raise_exception=True)
def worklist(request: HttpRequest) -> HttpResponse:
    sites = sites_for(request.user)
    filters = WorklistFilterForm(request.GET or None, sites=sites)
    criteria = filters.criteria()
    today = timezone.localdate()
    work = selectors.worklist(user=request.user, today=today, **criteria)
    page = Paginator(work.visits, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    for name in ("page", "order"):
        query.pop(name, None)
    context = {
        "filters": filters,
        "worklist": work,
        "page": page,
        "rows": work.rows(page.object_list),
        "page_query": "%s%sorder=%s" % (query.urlencode(), "&" if query else "", work.order),
        "order": work.order,
        "sort": _sort_links(query.urlencode(), work.order),
        "site_count": len(sites),
        "can_close": request.user.has_perm("visits.add_visitclosure"),
        "here": request.get_full_path(),
    }
    template = "visits/partials/_worklist_rows.html" if is_htmx(request) else "visits/worklist.html"
    return render(request, template, context)


@login_required
@permission_required("visits.add_visitclosure", raise_exception=True)
@require_http_methods(["GET", "POST"])
def visit_close(request: HttpRequest, patient_id: int, code: str) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    visit = selectors.with_current_line(
        ExpectedVisit.objects.filter(patient=patient, code=code)
    ).first()
    if visit is None:
        raise Http404(_("The protocol expects no such visit of this patient."))
    today = timezone.localdate()
    row = selectors.visit_rows([visit], today=today)[0]
    back = _next_url(request, reverse("patients:patient-detail", args=[patient.pk]))
    form = VisitCloseForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            services.visit_close(
                patient=patient,
                code=code,
                reason=form.cleaned_data["reason"],
                user=request.user,
                today=today,
            )
        except ValidationError as error:
            by_field = error.error_dict if hasattr(error, "error_dict") else {None: [error]}
            for field, errors in by_field.items():
                for item in errors:
                    for message in item.messages:
                        form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(
                request,
                _("%(visit)s of %(patient)s closed as missed.")
                % {"visit": row.label, "patient": patient.subject_code},
            )
            return redirect(back)
    context = {"patient": patient, "row": row, "form": form, "next": back, "cancel_url": back}
    return render(request, "visits/close_form.html", context)


@login_required
@permission_required("visits.change_visitclosure", raise_exception=True)
@require_http_methods(["GET", "POST"])
def visit_reopen(request: HttpRequest, patient_id: int, closure_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    closure = get_object_or_404(
        VisitClosure.objects.active().filter(patient=patient), pk=closure_id
    )
    visit = ExpectedVisit.objects.filter(patient=patient, code=closure.code).first()
    label = selectors.visit_label(visit.kind, visit.number) if visit else closure.code

    def reopen(reason, version):
        services.visit_reopen(
            closure=closure, user=request.user, reason=reason, expected_version=version
        )

    return void_page(
        request,
        patient=patient,
        record=closure,
        title=_("Reopen %(visit)s (%(code)s)") % {"visit": label, "code": closure.code},
        cancel_url=reverse("patients:patient-detail", args=[patient.pk]),
        void=reopen,
        done=_("%(visit)s reopened.") % {"visit": label},
        template="visits/reopen_form.html",
    )
