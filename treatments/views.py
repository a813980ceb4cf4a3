"""Pages of the treatments app: the treatment page (lines, cycles, dose intensity), the line and
cycle forms with the dose grid, voiding, and the adverse events.

Every view loads the patient with `patients.selectors.patient_get` first (another site's
patient is a 404), then the record through that patient (another patient's record is a 404).
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from patients.models import Patient
from patients.selectors import patient_get
from treatments import regimens, selectors, services
from treatments.forms import AdverseEventForm, CycleForm, DoseForm, LineForm
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, RegimenLine
from trial.views import crf_submit, void_page

EXTRA_DOSE_ROWS = 3  # empty rows offered for the drugs of an "other" regimen


def _treatment_url(patient: Patient) -> str:
    return reverse("treatments:treatment", args=[patient.pk])


def _ae_url(patient: Patient) -> str:
    return reverse("treatments:ae-list", args=[patient.pk])


def _is_enrolled(patient: Patient) -> bool:
    enrollment = getattr(patient, "enrollment", None)
    return enrollment is not None and not enrollment.is_voided


# --- the treatment page ---------------------------------------------------------------------


@login_required
@permission_required("treatments.view_chemocycle", raise_exception=True)
def treatment(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    summary = selectors.treatment_summary(patient=patient)
    context = {
        "patient": patient,
        "summary": summary,
        "enrolled": _is_enrolled(patient),
        "today": timezone.localdate(),
    }
    return render(request, "treatments/treatment.html", context)


# --- regimen lines --------------------------------------------------------------------------


def _line_page(request, patient, form, save, title):
    context = {"patient": patient, "title": title, "cancel_url": _treatment_url(patient)}
    if request.method == "POST":
        return crf_submit(
            request,
            forms=[form],
            save=save,
            success_url=_treatment_url(patient),
            template="treatments/line_form.html",
            context=context,
        )
    return render(request, "treatments/line_form.html", {**context, "forms": [form], "form": form})


@login_required
@permission_required("treatments.add_regimenline", raise_exception=True)
@require_http_methods(["GET", "POST"])
def line_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    number = RegimenLine.objects.active().filter(patient=patient).count() + 1
    initial = {"started_on": timezone.localdate()}
    form = LineForm(
        request.POST if request.method == "POST" else None,
        instance=RegimenLine(patient=patient),
        initial=initial,
        line_number=number,
    )

    def save(version, reason, complete):
        services.line_start(line=form.save(commit=False), user=request.user, complete=complete)

    title = _("Start line %(number)s") % {"number": number}
    return _line_page(request, patient, form, save, title)


@login_required
@permission_required("treatments.change_regimenline", raise_exception=True)
@require_http_methods(["GET", "POST"])
def line_edit(request: HttpRequest, patient_id: int, line_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    line = get_object_or_404(RegimenLine.objects.active().filter(patient=patient), pk=line_id)
    form = LineForm(
        request.POST if request.method == "POST" else None,
        instance=line,
        line_number=line.line_number,
    )

    def save(version, reason, complete):
        services.line_update(
            line=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    title = _("Line %(number)s") % {"number": line.line_number}
    return _line_page(request, patient, form, save, title)


@login_required
@permission_required("treatments.change_regimenline", raise_exception=True)
@require_http_methods(["GET", "POST"])
def line_void(request: HttpRequest, patient_id: int, line_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    line = get_object_or_404(RegimenLine.objects.active().filter(patient=patient), pk=line_id)

    def void(reason, version):
        services.line_void(line=line, user=request.user, reason=reason, expected_version=version)

    return void_page(
        request,
        patient=patient,
        record=line,
        title=_("Void line %(number)s") % {"number": line.line_number},
        cancel_url=_treatment_url(patient),
        void=void,
        done=_("The line was voided; it stays in the audit trail."),
    )


# --- cycles and the dose grid ---------------------------------------------------------------


@dataclass
class DoseRowSpec:
    instance: CycleDose
    fixed: bool
    optional: bool
    initial: dict


def _dose_rows(
    line: RegimenLine, cycle: ChemoCycle, bsa: Decimal | None, previous: ChemoCycle | None
) -> list[DoseRowSpec]:
    """The rows of the dose grid: the regimen's drugs (new cycle), the saved doses (edit), and
    for an "other" regimen the previous cycle's drugs plus a few empty rows."""
    spec = regimens.regimen_spec(line.regimen)
    rows: list[DoseRowSpec] = []
    if cycle.pk:
        saved = list(CycleDose.objects.active().filter(cycle=cycle).order_by("id"))
        rows = [DoseRowSpec(dose, True, spec is None, {}) for dose in saved]
        present = {dose.drug for dose in saved}
        for standard in spec.doses if spec else ():
            if standard.drug not in present:
                rows.append(
                    DoseRowSpec(
                        CycleDose(drug=standard.drug),
                        True,
                        False,
                        {"planned_mg_m2": standard.mg_m2, "planned_days": standard.administrations},
                    )
                )
    elif spec:
        for standard in spec.doses:
            given = regimens.dose_for_bsa(standard.mg_m2, bsa) if bsa else None
            rows.append(
                DoseRowSpec(
                    CycleDose(drug=standard.drug),
                    True,
                    False,
                    {
                        "planned_mg_m2": standard.mg_m2,
                        "given_mg": given,
                        "planned_days": standard.administrations,
                        "given_days": standard.administrations,
                    },
                )
            )
    elif previous is not None:
        for dose in CycleDose.objects.active().filter(cycle=previous).order_by("id"):
            given = regimens.dose_for_bsa(dose.planned_mg_m2, bsa) if bsa else None
            rows.append(
                DoseRowSpec(
                    CycleDose(),
                    False,
                    True,
                    {
                        "drug": dose.drug,
                        "drug_other": dose.drug_other,
                        "planned_mg_m2": dose.planned_mg_m2,
                        "given_mg": given,
                        "planned_days": dose.planned_days,
                        "given_days": dose.planned_days,
                    },
                )
            )
    if spec is None:
        rows += [DoseRowSpec(CycleDose(), False, True, {}) for _row in range(EXTRA_DOSE_ROWS)]
    return rows


def _reference_mg(planned: object, bsa: Decimal | None) -> Decimal | None:
    """Planned mg/m² × BSA for the grid's reference column (None when not computable)."""
    if not bsa or planned in (None, ""):
        return None
    try:
        return regimens.dose_for_bsa(Decimal(str(planned)), bsa)
    except InvalidOperation:
        return None


_DOSE_KEY = re.compile(r"doses-(\d+)-(\w+)")


def _route_dose_errors(error: ValidationError, owners: list[DoseForm]) -> ValidationError:
    """Put the service's `doses-<i>-<field>` errors on the i-th submitted dose row; return the
    rest (with a pointer to the rows when only rows are at fault)."""
    if not hasattr(error, "error_dict"):
        return error
    rest: dict = {}
    routed = False
    for key, items in error.error_dict.items():
        match = _DOSE_KEY.fullmatch(key)
        if match and int(match[1]) < len(owners):
            form = owners[int(match[1])]
            field = match[2] if match[2] in form.fields else None
            for item in items:
                form.add_error(field, item.messages)
            routed = True
        else:
            rest.setdefault(key, []).extend(items)
    if routed:
        rest.setdefault(NON_FIELD_ERRORS, []).append(
            ValidationError(_("Some doses need correcting: see the marked rows of the grid."))
        )
    return ValidationError(rest)


def _cycle_page(request, patient: Patient, line: RegimenLine, cycle: ChemoCycle):
    is_new = cycle.pk is None
    data = request.POST if request.method == "POST" else None
    summary = selectors.treatment_summary(patient=patient)
    line_summary = next((s for s in summary.lines if s.line.pk == line.pk), None)
    today = timezone.localdate()
    initial = {}
    given_on: date | None = cycle.given_on
    if is_new:
        due = line_summary.next_cycle_due_on if line_summary else line.started_on
        given_on = min(due, today)
        initial = {"given_on": given_on}
    size = selectors.body_size_on(
        patient=patient,
        on=given_on,
        weight_kg=cycle.weight_kg,
        exclude_cycle_id=cycle.pk,
    )
    previous = line_summary.last_cycle if line_summary else None
    cycle_form = CycleForm(data, instance=cycle, initial=initial)
    rows = _dose_rows(line, cycle, size.bsa_m2 if size else None, previous)
    dose_forms = [
        DoseForm(
            data,
            instance=row.instance,
            prefix=f"doses-{index}",
            fixed_drug=row.fixed,
            optional=row.optional,
            initial=row.initial,
        )
        for index, row in enumerate(rows)
    ]
    bsa = size.bsa_m2 if size else None
    for form in dose_forms:
        form.reference_mg = _reference_mg(form["planned_mg_m2"].value(), bsa)
    number = (
        cycle.cycle_number if not is_new else (line_summary.cycle_count + 1 if line_summary else 1)
    )
    title = _("Line %(line)s · %(regimen)s · cycle %(number)s") % {
        "line": line.line_number,
        "regimen": line.name,
        "number": number,
    }
    context = {
        "patient": patient,
        "line": line,
        "cycle": cycle,
        "title": title,
        "size": size,
        "dose_forms": dose_forms,
        "is_other": regimens.regimen_spec(line.regimen) is None,
        "cancel_url": _treatment_url(patient),
    }
    if data is None:
        forms = [cycle_form, *dose_forms]
        return render(
            request, "treatments/cycle_form.html", {**context, "forms": forms, "form": cycle_form}
        )

    def save(version, reason, complete):
        doses, owners = [], []
        for form in dose_forms:
            if form.is_blank():
                continue
            dose = form.save(commit=False)
            if dose.pk:
                dose.version = form.cleaned_data.get("version") or dose.version
            doses.append(dose)
            owners.append(form)
        try:
            services.cycle_record(
                cycle=cycle_form.save(commit=False),
                doses=doses,
                user=request.user,
                expected_version=version,
                reason=reason,
                complete=complete,
            )
        except ValidationError as error:
            raise _route_dose_errors(error, owners) from error

    return crf_submit(
        request,
        forms=[cycle_form, *dose_forms],
        save=save,
        success_url=_treatment_url(patient),
        template="treatments/cycle_form.html",
        context=context,
    )


@login_required
@permission_required(
    ["treatments.add_chemocycle", "treatments.add_cycledose"], raise_exception=True
)
@require_http_methods(["GET", "POST"])
def cycle_new(request: HttpRequest, patient_id: int, line_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    line = get_object_or_404(RegimenLine.objects.active().filter(patient=patient), pk=line_id)
    return _cycle_page(request, patient, line, ChemoCycle(line=line, patient=patient))


@login_required
@permission_required(
    ["treatments.change_chemocycle", "treatments.change_cycledose"], raise_exception=True
)
@require_http_methods(["GET", "POST"])
def cycle_edit(request: HttpRequest, patient_id: int, cycle_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    cycle = get_object_or_404(
        ChemoCycle.objects.active().filter(patient=patient).select_related("line"), pk=cycle_id
    )
    return _cycle_page(request, patient, cycle.line, cycle)


@login_required
@permission_required("treatments.change_chemocycle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def cycle_void(request: HttpRequest, patient_id: int, cycle_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    cycle = get_object_or_404(
        ChemoCycle.objects.active().filter(patient=patient).select_related("line"), pk=cycle_id
    )

    def void(reason, version):
        services.cycle_void(cycle=cycle, user=request.user, reason=reason, expected_version=version)

    return void_page(
        request,
        patient=patient,
        record=cycle,
        title=_("Void cycle %(number)s of line %(line)s")
        % {"number": cycle.cycle_number, "line": cycle.line.line_number},
        cancel_url=_treatment_url(patient),
        void=void,
        done=_("The cycle was voided; the later cycles of the line were renumbered."),
    )


# --- adverse events -------------------------------------------------------------------------


@login_required
@permission_required("treatments.view_adverseevent", raise_exception=True)
def ae_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    events = selectors.adverse_events(patient=patient)
    context = {
        "patient": patient,
        "events": events,
        "awaiting_death": [e for e in events if e.awaiting_death],
        "enrolled": _is_enrolled(patient),
    }
    return render(request, "treatments/ae_list.html", context)


def _ae_page(request, patient: Patient, event: AdverseEvent, title: str) -> HttpResponse:
    form = AdverseEventForm(
        request.POST if request.method == "POST" else None, instance=event, patient=patient
    )
    context = {"patient": patient, "title": title, "cancel_url": _ae_url(patient)}
    if request.method != "POST":
        return render(
            request, "treatments/ae_form.html", {**context, "forms": [form], "form": form}
        )

    def save(version, reason, complete):
        services.adverse_event_save(
            event=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return crf_submit(
        request,
        forms=[form],
        save=save,
        success_url=_ae_url(patient),
        template="treatments/ae_form.html",
        context=context,
    )


@login_required
@permission_required("treatments.add_adverseevent", raise_exception=True)
@require_http_methods(["GET", "POST"])
def ae_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    return _ae_page(request, patient, AdverseEvent(patient=patient), _("New adverse event"))


@login_required
@permission_required("treatments.change_adverseevent", raise_exception=True)
@require_http_methods(["GET", "POST"])
def ae_edit(request: HttpRequest, patient_id: int, event_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    event = get_object_or_404(AdverseEvent.objects.active().filter(patient=patient), pk=event_id)
    return _ae_page(request, patient, event, _("Adverse event"))


@login_required
@permission_required("treatments.change_adverseevent", raise_exception=True)
@require_http_methods(["GET", "POST"])
def ae_void(request: HttpRequest, patient_id: int, event_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    event = get_object_or_404(AdverseEvent.objects.active().filter(patient=patient), pk=event_id)

    def void(reason, version):
        services.adverse_event_void(
            event=event, user=request.user, reason=reason, expected_version=version
        )

    return void_page(
        request,
        patient=patient,
        record=event,
        title=_("Void adverse event"),
        cancel_url=_ae_url(patient),
        void=void,
        done=_("The adverse event was voided; it stays in the audit trail."),
    )
