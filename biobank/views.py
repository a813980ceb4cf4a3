"""Pages of the biobank: home (search, destruction worklist, boxes), the box grid, the specimen
page with its custody actions, the label, the patient's specimens and the "record a specimen"
form.

Patient pages load the patient with `patients.selectors.patient_get` first; specimen and box
pages load them through the biobank selectors, which scope to the user's sites in the same way:
another site's patient, specimen or box is a 404.
"""

from datetime import datetime, time

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from biobank import labels, selectors, services
from biobank.forms import (
    AliquotForm,
    DestroyForm,
    PlaceForm,
    SearchForm,
    ShipForm,
    SpecimenForm,
    ThawForm,
)
from biobank.models import Box, Specimen
from patients.selectors import patient_get
from surgery.models import Operation
from trial.views import crf_submit

# action → (form class, permission, allowed custody states)
ACTIONS = {
    "store": (PlaceForm, "biobank.change_specimen", ("collected", "thawed")),
    "move": (PlaceForm, "biobank.change_specimen", ("stored",)),
    "aliquot": (AliquotForm, "biobank.add_specimen", ("collected", "stored", "thawed")),
    "thaw": (ThawForm, "biobank.change_specimen", ("stored",)),
    "ship": (ShipForm, "biobank.change_specimen", ("collected", "stored", "thawed")),
    "destroy": (DestroyForm, "biobank.change_specimen", ("collected", "stored", "thawed")),
}
ACTION_LABELS = {
    "store": gettext_lazy("Store"),
    "move": gettext_lazy("Move"),
    "aliquot": gettext_lazy("Aliquot"),
    "thaw": gettext_lazy("Thaw"),
    "ship": gettext_lazy("Ship"),
    "destroy": gettext_lazy("Destroy"),
}


def _boxes_for(specimen: Specimen):
    return (
        Box.objects.active()
        .filter(rack__freezer__site_id=specimen.patient.site_id)
        .select_related("rack__freezer")
        .order_by("rack__freezer__name", "rack__name", "name")
    )


# --- home and boxes -------------------------------------------------------------------------


@login_required
@permission_required("biobank.view_specimen", raise_exception=True)
def home(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    results = None
    if form.is_bound and form.is_valid() and any(form.cleaned_data.values()):
        results = selectors.specimen_search(user=request.user, **form.cleaned_data)
    context = {
        "search": form,
        "results": results,
        "worklist": selectors.destruction_worklist(user=request.user),
        "boxes": selectors.box_list(user=request.user),
    }
    return render(request, "biobank/home.html", context)


@login_required
@permission_required("biobank.view_specimen", raise_exception=True)
def box_detail(request: HttpRequest, box_id: int) -> HttpResponse:
    box = selectors.box_get(box_id=box_id, user=request.user)
    placing = None
    specimen_id = request.GET.get("specimen", "")
    action = request.GET.get("action", "")
    if specimen_id.isdigit() and action in ("store", "move"):
        specimen = selectors.specimen_get(specimen_id=int(specimen_id), user=request.user)
        if specimen.patient.site_id == box.rack.freezer.site_id:
            placing = {"specimen": specimen, "action": action}
    context = {"box": box, "grid": selectors.box_grid(box=box), "placing": placing}
    return render(request, "biobank/box_detail.html", context)


# --- specimens ------------------------------------------------------------------------------


def _action_forms(request, specimen, bound=None) -> list[dict]:
    """The actions the user may take on `specimen` now, each with its form (`bound`: the
    (action, form) just submitted and refused)."""
    forms = []
    for action, (form_class, perm, states) in ACTIONS.items():
        if bound is not None and bound[0] == action:
            # The action just refused is shown again, with its errors.
            forms.append({"action": action, "label": ACTION_LABELS[action], "form": bound[1]})
            continue
        if specimen.is_voided or specimen.state not in states or not request.user.has_perm(perm):
            continue
        if specimen.flagged_for_destruction and action != "destroy":
            continue
        kwargs = {"prefix": action}
        if form_class is PlaceForm:
            kwargs["boxes"] = _boxes_for(specimen)
            if request.GET.get("action") == action:
                kwargs["initial"] = {
                    "box": request.GET.get("box"),
                    "position": request.GET.get("position", ""),
                }
        form = form_class(**kwargs)
        forms.append({"action": action, "label": ACTION_LABELS[action], "form": form})
    return forms


def _specimen_page(request, specimen, bound=None, status=200) -> HttpResponse:
    context = {
        "patient": specimen.patient,
        "specimen": specimen,
        "events": list(specimen.events.all()),
        "aliquots": list(specimen.aliquots.all()),
        "actions": _action_forms(request, specimen, bound),
        "open_action": bound[0] if bound else request.GET.get("action", ""),
    }
    return render(request, "biobank/specimen_detail.html", context, status=status)


@login_required
@permission_required("biobank.view_specimen", raise_exception=True)
def specimen_detail(request: HttpRequest, specimen_id: int) -> HttpResponse:
    specimen = selectors.specimen_get(specimen_id=specimen_id, user=request.user)
    return _specimen_page(request, specimen)


def _run_action(action: str, specimen: Specimen, data: dict, user) -> object:
    at = data.get("at") or None
    notes = data.get("notes", "")
    if action in ("store", "move"):
        row, column = data["position"]
        call = services.specimen_store if action == "store" else services.specimen_move
        return call(
            specimen=specimen,
            box=data["box"],
            row=row,
            column=column,
            user=user,
            at=at,
            notes=notes,
        )
    if action == "aliquot":
        return services.specimen_aliquot(
            parent=specimen,
            count=data["count"],
            weight_mg_each=data["weight_mg_each"],
            preservation=data.get("preservation", ""),
            user=user,
            at=at,
        )
    if action == "thaw":
        return services.specimen_thaw(specimen=specimen, user=user, at=at, notes=notes)
    if action == "ship":
        return services.specimen_ship(
            specimen=specimen, destination=data["destination"], user=user, at=at, notes=notes
        )
    return services.specimen_destroy(specimen=specimen, reason=data["reason"], user=user, at=at)


@login_required
@require_POST
def specimen_action(request: HttpRequest, specimen_id: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("No such action.")
    form_class, perm, _states = ACTIONS[action]
    if not request.user.has_perm("biobank.view_specimen"):
        raise PermissionDenied
    specimen = selectors.specimen_get(specimen_id=specimen_id, user=request.user)
    if not request.user.has_perm(perm):
        raise PermissionDenied
    kwargs = {"prefix": action}
    if form_class is PlaceForm:
        kwargs["boxes"] = _boxes_for(specimen)
    form = form_class(request.POST, **kwargs)
    if form.is_valid():
        try:
            _run_action(action, specimen, form.cleaned_data, request.user)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(
                request,
                _("%(action)s: done for %(code)s.")
                % {"action": ACTION_LABELS[action], "code": specimen.code},
            )
            return redirect("biobank:specimen-detail", specimen.pk)
    specimen = selectors.specimen_get(specimen_id=specimen_id, user=request.user)
    return _specimen_page(request, specimen, bound=(action, form))


@login_required
@permission_required("biobank.view_specimen", raise_exception=True)
def specimen_label(request: HttpRequest, specimen_id: int) -> HttpResponse:
    specimen = selectors.specimen_get(specimen_id=specimen_id, user=request.user)
    return render(
        request,
        "biobank/specimen_label.html",
        {"specimen": specimen, "label": labels.specimen_label(specimen)},
    )


# --- the patient's specimens ----------------------------------------------------------------


@login_required
@permission_required("biobank.view_specimen", raise_exception=True)
def patient_specimens(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    context = {
        "patient": patient,
        "specimens": selectors.patient_specimens(patient=patient),
        "summary": selectors.patient_specimen_summary(patient=patient),
    }
    return render(request, "biobank/patient_specimens.html", context)


@login_required
@permission_required("biobank.add_specimen", raise_exception=True)
def specimen_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    operations = Operation.objects.active().filter(patient=patient)
    list_url = reverse("biobank:patient-specimens", args=[patient.pk])
    context = {"patient": patient, "title": _("Record a specimen"), "cancel_url": list_url}
    if not operations.exists():
        messages.error(request, _("Record the index operation first: specimens are taken at it."))
        return redirect(list_url)
    if request.method == "POST":
        form = SpecimenForm(request.POST, instance=Specimen(patient=patient), operations=operations)

        def save(version, reason, complete):
            return services.specimen_collect(
                specimen=form.instance,
                user=request.user,
                confirm_weight=form.cleaned_data.get("confirm_weight", False),
            )

        return crf_submit(
            request,
            forms=[form],
            save=save,
            success_url=list_url,
            template="biobank/specimen_form.html",
            context=context,
        )
    operation = operations.first()
    initial = {
        "operation": operation.pk,
        "collected_at": timezone.make_aware(datetime.combine(operation.operated_on, time(12, 0))),
        "preservation": Specimen.Preservation.FRESH_FROZEN,
    }
    form = SpecimenForm(instance=Specimen(patient=patient), operations=operations, initial=initial)
    return render(request, "biobank/specimen_form.html", {**context, "forms": [form], "form": form})
