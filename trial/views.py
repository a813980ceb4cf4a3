"""View helpers every app's CRF pages share: the save loop with conflict and error handling."""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from trial.forms import CRFForm, VoidForm
from trial.models import FormStatus
from trial.services import StaleRecordError, collect_lifecycle_resets


def attach_errors(forms: list[CRFForm], error: ValidationError) -> None:
    """Put each field's errors on the form that has the field; the rest on the first form."""
    if not hasattr(error, "error_dict"):
        forms[0].add_service_error(error)
        return
    for field, errors in error.error_dict.items():
        owner = next((f for f in forms if field in f.fields), forms[0])
        owner.add_service_error(ValidationError({field: errors}))


def crf_submit(
    request: HttpRequest,
    *,
    forms: list[CRFForm],
    save: Callable[[int | None, str, bool], object],
    success_url: str,
    template: str,
    context: dict,
) -> HttpResponse:
    """Validate bound `forms`, call `save(version, reason, complete)` and redirect, or re-render.

    A ValidationError from the service lands on the fields it names; a StaleRecordError keeps
    the user's input, says who changed the record, and lets them save again deliberately.
    The first form carries the version and reason fields. Nothing is half-saved: the service
    runs in one transaction.
    """
    main = forms[0]
    complete = "save_draft" not in request.POST
    if all(form.is_valid() for form in forms):
        try:
            with collect_lifecycle_resets() as resets:
                save(
                    main.cleaned_data.get("version"),
                    main.cleaned_data.get("change_reason", ""),
                    complete,
                )
        except StaleRecordError as conflict:
            # The page may hold several records: refresh the version of the one that changed.
            stale = next(
                (
                    form
                    for form in forms
                    if type(form.instance) is type(conflict.instance)
                    and form.instance.pk == conflict.instance.pk
                ),
                main,
            )
            main.add_error(None, str(conflict))
            if conflict.changed_fields:
                labels = ", ".join(stale._label(name) for name in conflict.changed_fields)
                main.add_error(None, _("Fields that differ: %(fields)s.") % {"fields": labels})
            data = stale.data.copy()
            data[stale.add_prefix("version")] = conflict.current_version
            stale.data = data
        except ValidationError as error:
            attach_errors(forms, error)
        except IntegrityError:
            main.add_error(
                None,
                _(
                    "The record could not be saved because it clashes with another one saved at "
                    "the same moment. Reload the page and check."
                ),
            )
        else:
            messages.success(request, _("Saved."))
            for record, former in resets:
                what = _("signed") if former == FormStatus.SIGNED else _("source-verified")
                messages.warning(
                    request,
                    _(
                        "%(record)s was %(what)s; your change returned it to complete, so it "
                        "needs to be verified and signed again."
                    )
                    % {"record": record._meta.verbose_name.capitalize(), "what": what},
                )
            return redirect(success_url)
    return render(request, template, {**context, "forms": forms, "form": main}, status=200)


def void_page(
    request: HttpRequest,
    *,
    patient: object,
    record: object,
    title: str,
    cancel_url: str,
    void: Callable[[str, int | None], object],
    done: str,
    template: str = "trial/void_form.html",
) -> HttpResponse:
    """The confirm-and-void page of a record: asks for the reason, calls `void(reason, version)`
    and returns to `cancel_url`. A stale version or a refusal from the service is shown on the
    form; nothing changes then."""
    form = VoidForm(
        request.POST if request.method == "POST" else None, initial={"version": record.version}
    )
    if form.is_valid():
        try:
            void(form.cleaned_data["void_reason"], form.cleaned_data["version"])
        except StaleRecordError as conflict:
            form.add_error(None, str(conflict))
        except ValidationError as error:
            by_field = error.error_dict if hasattr(error, "error_dict") else {None: [error]}
            for field, errors in by_field.items():
                target = field if field in form.fields else None
                for item in errors:
                    for message in item.messages:
                        form.add_error(target, message)
        else:
            messages.success(request, done)
            return redirect(cancel_url)
    context = {
        "patient": patient,
        "form": form,
        "record": record,
        "title": title,
        "cancel_url": cancel_url,
    }
    return render(request, template, context)
