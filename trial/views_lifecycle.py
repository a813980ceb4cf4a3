"""Pages of the form lifecycle under /quality/: a record's verification, signatures and lock;
a patient's casebook (sign, lock); the study (database) lock; and the patient-page panel.

Lookups are scoped to the user's sites first (another site's record is a 404), then the
permission of the action is checked (403). The services do the work and say what is refused.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from trial import lifecycle
from trial import lifecycle_selectors as selectors
from trial.lifecycle_forms import ReasonForm, SignForm, VerifyForm
from trial.lifecycle_selectors import EDIT_PAGES, edit_url  # noqa: F401 - re-exported
from trial.models import FormStatus, SignatureMeaning, Study
from trial.query_selectors import open_queries_by_field
from trial.services import StaleRecordError


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _refusal(form, error: Exception) -> None:
    if isinstance(error, StaleRecordError):
        form.add_error(None, str(error))
    else:
        form.add_service_error(error)


@login_required
def record_page(request: HttpRequest, label: str, pk: int) -> HttpResponse:
    """A record's data read-only, its status, source-data verification (monitors), signatures
    (investigators) and lock (data managers). Each action posts `action` and one form."""
    model = selectors.record_model(label)
    _require(request, selectors.view_permission(model))
    record = selectors.record_get(model=model, pk=pk, user=request.user)
    state = selectors.record_lifecycle(record)
    choices = [(f.name, f.label) for f in state.fields]
    verify_form = VerifyForm(initial={"version": record.version}, choices=choices)
    sign_form = SignForm(initial={"version": record.version})
    lock_form = ReasonForm()
    action = request.POST.get("action") if request.method == "POST" else None
    if action is not None:
        try:
            if action == "verify":
                _require(request, lifecycle.VERIFY)
                verify_form = VerifyForm(request.POST, choices=choices)
                if verify_form.is_valid():
                    whole = "verify_whole" in request.POST
                    lifecycle.form_verify(
                        record,
                        user=request.user,
                        expected_version=verify_form.cleaned_data["version"],
                        fields=None if whole else verify_form.cleaned_data["fields"],
                    )
                    messages.success(request, _("Source-data verification recorded."))
                    return redirect(request.path)
            elif action == "sign":
                _require(request, lifecycle.SIGN)
                sign_form = SignForm(request.POST)
                if sign_form.is_valid():
                    lifecycle.form_sign(
                        record,
                        user=request.user,
                        password=sign_form.cleaned_data["password"],
                        expected_version=sign_form.cleaned_data["version"],
                        meaning=SignatureMeaning.APPROVAL,
                    )
                    messages.success(request, _("Form signed."))
                    return redirect(request.path)
            elif action in ("lock", "unlock"):
                _require(request, lifecycle.LOCK)
                lock_form = ReasonForm(request.POST)
                if lock_form.is_valid():
                    service = lifecycle.form_lock if action == "lock" else lifecycle.form_unlock
                    service(record, user=request.user, reason=lock_form.cleaned_data["reason"])
                    done = _("Form locked.") if action == "lock" else _("Form unlocked.")
                    messages.success(request, done)
                    return redirect(request.path)
            else:
                raise Http404("No such action.")
        except (ValidationError, StaleRecordError) as error:
            form = {"verify": verify_form, "sign": sign_form}.get(action, lock_form)
            _refusal(form, error)
    context = {
        "state": state,
        "record": record,
        "label": model._meta.label_lower,
        "open_queries": [q for queries in open_queries_by_field(record).values() for q in queries],
        "patient": state.patient,
        "title": str(model._meta.verbose_name).capitalize(),
        "verify_form": verify_form,
        "sign_form": sign_form,
        "lock_form": lock_form,
        "action": action,
        "meaning": SignatureMeaning.APPROVAL.label,
        "edit_url": edit_url(record, state.patient.pk),
        "can_verify": request.user.has_perm(lifecycle.VERIFY),
        "can_sign": request.user.has_perm(lifecycle.SIGN),
        "can_lock": request.user.has_perm(lifecycle.LOCK),
        "is_draft": record.status == FormStatus.DRAFT,
    }
    return render(request, "trial/lifecycle/record.html", context)


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def casebook_page(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Every record of the patient by form with status counts; the casebook signature
    (investigators) and the casebook lock (data managers)."""
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    sign_form = SignForm()
    lock_form = ReasonForm()
    action = request.POST.get("action") if request.method == "POST" else None
    if action is not None:
        try:
            if action == "sign":
                _require(request, lifecycle.SIGN)
                sign_form = SignForm(request.POST)
                if sign_form.is_valid():
                    lifecycle.casebook_sign(
                        patient, user=request.user, password=sign_form.cleaned_data["password"]
                    )
                    messages.success(request, _("Casebook signed."))
                    return redirect(request.path)
            elif action in ("lock", "unlock"):
                _require(request, lifecycle.LOCK)
                lock_form = ReasonForm(request.POST)
                if lock_form.is_valid():
                    service = (
                        lifecycle.casebook_lock if action == "lock" else lifecycle.casebook_unlock
                    )
                    service(patient, user=request.user, reason=lock_form.cleaned_data["reason"])
                    done = _("Casebook locked.") if action == "lock" else _("Casebook unlocked.")
                    messages.success(request, done)
                    return redirect(request.path)
            else:
                raise Http404("No such action.")
        except ValidationError as error:
            _refusal(sign_form if action == "sign" else lock_form, error)
    context = {
        "patient": patient,
        "state": selectors.casebook_state(patient=patient, user=request.user),
        "sign_form": sign_form,
        "lock_form": lock_form,
        "action": action,
        "meaning": SignatureMeaning.CASEBOOK.label,
        "can_sign": request.user.has_perm(lifecycle.SIGN),
        "can_lock": request.user.has_perm(lifecycle.LOCK),
    }
    return render(request, "trial/lifecycle/casebook.html", context)


@login_required
@permission_required(lifecycle.LOCK, raise_exception=True)
def study_lock_page(request: HttpRequest) -> HttpResponse:
    """The study (database) lock: who locked it, when and why; lock or unlock with a reason."""
    study = selectors.study_get(code=settings.STUDY_CODE)
    if study is None:
        raise Http404("The study is not configured.")
    lock_form = ReasonForm()
    action = request.POST.get("action") if request.method == "POST" else None
    if action is not None:
        if action not in ("lock", "unlock"):
            raise Http404("No such action.")
        lock_form = ReasonForm(request.POST)
        if lock_form.is_valid():
            service = lifecycle.study_lock if action == "lock" else lifecycle.study_unlock
            try:
                service(study, user=request.user, reason=lock_form.cleaned_data["reason"])
            except ValidationError as error:
                lock_form.add_service_error(error)
            else:
                done = _("Study locked.") if action == "lock" else _("Study unlocked.")
                messages.success(request, done)
                return redirect(request.path)
    history = (
        Study.history.filter(id=study.pk)
        .select_related("history_user")
        .order_by("-history_date", "-history_id")[:20]
    )
    context = {
        "study": study,
        "lock": selectors.study_lock_state(study),
        "lock_form": lock_form,
        "history": history,
    }
    return render(request, "trial/lifecycle/study_lock.html", context)


def casebook_panel_context(request: HttpRequest, patient) -> dict | None:
    """The patient-page card "Casebook & signatures": the casebook lock, whether the latest
    casebook signature holds, the study lock (one query). Shown to users who read at least
    one clinical form; the counts by status are on the casebook page."""
    user = request.user
    if not any(user.has_perm(selectors.view_permission(m)) for m in selectors.clinical_models()):
        return None
    return selectors.casebook_summary(patient=patient)
