"""Follow-up pages under /patients/<id>/followup/: the patient's follow-up history, and new /
edit / void pages of contacts, recurrences, the death, the loss to follow-up and the end of
treatment.

Every patient lookup goes through `patients.selectors.patient_get` (a patient of another site
is a 404) after the permission check; records are looked up within that patient. The five
record kinds share one set of views, parameterised by `KINDS` (see urls.py).
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from followup import selectors, services
from followup.forms import ContactForm, DeathForm, LostForm, RecurrenceForm, TreatmentEndForm
from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from patients.models import Patient
from patients.selectors import patient_get
from surgery.selectors import operation_get
from treatments.models import ChemoCycle
from trial.forms import CRFForm
from trial.views import crf_submit, void_page

FORM_PAGE = "followup/crf_form.html"


@dataclass(frozen=True)
class Kind:
    """One kind of follow-up record and how its pages call the services."""

    slug: str  # URL name prefix: "contact" → followup:contact-new
    model: type[Model]
    form: type[CRFForm]
    save: Callable[..., Model]
    void: Callable[..., Model]
    arg: str  # the services' keyword for the record
    new_title: str
    edit_title: str
    void_title: str
    voided: str
    single: bool = False  # one active record per patient: "new" opens the existing one

    @property
    def codename(self) -> str:
        return self.model._meta.model_name

    def perm(self, action: str) -> str:
        return f"followup.{action}_{self.codename}"


KINDS: dict[str, Kind] = {
    kind.slug: kind
    for kind in (
        Kind(
            "contact",
            FollowUpContact,
            ContactForm,
            services.contact_save,
            services.contact_void,
            "contact",
            _("New follow-up contact"),
            _("Follow-up contact"),
            _("Void follow-up contact"),
            _("The follow-up contact was voided; it stays in the audit trail."),
        ),
        Kind(
            "recurrence",
            Recurrence,
            RecurrenceForm,
            services.recurrence_save,
            services.recurrence_void,
            "recurrence",
            _("New recurrence / progression"),
            _("Recurrence / progression"),
            _("Void recurrence / progression"),
            _("The recurrence / progression was voided; it stays in the audit trail."),
        ),
        Kind(
            "death",
            Death,
            DeathForm,
            services.death_save,
            services.death_void,
            "death",
            _("Record the death"),
            _("Death"),
            _("Void death"),
            _("The death was voided; it stays in the audit trail."),
            single=True,
        ),
        Kind(
            "lost",
            LostToFollowUp,
            LostForm,
            services.lost_save,
            services.lost_void,
            "loss",
            _("Declare lost to follow-up"),
            _("Loss to follow-up"),
            _("Void loss to follow-up"),
            _("The loss to follow-up was voided; it stays in the audit trail."),
            single=True,
        ),
        Kind(
            "treatment-end",
            TreatmentEnd,
            TreatmentEndForm,
            services.treatment_end_save,
            services.treatment_end_void,
            "treatment_end",
            _("Record the end of treatment"),
            _("End of treatment"),
            _("Void end of treatment"),
            _("The end of treatment was voided; it stays in the audit trail."),
            single=True,
        ),
    )
}


def _url(patient: Patient) -> str:
    return reverse("followup:followup", args=[patient.pk])


def _require(request: HttpRequest, *perms: str) -> None:
    if not request.user.has_perms(perms):
        raise PermissionDenied


def _record_or_404(kind: Kind, patient: Patient, pk: int) -> Model:
    return get_object_or_404(kind.model.objects.active().filter(patient=patient), pk=pk)


# --- the follow-up page ---------------------------------------------------------------------


@login_required
def followup(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient's follow-up: summary, contacts, recurrences, death, loss, end of treatment."""
    _require(request, "followup.view_followupcontact")
    patient = patient_get(patient_id=patient_id, user=request.user)
    context = {"patient": patient, **selectors.followup_history(patient=patient)}
    return render(request, "followup/followup.html", context)


# --- new / edit / void, for every kind ------------------------------------------------------


def _initial(request: HttpRequest, kind: Kind, patient: Patient) -> dict:
    """Sensible defaults of a new record (the user checks them)."""
    today = timezone.localdate()
    if kind.slug == "contact":
        return {"contacted_on": today}
    if kind.slug == "recurrence":
        initial = {}
        operation = operation_get(patient=patient)
        initial["kind"] = (
            Recurrence.Kind.RECURRENCE if operation is not None else Recurrence.Kind.PROGRESSION
        )
        contact_id = request.GET.get("contact", "")
        contact = (
            FollowUpContact.objects.active().filter(patient=patient, pk=contact_id).first()
            if contact_id.isdigit()
            else None
        )
        if contact is not None:
            initial.update(contact=contact.pk, detected_on=contact.contacted_on)
        return initial
    if kind.slug == "death":
        reported = (
            FollowUpContact.objects.active()
            .filter(patient=patient, vital_status=FollowUpContact.VitalStatus.DEAD)
            .order_by("contacted_on")
            .first()
        )
        return {"died_on": reported.contacted_on} if reported else {}
    if kind.slug == "lost":
        return {"declared_on": today}
    if kind.slug == "treatment-end":
        last = (
            ChemoCycle.objects.active()
            .filter(patient=patient)
            .order_by("-given_on")
            .values_list("given_on", flat=True)
            .first()
        )
        return {"ended_on": last} if last else {}
    return {}


def _after_contact(patient: Patient, contact: FollowUpContact) -> str:
    """Where a saved contact leads: the recurrence form when it reported one, the death form
    when it reported the death and none is recorded, else the follow-up page."""
    if contact.recurrence:
        query = urlencode({"contact": contact.pk})
        return f"{reverse('followup:recurrence-new', args=[patient.pk])}?{query}"
    dead = contact.vital_status == FollowUpContact.VitalStatus.DEAD
    if dead and not Death.objects.active().filter(patient=patient).exists():
        return reverse("followup:death-new", args=[patient.pk])
    return _url(patient)


def _record_page(
    request: HttpRequest, kind: Kind, patient: Patient, record: Model, title: str
) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    extra = {}
    if kind.slug == "recurrence":
        extra["contacts"] = FollowUpContact.objects.active().filter(patient=patient)
    initial = _initial(request, kind, patient) if record.pk is None else {}
    form = kind.form(data, instance=record, initial=initial, **extra)
    saved: list[Model] = []

    def save(version, reason, complete):
        saved.append(
            kind.save(
                **{kind.arg: form.save(commit=False)},
                user=request.user,
                expected_version=version,
                reason=reason,
                complete=complete,
            )
        )

    def success() -> str:
        if kind.slug == "contact" and saved:
            return _after_contact(patient, saved[0])
        return _url(patient)

    context = {
        "patient": patient,
        "title": title,
        "cancel_url": _url(patient),
        "kind": kind.slug,
    }
    if kind.slug == "lost":
        contacts = list(FollowUpContact.objects.active().filter(patient=patient))
        failed, last_success = selectors.failed_attempts_since_success(contacts)
        context.update(failed_attempts=failed, last_success=last_success)
    if data is None:
        return render(request, FORM_PAGE, {**context, "forms": [form], "form": form})
    return crf_submit(
        request,
        forms=[form],
        save=save,
        success_url=lazy(success, str)(),
        template=FORM_PAGE,
        context=context,
    )


@login_required
@require_http_methods(["GET", "POST"])
def record_new(request: HttpRequest, patient_id: int, kind: str) -> HttpResponse:
    spec = KINDS[kind]
    _require(request, spec.perm("add"))
    patient = patient_get(patient_id=patient_id, user=request.user)
    if spec.single and request.method == "GET":
        # A POST goes on to the service, which refuses a second record on its field.
        existing = spec.model.objects.active().filter(patient=patient).first()
        if existing is not None:
            return redirect(f"followup:{spec.slug}-edit", patient_id=patient.pk, pk=existing.pk)
    return _record_page(request, spec, patient, spec.model(patient=patient), spec.new_title)


@login_required
@require_http_methods(["GET", "POST"])
def record_edit(request: HttpRequest, patient_id: int, pk: int, kind: str) -> HttpResponse:
    spec = KINDS[kind]
    _require(request, spec.perm("change"))
    patient = patient_get(patient_id=patient_id, user=request.user)
    record = _record_or_404(spec, patient, pk)
    return _record_page(request, spec, patient, record, spec.edit_title)


@login_required
@require_http_methods(["GET", "POST"])
def record_void(request: HttpRequest, patient_id: int, pk: int, kind: str) -> HttpResponse:
    spec = KINDS[kind]
    _require(request, spec.perm("change"))
    patient = patient_get(patient_id=patient_id, user=request.user)
    record = _record_or_404(spec, patient, pk)

    def void(reason, version):
        spec.void(**{spec.arg: record}, user=request.user, reason=reason, expected_version=version)

    return void_page(
        request,
        patient=patient,
        record=record,
        title=spec.void_title,
        cancel_url=_url(patient),
        void=void,
        done=spec.voided,
    )
