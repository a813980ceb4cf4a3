"""The lifecycle state a CRF page shows (banner) and obeys (no save buttons while locked).

One query per patient and request, whatever the number of forms on the page: the casebook and
study locks are read once and kept on the request.
"""

from django import template

from trial.lifecycle_selectors import lock_flags, record_patient_id
from trial.models import ClinicalModel, FormStatus
from trial.services import RESET_BY_EDIT

register = template.Library()

_LOCKS_ATTR = "_plm_lifecycle_locks"
_SHOWN_ATTR = "_plm_lifecycle_banner_shown"


def _patient_id(context: template.Context, instance: object) -> int | None:
    patient = context.get("patient")
    if getattr(patient, "pk", None) is not None:
        return patient.pk
    if isinstance(instance, ClinicalModel) and instance.pk is not None:
        return record_patient_id(instance)
    return getattr(instance, "patient_id", None)


@register.simple_tag(takes_context=True)
def lifecycle_state(context: template.Context, instance: object = None, banner: bool = False):
    """What the page needs to know of `instance` (a form's instance, saved or not): its
    status, whether an edit returns it to complete, and whether it, its casebook or the study
    is locked (`read_only`). With `banner=True` the casebook / study locks are reported once
    per page (`show_locks`), however many forms include the banner."""
    request = context.get("request")
    cache = getattr(request, _LOCKS_ATTR, None) if request is not None else None
    if cache is None:
        cache = {}
        if request is not None:
            setattr(request, _LOCKS_ATTR, cache)
    patient_id = _patient_id(context, instance)
    if patient_id not in cache:
        cache[patient_id] = lock_flags(patient_id=patient_id)
    casebook_lock, study_lock = cache[patient_id]
    saved = isinstance(instance, ClinicalModel) and instance.pk is not None
    status = instance.status if saved else ""
    show_locks = True
    if banner and request is not None:
        show_locks = not getattr(request, _SHOWN_ATTR, False)
        setattr(request, _SHOWN_ATTR, True)
    record_locked = status == FormStatus.LOCKED
    return {
        "status": status,
        "status_label": FormStatus(status).label if status else "",
        "label": instance._meta.label_lower if saved else "",
        "pk": instance.pk if saved else None,
        "resets_on_edit": status in RESET_BY_EDIT,
        "record_locked": record_locked,
        "casebook_lock": casebook_lock,
        "study_lock": study_lock,
        "show_locks": show_locks,
        "read_only": record_locked or casebook_lock.locked or study_lock.locked,
    }
