"""Pages of imaging (RECIST 1.1) and response evaluations.

Every page loads the patient through `patients.selectors.patient_get` first: a patient of
another site is a 404 before anything else is read.
"""

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from assessments.forms.imaging import ImagingStudyForm, ResponseEvaluationForm
from assessments.models import ImagingStudy, ResponseEvaluation
from assessments.selectors import imaging as selectors
from assessments.services import imaging as services
from patients.selectors import patient_get
from trial.views import crf_submit, void_page


def _study(patient, study_id: int) -> ImagingStudy:
    try:
        return selectors.study_get(patient=patient, study_id=study_id)
    except ImagingStudy.DoesNotExist as exc:
        raise Http404("No such imaging study for this patient.") from exc


def _evaluation(patient, evaluation_id: int) -> ResponseEvaluation:
    try:
        return selectors.evaluation_get(patient=patient, evaluation_id=evaluation_id)
    except ResponseEvaluation.DoesNotExist as exc:
        raise Http404("No such evaluation for this patient.") from exc


def _form_page(request, *, forms, save, success_url, template, context) -> HttpResponse:
    if request.method == "POST":
        return crf_submit(
            request,
            forms=forms,
            save=save,
            success_url=success_url,
            template=template,
            context=context,
        )
    return render(request, template, {**context, "forms": forms, "form": forms[0]})


# --- imaging --------------------------------------------------------------------------------


@login_required
@permission_required("assessments.view_imagingstudy", raise_exception=True)
def imaging_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    history = selectors.imaging_history(patient=patient)
    return render(
        request, "assessments/imaging/list.html", {"patient": patient, "history": history}
    )


@login_required
@permission_required("assessments.add_imagingstudy", raise_exception=True)
@require_http_methods(["GET", "POST"])
def imaging_edit(request: HttpRequest, patient_id: int, study_id: int | None = None):
    patient = patient_get(patient_id=patient_id, user=request.user)
    if study_id is None:
        study = ImagingStudy(patient=patient)
        initial = {"performed_on": timezone.localdate(), "modality": ImagingStudy.Modality.CT}
        lesions = []
    else:
        if not request.user.has_perm("assessments.change_imagingstudy"):
            raise PermissionDenied
        study = _study(patient, study_id)
        if study.is_voided:
            raise Http404("This imaging study was voided.")
        initial = {}
        lesions = list(study.lesions.active())
    form = ImagingStudyForm(
        request.POST if request.method == "POST" else None,
        instance=study,
        initial=initial,
        targets=selectors.baseline_targets(patient=patient),
        lesions=lesions,
    )

    def save(version, reason, complete):
        services.imaging_study_save(
            study=form.save(commit=False),
            lesions=form.lesions,
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    title = _("Imaging study") if study.pk else _("New imaging study")
    return _form_page(
        request,
        forms=[form],
        save=save,
        success_url=reverse("assessments:imaging-list", args=[patient.pk]),
        template="assessments/imaging/form.html",
        context={"patient": patient, "title": title, "study": study},
    )


@login_required
@permission_required("assessments.change_imagingstudy", raise_exception=True)
@require_http_methods(["GET", "POST"])
def imaging_void(request: HttpRequest, patient_id: int, study_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    study = _study(patient, study_id)
    if study.is_voided:
        raise Http404("This imaging study is already voided.")
    return void_page(
        request,
        patient=patient,
        record=study,
        title=_("Void imaging study"),
        cancel_url=reverse("assessments:imaging-list", args=[patient.pk]),
        void=lambda reason, version: services.imaging_study_void(
            study=study, user=request.user, reason=reason, expected_version=version
        ),
        done=_("The imaging study was voided; the responses were recomputed."),
    )


# --- evaluations ----------------------------------------------------------------------------


@login_required
@permission_required("assessments.view_responseevaluation", raise_exception=True)
def evaluation_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    rows = selectors.evaluations(patient=patient)
    return render(request, "assessments/evaluations/list.html", {"patient": patient, "rows": rows})


@login_required
@permission_required("assessments.add_responseevaluation", raise_exception=True)
@require_http_methods(["GET", "POST"])
def evaluation_edit(request: HttpRequest, patient_id: int, evaluation_id: int | None = None):
    patient = patient_get(patient_id=patient_id, user=request.user)
    if evaluation_id is None:
        evaluation = ResponseEvaluation(patient=patient)
        initial = {"evaluated_on": timezone.localdate()}
    else:
        if not request.user.has_perm("assessments.change_responseevaluation"):
            raise PermissionDenied
        evaluation = _evaluation(patient, evaluation_id)
        if evaluation.is_voided:
            raise Http404("This evaluation was voided.")
        initial = {}
    form = ResponseEvaluationForm(
        request.POST if request.method == "POST" else None,
        instance=evaluation,
        initial=initial,
        choices=selectors.evaluation_choices(patient=patient),
    )

    def save(version, reason, complete):
        services.evaluation_save(
            evaluation=form.save(commit=False),
            user=request.user,
            expected_version=version,
            reason=reason,
            complete=complete,
        )

    row = None
    if evaluation.pk:
        row = next(
            (r for r in selectors.evaluations(patient=patient) if r.evaluation.pk == evaluation.pk),
            None,
        )
    title = _("Response evaluation") if evaluation.pk else _("New response evaluation")
    return _form_page(
        request,
        forms=[form],
        save=save,
        success_url=reverse("assessments:evaluation-list", args=[patient.pk]),
        template="assessments/evaluations/form.html",
        context={"patient": patient, "title": title, "evaluation": evaluation, "row": row},
    )


@login_required
@permission_required("assessments.change_responseevaluation", raise_exception=True)
@require_http_methods(["GET", "POST"])
def evaluation_void(request: HttpRequest, patient_id: int, evaluation_id: int) -> HttpResponse:
    patient = patient_get(patient_id=patient_id, user=request.user)
    evaluation = _evaluation(patient, evaluation_id)
    if evaluation.is_voided:
        raise Http404("This evaluation is already voided.")
    return void_page(
        request,
        patient=patient,
        record=evaluation,
        title=_("Void response evaluation"),
        cancel_url=reverse("assessments:evaluation-list", args=[patient.pk]),
        void=lambda reason, version: services.evaluation_void(
            evaluation=evaluation, user=request.user, reason=reason, expected_version=version
        ),
        done=_("The evaluation was voided; the others were renumbered."),
    )
