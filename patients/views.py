"""Pages of the patients app: list, candidate screening, patient page, the entry CRFs, history.

Every patient lookup goes through `selectors.patient_get`, scoped to the user's sites, so a
patient of another site is a 404 before any permission is considered.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from patients import selectors, services
from patients.forms import (
    BaselineForm,
    ConsentForm,
    EnrollmentForm,
    IdentityForm,
    PatientFilterForm,
    ScreeningForm,
    WithdrawalForm,
)
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Withdrawal,
)
from trial.http import is_htmx
from trial.panels import patient_panels
from trial.scoping import sites_for
from trial.views import crf_submit, void_page

FORM_PAGE = "patients/crf_form.html"


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def patient_list(request: HttpRequest) -> HttpResponse:
    sites = sites_for(request.user)
    filters = PatientFilterForm(request.GET or None, sites=sites)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    site = criteria.get("site")
    patients = selectors.patient_list(
        user=request.user,
        search=criteria.get("q", ""),
        cohort=criteria.get("cohort", ""),
        status=criteria.get("status", ""),
        site_id=site.pk if site else None,
    )
    page = Paginator(patients, settings.PATIENT_LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "site_count": len(sites),
        "can_screen": request.user.has_perm("patients.add_screening"),
    }
    template = (
        "patients/partials/_patient_rows.html" if is_htmx(request) else "patients/patient_list.html"
    )
    return render(request, template, context)


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    context = {
        "patient": patient,
        "identity": selectors.patient_identity(user=request.user, patient=patient),
        "eligibility": selectors.patient_eligibility(patient=patient),
        "screening": getattr(patient, "screening", None),
        "enrollment": getattr(patient, "enrollment", None),
        "baseline": getattr(patient, "baseline", None),
        "withdrawal": getattr(patient, "withdrawal", None),
        "consents": list(patient.consents.all()),
        "can_edit": request.user.has_perm("patients.change_screening"),
        "panels": patient_panels(request, patient),
    }
    return render(request, "patients/patient_detail.html", context)


@login_required
@permission_required(
    ["patients.add_screening", "patients.add_patientidentity"], raise_exception=True
)
@require_http_methods(["GET", "POST"])
def candidate_new(request: HttpRequest) -> HttpResponse:
    sites = list(sites_for(request.user))
    if not sites:
        raise PermissionDenied(_("You are not a member of any site."))
    site_choices = {str(site.pk): site for site in sites}
    data = request.POST if request.method == "POST" else None
    identity_form = IdentityForm(data, prefix="id")
    screening_form = ScreeningForm(data, initial={"screened_on": timezone.localdate()})
    chosen = site_choices.get(request.POST.get("site", "")) if data else None
    if data is not None and chosen is None and len(sites) == 1:
        chosen = sites[0]
    context = {"title": _("Screen a candidate"), "sites": sites, "chosen_site": chosen}
    forms = [screening_form, identity_form]
    if data is None:
        return render(
            request,
            "patients/candidate_form.html",
            {**context, "forms": forms, "form": screening_form},
        )
    if chosen is None:
        screening_form.add_error(None, _("Choose the site that screens the candidate."))

    result: dict = {}

    def save(version, reason, complete):
        identity = identity_form.save(commit=False)
        screening = screening_form.save(commit=False)
        result["patient"] = services.candidate_screen(
            site=chosen,
            user=request.user,
            sex=identity_form.cleaned_data["sex"],
            identity=identity,
            screening=screening,
            complete=complete,
        )

    response = crf_submit(
        request,
        forms=forms,
        save=save,
        # Replaced by the new patient's page below; crf_submit needs a resolvable URL.
        success_url=reverse("patients:patient-list"),
        template="patients/candidate_form.html",
        context=context,
    )
    if "patient" in result:
        return _redirect_to(result["patient"])
    return response


def _redirect_to(patient: Patient) -> HttpResponse:
    return redirect("patients:patient-detail", patient_id=patient.pk)


def _form_page(request, patient, title, forms, save, *, voidable=None):
    return (
        crf_submit(
            request,
            forms=forms,
            save=save,
            success_url=reverse("patients:patient-detail", args=[patient.pk]),
            template=FORM_PAGE,
            context={"title": title, "patient": patient},
        )
        if request.method == "POST"
        else render(
            request,
            FORM_PAGE,
            {"title": title, "patient": patient, "forms": forms, "form": forms[0]},
        )
    )


@login_required
@permission_required("patients.change_screening", raise_exception=True)
@require_http_methods(["GET", "POST"])
def screening_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    screening = patient.screening
    identity = PatientIdentity.objects.get(patient=patient)
    data = request.POST if request.method == "POST" else None
    screening_form = ScreeningForm(data, instance=screening)
    identity_form = IdentityForm(data, instance=identity, prefix="id", initial={"sex": patient.sex})

    def save(version, reason, complete):
        patient_sex = identity_form.cleaned_data["sex"]
        services.screening_update(
            screening=screening_form.save(commit=False),
            identity=identity_form.save(commit=False),
            user=request.user,
            expected_version=version,
            identity_version=identity_form.cleaned_data.get("version"),
            reason=reason,
            complete=complete,
            sex=patient_sex,
        )

    return _form_page(request, patient, _("Screening"), [screening_form, identity_form], save)


@login_required
@permission_required("patients.add_consent", raise_exception=True)
@require_http_methods(["GET", "POST"])
def consent_edit(
    request: HttpRequest, patient_id: int, consent_id: int | None = None
) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    if consent_id is None:
        consent = Consent(patient=patient)
        initial = {"consented_on": timezone.localdate()}
    else:
        if not request.user.has_perm("patients.change_consent"):
            raise PermissionDenied
        consent = get_object_or_404(Consent.objects.filter(patient=patient), pk=consent_id)
        initial = {}
    form = ConsentForm(
        request.POST if request.method == "POST" else None,
        instance=consent,
        initial=initial,
    )

    def save(version, reason, complete):
        services.consent_save(
            consent=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return _form_page(request, patient, _("Consent"), [form], save)


@login_required
@permission_required("patients.change_consent", raise_exception=True)
@require_http_methods(["GET", "POST"])
def consent_void(request: HttpRequest, patient_id: int, consent_id: int) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    consent = get_object_or_404(Consent.objects.active().filter(patient=patient), pk=consent_id)
    return void_page(
        request,
        patient=patient,
        record=consent,
        title=_("Void consent"),
        cancel_url=reverse("patients:patient-detail", args=[patient.pk]),
        void=lambda reason, version: services.consent_void(
            consent=consent, user=request.user, reason=reason, expected_version=version
        ),
        done=_("The consent was voided; it stays in the audit trail."),
    )


@login_required
@permission_required("patients.add_enrollment", raise_exception=True)
@require_http_methods(["GET", "POST"])
def enrollment_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    existing = getattr(patient, "enrollment", None)
    if existing is not None and not request.user.has_perm("patients.change_enrollment"):
        raise PermissionDenied
    enrollment = existing or Enrollment(patient=patient)
    initial = {}
    if existing is None and hasattr(patient, "screening"):
        initial = {
            "cohort": patient.screening.intended_cohort,
            "enrolled_on": timezone.localdate(),
        }
    form = EnrollmentForm(
        request.POST if request.method == "POST" else None,
        instance=enrollment,
        initial=initial,
    )

    def save(version, reason, complete):
        if existing is None:
            services.patient_enroll(
                enrollment=form.save(commit=False), user=request.user, complete=complete
            )
        else:
            services.enrollment_update(
                enrollment=form.save(commit=False),
                user=request.user,
                expected_version=version,
                reason=reason,
                complete=complete,
            )

    context_title = _("Enrollment")
    response = _form_page(request, patient, context_title, [form], save)
    return response


@login_required
@permission_required("patients.add_baseline", raise_exception=True)
@require_http_methods(["GET", "POST"])
def baseline_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    existing = getattr(patient, "baseline", None)
    if existing is not None and not request.user.has_perm("patients.change_baseline"):
        raise PermissionDenied
    baseline = existing or Baseline(patient=patient)
    form = BaselineForm(request.POST if request.method == "POST" else None, instance=baseline)

    def save(version, reason, complete):
        services.baseline_save(
            baseline=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return _form_page(request, patient, _("Baseline"), [form], save)


@login_required
@permission_required("patients.add_withdrawal", raise_exception=True)
@require_http_methods(["GET", "POST"])
def withdrawal_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    existing = getattr(patient, "withdrawal", None)
    if existing is not None and not request.user.has_perm("patients.change_withdrawal"):
        raise PermissionDenied
    withdrawal = existing or Withdrawal(patient=patient)
    form = WithdrawalForm(request.POST if request.method == "POST" else None, instance=withdrawal)

    def save(version, reason, complete):
        services.withdrawal_save(
            withdrawal=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    return _form_page(request, patient, _("Withdrawal / drop-out"), [form], save)


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def patient_history(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.patient_get(patient_id=patient_id, user=request.user)
    show_phi = selectors.can_view_phi(user=request.user, patient=patient)
    entries = selectors.patient_history(patient=patient, include_identity=show_phi)
    return render(
        request,
        "patients/patient_history.html",
        {"patient": patient, "entries": entries},
    )
