"""Lab pages: the patient's lab overview (one grid of analytes × dates) and the panel form.

Every patient lookup goes through `patients.selectors.patient_get` (a patient of another site
is a 404) before anything else is read.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from assessments.forms.labs import TAB, LabPanelForm
from assessments.models import LabPanel, LabResult
from assessments.selectors import labs as selectors
from assessments.services.labs import lab_panel_record, lab_panel_void
from patients import selectors as patient_selectors
from patients.models import Patient
from trial.services import StaleRecordError
from trial.views import void_page

FORM_PAGE = "assessments/labs/lab_form.html"


def _is_enrolled(patient: Patient) -> bool:
    enrollment = getattr(patient, "enrollment", None)
    return enrollment is not None and not enrollment.is_voided


@login_required
@permission_required("assessments.view_labpanel", raise_exception=True)
def lab_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_selectors.patient_get(patient_id=patient_id, user=request.user)
    context = {
        "patient": patient,
        "grid": selectors.lab_grid(patient=patient),
        "can_add": request.user.has_perm("assessments.add_labpanel") and _is_enrolled(patient),
        "can_edit": request.user.has_perm("assessments.change_labpanel"),
    }
    return render(request, "assessments/labs/lab_list.html", context)


@login_required
@permission_required("assessments.add_labpanel", raise_exception=True)
@require_http_methods(["GET", "POST"])
def lab_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_selectors.patient_get(patient_id=patient_id, user=request.user)
    return _panel_page(request, patient, LabPanel(patient=patient), {}, _("New lab panel"))


@login_required
@permission_required("assessments.change_labpanel", raise_exception=True)
@require_http_methods(["GET", "POST"])
def lab_edit(request: HttpRequest, patient_id: int, panel_id: int) -> HttpResponse:
    patient = patient_selectors.patient_get(patient_id=patient_id, user=request.user)
    panel = get_object_or_404(LabPanel.objects.active().filter(patient=patient), pk=panel_id)
    results = {r.analyte: r for r in LabResult.objects.active().filter(panel=panel)}
    return _panel_page(request, patient, panel, results, _("Lab panel"))


@login_required
@permission_required("assessments.change_labpanel", raise_exception=True)
@require_http_methods(["GET", "POST"])
def lab_void(request: HttpRequest, patient_id: int, panel_id: int) -> HttpResponse:
    """Void a panel entered in error (with its results); the grades of the others follow."""
    patient = patient_selectors.patient_get(patient_id=patient_id, user=request.user)
    panel = get_object_or_404(LabPanel.objects.active().filter(patient=patient), pk=panel_id)
    return void_page(
        request,
        patient=patient,
        record=panel,
        title=_("Void lab panel"),
        cancel_url=reverse("assessments:lab-list", args=[patient.pk]),
        void=lambda reason, version: lab_panel_void(
            panel=panel, user=request.user, reason=reason, expected_version=version
        ),
        done=_("The lab panel was voided; the grades of the other panels were recomputed."),
    )


def _panel_page(
    request: HttpRequest,
    patient: Patient,
    panel: LabPanel,
    results: dict[str, LabResult],
    title: str,
) -> HttpResponse:
    """Validate, call the service, redirect; or re-render with the errors and the typed values.

    A StaleRecordError says who changed the panel, keeps every value typed, shows the saved
    values beside them and takes the new version, so saving again applies the input
    deliberately. Nothing is half-saved: the service runs in one transaction.
    """
    is_new = panel.pk is None
    data = request.POST if request.method == "POST" else None
    initial = {"sampled_on": timezone.localdate()} if is_new else {}
    form = LabPanelForm(data, instance=panel, initial=initial, sex=patient.sex, results=results)
    saved_now: dict[str, selectors.Cell] | None = None
    if data is not None and form.is_valid():
        before = (panel.pk, panel.status, panel.version, panel.after_cycle)
        try:
            lab_panel_record(
                panel=form.save(commit=False),
                values=form.analyte_values(),
                user=request.user,
                confirmed_extremes=form.confirmed_extremes(),
                expected_version=form.cleaned_data.get("version"),
                reason=form.cleaned_data.get("change_reason", ""),
                complete="save_draft" not in request.POST,
            )
        except StaleRecordError as conflict:
            _restore(panel, before, is_new)
            form.add_error(None, str(conflict))
            if conflict.changed_fields:
                labels = ", ".join(form._label(name) for name in conflict.changed_fields)
                form.add_error(None, _("Fields that differ: %(fields)s.") % {"fields": labels})
            posted = form.data.copy()
            posted[form.add_prefix("version")] = conflict.current_version
            form.data = posted
            saved_now = {
                r.analyte: selectors.cell_for(r)
                for r in LabResult.objects.active().filter(panel_id=panel.pk)
            }
            form.saved_now = saved_now
        except ValidationError as error:
            _restore(panel, before, is_new)
            form.add_service_error(error)
        else:
            messages.success(request, _("Lab panel saved."))
            return redirect("assessments:lab-list", patient_id=patient.pk)
    context = {
        "title": title,
        "patient": patient,
        "panel": panel,
        "form": form,
        "forms": [form],
        "saved_now": saved_now,
        "tab": TAB,
        "enrolled": _is_enrolled(patient),
    }
    return render(request, FORM_PAGE, context)


def _restore(panel: LabPanel, before: tuple, is_new: bool) -> None:
    """Undo what a refused save set on the in-memory panel (the database was rolled back)."""
    panel.pk, panel.status, panel.version, panel.after_cycle = before
    if is_new:
        panel._state.adding = True
