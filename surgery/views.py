"""Surgery pages under /patients/<id>/surgery/: the overview, MDT decisions, the operation,
pathology, complications, discharge and the postoperative labs.

Every patient lookup goes through `patients.selectors.patient_get` (a patient of another site
is a 404) before anything else is read; records are looked up within that patient.
"""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from assessments.forms.labs import TAB
from assessments.models import LabPanel, LabResult
from patients.models import Patient
from patients.selectors import patient_get
from surgery import postop, selectors, services
from surgery.forms import (
    ComplicationForm,
    DischargeForm,
    MdtDecisionForm,
    OperationForm,
    PathologyForm,
    PostopLabForm,
)
from surgery.models import Complication, Discharge, MdtDecision, Operation, Pathology
from trial.services import StaleRecordError
from trial.views import crf_submit, void_page

FORM_PAGE = "surgery/crf_form.html"


def _url(patient: Patient) -> str:
    return reverse("surgery:surgery", args=[patient.pk])


def _is_enrolled(patient: Patient) -> bool:
    enrollment = getattr(patient, "enrollment", None)
    return enrollment is not None and not enrollment.is_voided


def _operation_or_404(patient: Patient) -> Operation:
    operation = selectors.operation_get(patient=patient)
    if operation is None:
        raise Http404(_("No operation is recorded for this patient."))
    return operation


def _crf_page(request, *, patient, form, title, save, cancel_url, extra=None) -> HttpResponse:
    context = {"patient": patient, "title": title, "cancel_url": cancel_url, **(extra or {})}
    if request.method != "POST":
        return render(request, FORM_PAGE, {**context, "forms": [form], "form": form})
    return crf_submit(
        request,
        forms=[form],
        save=save,
        success_url=cancel_url,
        template=FORM_PAGE,
        context=context,
    )


# --- overview -------------------------------------------------------------------------------


@login_required
@permission_required("surgery.view_operation", raise_exception=True)
def surgery(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    context = {
        "patient": patient,
        "summary": selectors.surgery_summary(patient=patient),
        "enrolled": _is_enrolled(patient),
    }
    return render(request, "surgery/surgery.html", context)


# --- MDT decisions --------------------------------------------------------------------------


@login_required
@permission_required("surgery.view_mdtdecision", raise_exception=True)
def mdt_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    context = {
        "patient": patient,
        "decisions": selectors.mdt_decision_list(patient=patient),
        "enrolled": _is_enrolled(patient),
    }
    return render(request, "surgery/mdt_list.html", context)


def _mdt_page(request, patient: Patient, decision: MdtDecision, title: str) -> HttpResponse:
    chosen = (
        [e.evaluation for e in decision.evidence.all() if not e.is_voided] if decision.pk else []
    )
    form = MdtDecisionForm(
        request.POST if request.method == "POST" else None,
        instance=decision,
        evaluations=selectors.mdt_evaluation_choices(patient=patient),
        initial_evaluations=chosen,
        initial={} if decision.pk else {"decided_on": timezone.localdate()},
    )
    cancel_url = reverse("surgery:mdt-list", args=[patient.pk])

    def save(version, reason, complete):
        services.mdt_decision_save(
            decision=form.save(commit=False),
            evaluations=form.cleaned_data["evaluations"],
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return _crf_page(
        request, patient=patient, form=form, title=title, save=save, cancel_url=cancel_url
    )


@login_required
@permission_required("surgery.add_mdtdecision", raise_exception=True)
@require_http_methods(["GET", "POST"])
def mdt_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    decision = MdtDecision(patient=patient, investigator=request.user)
    return _mdt_page(request, patient, decision, _("New MDT decision"))


@login_required
@permission_required("surgery.change_mdtdecision", raise_exception=True)
@require_http_methods(["GET", "POST"])
def mdt_edit(request: HttpRequest, patient_id: int, decision_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    decision = get_object_or_404(
        MdtDecision.objects.active().filter(patient=patient), pk=decision_id
    )
    return _mdt_page(request, patient, decision, _("MDT decision"))


@login_required
@permission_required("surgery.change_mdtdecision", raise_exception=True)
@require_http_methods(["GET", "POST"])
def mdt_void(request: HttpRequest, patient_id: int, decision_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    decision = get_object_or_404(
        MdtDecision.objects.active().filter(patient=patient), pk=decision_id
    )

    def void(reason, version):
        services.mdt_decision_void(
            decision=decision, user=request.user, reason=reason, expected_version=version
        )

    return void_page(
        request,
        patient=patient,
        record=decision,
        title=_("Void MDT decision"),
        cancel_url=reverse("surgery:mdt-list", args=[patient.pk]),
        void=void,
        done=_("The MDT decision was voided; it stays in the audit trail."),
    )


# --- operation, pathology, discharge ----------------------------------------------------------


@login_required
@permission_required(("surgery.add_operation", "surgery.change_operation"), raise_exception=True)
@require_http_methods(["GET", "POST"])
def operation_form(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operation = selectors.operation_get(patient=patient) or Operation(patient=patient)
    decisions = MdtDecision.objects.active().filter(
        patient=patient, decision=MdtDecision.Decision.RADICAL_SURGERY
    )
    form = OperationForm(
        request.POST if request.method == "POST" else None,
        instance=operation,
        decisions=decisions,
    )

    def save(version, reason, complete):
        services.operation_save(
            operation=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    title = _("Operation") if operation.pk else _("Record the operation")
    return _crf_page(
        request, patient=patient, form=form, title=title, save=save, cancel_url=_url(patient)
    )


@login_required
@permission_required(("surgery.add_pathology", "surgery.change_pathology"), raise_exception=True)
@require_http_methods(["GET", "POST"])
def pathology_form(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operation = _operation_or_404(patient)
    pathology = Pathology.objects.filter(operation=operation).first() or Pathology(
        operation=operation
    )
    form = PathologyForm(request.POST if request.method == "POST" else None, instance=pathology)

    def save(version, reason, complete):
        services.pathology_save(
            pathology=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return _crf_page(
        request,
        patient=patient,
        form=form,
        title=_("Pathology"),
        save=save,
        cancel_url=_url(patient),
    )


@login_required
@permission_required(("surgery.add_discharge", "surgery.change_discharge"), raise_exception=True)
@require_http_methods(["GET", "POST"])
def discharge_form(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operation = _operation_or_404(patient)
    discharge = Discharge.objects.filter(operation=operation).first() or Discharge(
        operation=operation
    )
    form = DischargeForm(request.POST if request.method == "POST" else None, instance=discharge)

    def save(version, reason, complete):
        services.discharge_save(
            discharge=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return _crf_page(
        request,
        patient=patient,
        form=form,
        title=_("Discharge"),
        save=save,
        cancel_url=_url(patient),
    )


# --- complications --------------------------------------------------------------------------


@login_required
@permission_required("surgery.view_complication", raise_exception=True)
def complication_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operation = _operation_or_404(patient)
    context = {
        "patient": patient,
        "operation": operation,
        "complications": selectors.complication_list(operation=operation),
        "summary": selectors.surgery_summary(patient=patient),
    }
    return render(request, "surgery/complication_list.html", context)


def _complication_page(request, patient, complication, title) -> HttpResponse:
    form = ComplicationForm(
        request.POST if request.method == "POST" else None, instance=complication
    )

    def save(version, reason, complete):
        services.complication_save(
            complication=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return _crf_page(
        request,
        patient=patient,
        form=form,
        title=title,
        save=save,
        cancel_url=reverse("surgery:complication-list", args=[patient.pk]),
    )


@login_required
@permission_required("surgery.add_complication", raise_exception=True)
@require_http_methods(["GET", "POST"])
def complication_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operation = _operation_or_404(patient)
    return _complication_page(
        request, patient, Complication(operation=operation), _("New complication")
    )


def _complication_or_404(patient: Patient, complication_id: int) -> Complication:
    return get_object_or_404(
        Complication.objects.active().filter(operation__patient=patient), pk=complication_id
    )


@login_required
@permission_required("surgery.change_complication", raise_exception=True)
@require_http_methods(["GET", "POST"])
def complication_edit(request: HttpRequest, patient_id: int, complication_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    complication = _complication_or_404(patient, complication_id)
    return _complication_page(request, patient, complication, _("Complication"))


@login_required
@permission_required("surgery.change_complication", raise_exception=True)
@require_http_methods(["GET", "POST"])
def complication_void(request: HttpRequest, patient_id: int, complication_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    complication = _complication_or_404(patient, complication_id)

    def void(reason, version):
        services.complication_void(
            complication=complication, user=request.user, reason=reason, expected_version=version
        )

    return void_page(
        request,
        patient=patient,
        record=complication,
        title=_("Void complication"),
        cancel_url=reverse("surgery:complication-list", args=[patient.pk]),
        void=void,
        done=_("The complication was voided; it stays in the audit trail."),
    )


# --- postoperative labs ---------------------------------------------------------------------


@login_required
@permission_required("assessments.view_labpanel", raise_exception=True)
def postop_labs(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    _operation_or_404(patient)
    summary = selectors.surgery_summary(patient=patient)
    context = {"patient": patient, "summary": summary, "operation": summary.operation}
    return render(request, "surgery/postop_labs.html", context)


@login_required
@permission_required("assessments.add_labpanel", raise_exception=True)
@require_http_methods(["GET", "POST"])
def postop_lab_new(request: HttpRequest, patient_id: int, day: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operation = _operation_or_404(patient)
    if day not in postop.PROTOCOL_DAYS:
        raise Http404(_("Not a postoperative protocol day."))
    panel = LabPanel(patient=patient, context=LabPanel.Context.POSTOP, postop_day=day)
    title = _("Postoperative day %(day)s labs") % {"day": day}
    return _postop_page(request, patient, operation, panel, {}, day, title)


@login_required
@permission_required("assessments.change_labpanel", raise_exception=True)
@require_http_methods(["GET", "POST"])
def postop_lab_edit(request: HttpRequest, patient_id: int, panel_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operation = _operation_or_404(patient)
    panel = get_object_or_404(
        LabPanel.objects.active().filter(patient=patient, context=LabPanel.Context.POSTOP),
        pk=panel_id,
    )
    results = {r.analyte: r for r in LabResult.objects.active().filter(panel=panel)}
    title = _("Postoperative day %(day)s labs") % {"day": panel.postop_day}
    return _postop_page(request, patient, operation, panel, results, panel.postop_day, title)


def _postop_page(request, patient, operation, panel, results, day, title) -> HttpResponse:
    is_new = panel.pk is None
    data = request.POST if request.method == "POST" else None
    initial = {}
    if is_new:
        due = operation.operated_on + timedelta(days=day)
        initial = {"sampled_on": min(due, timezone.localdate())}
    form = PostopLabForm(data, instance=panel, initial=initial, sex=patient.sex, results=results)
    if data is not None and form.is_valid():
        before = (panel.pk, panel.status, panel.version, panel.postop_day, panel.out_of_window)
        try:
            services.postop_panel_record(
                operation=operation,
                panel=panel,
                sampled_on=form.cleaned_data["sampled_on"],
                day=day,
                notes=form.cleaned_data.get("notes", ""),
                values=form.analyte_values(),
                user=request.user,
                confirmed_extremes=form.confirmed_extremes(),
                confirm_out_of_window=form.cleaned_data.get("confirm_out_of_window", False),
                expected_version=form.cleaned_data.get("version"),
                reason=form.cleaned_data.get("change_reason", ""),
                complete="save_draft" not in request.POST,
            )
        except StaleRecordError as conflict:
            panel.pk, panel.status, panel.version, panel.postop_day, panel.out_of_window = before
            form.add_error(None, str(conflict))
            posted = form.data.copy()
            posted[form.add_prefix("version")] = conflict.current_version
            form.data = posted
        except ValidationError as error:
            panel.pk, panel.status, panel.version, panel.postop_day, panel.out_of_window = before
            if is_new:
                panel._state.adding = True
            form.add_service_error(error)
        else:
            messages.success(request, _("Lab panel saved."))
            return redirect("surgery:postop-labs", patient_id=patient.pk)
    context = {
        "title": title,
        "patient": patient,
        "panel": panel,
        "form": form,
        "forms": [form],
        "saved_now": None,
        "tab": TAB,
        "enrolled": _is_enrolled(patient),
    }
    return render(request, "assessments/labs/lab_form.html", context)
