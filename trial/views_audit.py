"""The audit-trail viewer: a patient's trail and one record's trail, on the page, as CSV and as
PDF. Monitors and data managers (trial.view_audit), for the patients of their sites."""

import io

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from trial import audit_exports, audit_selectors
from trial.audit_selectors import AuditTrail

PER_PAGE = 200


def _filters(request: HttpRequest) -> dict[str, str]:
    return {
        "form": request.GET.get("form", "").strip(),
        "user_id": request.GET.get("user", "").strip(),
    }


def _user_name(request: HttpRequest) -> str:
    """ "Full Name (username)": the name a reader knows, the account the log shows."""
    username = request.user.get_username()
    full = request.user.get_full_name()
    return f"{full} ({username})" if full else username


def _filter_text(trail: AuditTrail, filters: dict[str, str]) -> str:
    """The filters in force, in words, for the export header."""
    parts = []
    forms = dict(trail.forms)
    users = dict(trail.users)
    if filters["form"]:
        parts.append(_("form: %(form)s") % {"form": forms.get(filters["form"], filters["form"])})
    if filters["user_id"]:
        parts.append(_("user: %(user)s") % {"user": users.get(filters["user_id"], "—")})
    return "; ".join(parts)


def _respond(
    request: HttpRequest,
    *,
    trail: AuditTrail,
    filters: dict[str, str],
    subject: str,
    filename: str,
    template: str,
    context: dict,
) -> HttpResponse:
    """The trail in the format asked for (?format=csv|pdf), else the paginated page."""
    export = request.GET.get("format", "")
    if export in ("csv", "pdf"):
        trail.entries = audit_selectors.without_phi_values(trail.entries)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if export == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.csv"'
        text = io.StringIO()
        audit_exports.write_csv(trail.entries, text)
        response.write(text.getvalue())
        return response
    if export == "pdf":
        header = audit_exports.PdfHeader(
            study=audit_selectors.study_title(),
            subject=subject,
            generated_at=timezone.now(),
            generated_by=_user_name(request),
            filters=_filter_text(trail, filters),
        )
        data = io.BytesIO()
        audit_exports.write_pdf(trail.entries, header, data)
        response = HttpResponse(data.getvalue(), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.pdf"'
        return response
    page = Paginator(trail.entries, PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    context.update(
        {
            "trail": trail,
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
        }
    )
    return render(request, template, context)


@login_required
@permission_required("trial.view_audit", raise_exception=True)
def patient_audit(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = audit_selectors.audit_patient_get(patient_id=patient_pk, user=request.user)
    filters = _filters(request)
    trail = audit_selectors.patient_audit(patient=patient, user=request.user, **filters)
    return _respond(
        request,
        trail=trail,
        filters=filters,
        subject=_("Subject %(code)s") % {"code": patient.subject_code},
        filename=f"audit-{patient.subject_code}",
        template="trial/audit/patient.html",
        context={"patient": patient},
    )


@login_required
@permission_required("trial.view_audit", raise_exception=True)
def record_audit(request: HttpRequest, label: str, pk: int) -> HttpResponse:
    record = audit_selectors.audit_record_get(label=label, pk=pk, user=request.user)
    filters = _filters(request)
    trail = audit_selectors.record_audit(record=record, **filters)
    subject = record.label
    if record.patient is not None:
        subject = _("Subject %(code)s") % {"code": record.patient.subject_code} + " · " + subject
    return _respond(
        request,
        trail=trail,
        filters=filters,
        subject=subject,
        filename=f"audit-{record.form}-{record.pk}",
        template="trial/audit/record.html",
        context={"record": record, "patient": record.patient},
    )
