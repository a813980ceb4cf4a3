"""Write endpoints for the records another hospital system sends (/api/v1/records/<form>/).

- POST /api/v1/records/<form>/: create a record of the patient named by `subject_code` → 201
  with the record, `ETag: W/"<version>"` and `Location`.
- GET /api/v1/records/<form>/<id>/: one record (voided ones too, `voided: true`) with its
  ETag.
- PATCH (the fields given) / PUT (the whole record) /api/v1/records/<form>/<id>/ with
  `If-Match: W/"<version>"` → 200 with the new ETag.
- DELETE /api/v1/records/<form>/<id>/ with If-Match and {"void_reason": "…"}: voids the
  record (clinical records are never deleted) → 200 with the voided record.

Every write runs the form's own service (exchange.api.records), so validation, derived values,
the audit trail (attributed to the token's user, with the reason for change) and the reason
required to edit a complete record are the form's. Status codes: 400 field errors keyed by
the body field ({"doses": [{}, {"given_mg": ["…"]}]} for a child row), 401, 403 without the
model's add/change permission, 404 for a subject code or record outside the user's sites
(the same answer as an unknown one), 409 when the record, its casebook or the study is locked,
the record is voided, or the write clashes with another record, 412 when If-Match is not the
stored version (with who changed it), 428 without If-Match, 429 throttled.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.api import records
from exchange.api.records import CHILD_KEY, FIELD_KEYS, RecordForm, Save
from exchange.api.serializers import MAX_ID, VoidSerializer
from patients.models import Patient
from treatments.models import RegimenLine
from trial.models import AuditedModel, Casebook, ClinicalModel, FormStatus, Study
from trial.scoping import site_ids_for
from trial.services import StaleRecordError

ACTIONS = {"GET": "view", "POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "change"}
ETAG = re.compile(r'(?:W/)?"(\d{1,10})"')


def etag(record: AuditedModel) -> str:
    return f'W/"{record.version}"'


class CanWriteForm(permissions.BasePermission):
    """The model's view (GET), add (POST) or change (PATCH, PUT, DELETE) permission, plus the
    child rows' ones where the form's pages ask for them."""

    message = "You do not have permission to write this form."

    def has_permission(self, request, view) -> bool:
        action = ACTIONS.get(request.method, "change")
        return bool(request.user and request.user.has_perms(view.form.perms(action)))


# --- answers ------------------------------------------------------------------------------


def _detail(message: str, status: int, **extra) -> Response:
    return Response({"detail": message, **extra}, status=status)


def _not_found() -> Response:
    """Unknown, voided or at another site: one answer, so ids of other sites stay unknown."""
    return _detail(_("No such record at your sites."), 404)


def _stale(conflict: StaleRecordError) -> Response:
    when = timezone.localtime(conflict.changed_at)
    response = _detail(
        _(
            "This record was changed by %(user)s at %(when)s (version %(current)s) after the "
            "version you sent in If-Match (%(expected)s). GET it again, compare, and send your "
            "change with the new ETag."
        )
        % {
            "user": conflict.changed_by,
            "when": when.strftime("%Y-%m-%d %H:%M"),
            "current": conflict.current_version,
            "expected": conflict.expected_version,
        },
        412,
        current_version=conflict.current_version,
        changed_by=conflict.changed_by,
        changed_at=when.isoformat(),
        changed_fields=[FIELD_KEYS.get(name, name) for name in conflict.changed_fields],
    )
    response["ETag"] = f'W/"{conflict.current_version}"'
    return response


def lock_message(patient: Patient, record: AuditedModel | None = None) -> str | None:
    """Why no write of this patient's records (or of `record`) is possible now, or None: the
    study database lock, the casebook lock, or the form's own lock."""
    study = Study.objects.filter(sites__id=patient.site_id, locked_at__isnull=False).first()
    if study is not None:
        return _(
            "The study database is locked (%(when)s): no record can change until a data "
            "manager unlocks it."
        ) % {"when": timezone.localtime(study.locked_at).strftime("%Y-%m-%d")}
    if Casebook.objects.filter(patient_id=patient.pk, locked_at__isnull=False).exists():
        return _(
            "This patient's casebook is locked: no record of it can change until a data "
            "manager unlocks it."
        )
    if isinstance(record, ClinicalModel) and record.status == FormStatus.LOCKED:
        return _(
            "This form is locked: it cannot change until a data manager unlocks it with a reason."
        )
    return None


def error_body(error: ValidationError, keys: dict[str, tuple[str, int, str]]) -> dict:
    """A service's ValidationError as the body's field errors: model field names become body
    names (`line` → `line_id`, `reason` → `change_reason`), and child-row errors (`doses-1-
    given_mg`, or an analyte's code) become a list of per-row dicts, as DRF nests them."""
    if not hasattr(error, "error_dict"):
        return {FIELD_KEYS["__all__"]: error.messages}
    body: dict = {}
    rows: dict[str, dict[int, dict]] = {}
    for key, items in error.error_dict.items():
        messages = [message for item in items for message in item.messages]
        match = CHILD_KEY.fullmatch(key)
        if key in keys:
            name, index, field = keys[key]
        elif match:
            name, index, field = match[1], int(match[2]), match[3]
        else:
            body.setdefault(FIELD_KEYS.get(key, key), []).extend(messages)
            continue
        row = rows.setdefault(name, {}).setdefault(index, {})
        row.setdefault(FIELD_KEYS.get(field, field), []).extend(messages)
    for name, by_index in rows.items():
        body[name] = [by_index.get(i, {}) for i in range(max(by_index) + 1)]
    return body


def _is_duplicate(error: ValidationError) -> bool:
    items = (
        [item for values in error.error_dict.values() for item in values]
        if hasattr(error, "error_dict")
        else error.error_list
    )
    return any(item.code in ("unique", "unique_together") for item in items)


# --- the views ----------------------------------------------------------------------------


class RecordView(APIView):
    """What the collection and the item views share: the form, scoping, writing."""

    form: RecordForm
    permission_classes = [permissions.IsAuthenticated, CanWriteForm]

    def patient_get(self, subject_code: str) -> Patient | None:
        return (
            Patient.objects.active()
            .filter(site_id__in=site_ids_for(self.request.user), subject_code=subject_code)
            .first()
        )

    def representation(self, record: AuditedModel) -> dict:
        record = self.form.model._base_manager.select_related("patient").get(pk=record.pk)
        if self.form.child_rows is not None:
            record.child_rows = self.form.child_rows(record)
        return self.form.response(record).data

    def answer(self, record: AuditedModel, status: int = 200) -> Response:
        response = Response(self.representation(record), status=status)
        response["ETag"] = etag(record)
        if status == 201:
            name = f"records_api:{self.form.name}-item"
            response["Location"] = reverse(name, kwargs={"id": record.pk})
        return response

    def write(self, save: Save, patient: Patient, *, status: int) -> Response:
        """Run the form's service; its errors as JSON (nothing is saved then)."""
        try:
            with transaction.atomic():
                saved = self.form.save(save)
        except StaleRecordError as conflict:
            return _stale(conflict)
        except ValidationError as error:
            return self.refused(error, patient, save.keys)
        except IntegrityError:
            return _detail(
                _(
                    "The record clashes with another one saved at the same moment: GET the "
                    "patient's records again and check."
                ),
                409,
            )
        return self.answer(saved, status=status)

    def refused(self, error: ValidationError, patient: Patient, keys=None) -> Response:
        message = lock_message(patient)
        if message is not None:
            return _detail(message, 409)
        body = error_body(error, keys or {})
        return Response(body, status=409 if _is_duplicate(error) else 400)


class RecordCollection(RecordView):
    """POST /api/v1/records/<form>/ (one subclass per form, built by `record_views`)."""

    def post(self, request: Request) -> Response:
        body = self.form.request(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        patient = self.patient_get(data["subject_code"])
        if patient is None:
            return _detail(_("No patient with this subject code at your sites."), 404)
        message = lock_message(patient)
        if message is not None:
            return _detail(message, 409)
        if self.form.single:
            other = self.form.model.objects.active().filter(patient=patient).first()
            if other is not None:
                return _detail(
                    _(
                        "A %(form)s is already recorded for this patient (record %(id)s): edit "
                        "that record instead."
                    )
                    % {"form": self.form.model._meta.verbose_name, "id": other.pk},
                    409,
                    id=other.pk,
                )
        refused = self.check_references(patient, data)
        if refused is not None:
            return refused
        values = {name: data[name] for name in self.form.request.model_fields() if name in data}
        record = self.form.model(patient=patient, **values)
        save = Save(
            record=record,
            children=data.get(self.form.children_field) if self.form.children_field else None,
            user=request.user,
            expected_version=None,
            reason=data.get("change_reason", ""),
            complete=data.get("complete", True),
        )
        return self.write(save, patient, status=201)

    def check_references(self, patient: Patient, data: dict) -> Response | None:
        """A cycle's line must be an active line of the patient (the service looks it up)."""
        if self.form.name != "cycles":
            return None
        line_id = data.get("line_id")
        if not RegimenLine.objects.active().filter(patient=patient, pk=line_id).exists():
            return Response(
                {"line_id": [_("Choose one of the patient's active regimen lines.")]}, status=400
            )
        return None


class RecordItem(RecordView):
    """GET, PATCH, PUT and DELETE /api/v1/records/<form>/<id>/."""

    def record_get(self, record_id: str) -> AuditedModel | None:
        if not record_id.isdigit() or not 1 <= int(record_id) <= MAX_ID:
            return None
        return (
            self.form.model._base_manager.select_related("patient")
            .filter(
                pk=int(record_id),
                patient__site_id__in=site_ids_for(self.request.user),
                patient__voided_at__isnull=True,
            )
            .first()
        )

    def get(self, request: Request, id: str) -> Response:
        record = self.record_get(id)
        if record is None:
            return _not_found()
        return self.answer(record)

    def expected_version(self, request: Request) -> int | Response:
        """The version named by If-Match: 428 without one, 400 for one that is no ETag."""
        header = request.headers.get("If-Match", "").strip()
        if not header:
            return _detail(
                _(
                    "Send the record's ETag in an If-Match header (from your GET): an edit "
                    "without it could overwrite a change made meanwhile."
                ),
                428,
            )
        versions = [ETAG.fullmatch(tag.strip()) for tag in header.split(",")]
        if not all(versions):
            return Response(
                {
                    "If-Match": [
                        _(
                            'Give the ETag of the record as the API sent it (W/"<version>"), '
                            "not %(value)s."
                        )
                        % {"value": header[:40]}
                    ]
                },
                status=400,
            )
        return int(versions[0][1])

    def preconditions(self, request: Request, record: AuditedModel) -> int | Response:
        """The If-Match version once it matches; else the answer (428, 400, 409, 412)."""
        expected = self.expected_version(request)
        if isinstance(expected, Response):
            return expected
        if record.voided_at is not None:
            return _detail(_("This record was voided and can no longer be changed."), 409)
        message = lock_message(record.patient, record)
        if message is not None:
            return _detail(message, 409)
        if record.version != expected:
            return _stale(
                StaleRecordError(
                    instance=record,
                    expected_version=expected,
                    current_version=record.version,
                    changed_by=str(record.updated_by or record.created_by or "—"),
                    changed_at=record.updated_at,
                    changed_fields=(),
                ),
            )
        return expected

    def edit(self, request: Request, id: str, *, partial: bool) -> Response:
        record = self.record_get(id)
        if record is None:
            return _not_found()
        expected = self.preconditions(request, record)
        if isinstance(expected, Response):
            return expected
        body = self.form.request(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        errors: dict = {}
        if "subject_code" in data and data["subject_code"] != record.patient.subject_code:
            errors["subject_code"] = [
                _("A record cannot move to another patient: void it and create it there.")
            ]
        for name, why in self.form.fixed.items():
            if name in data and data[name] != getattr(record, name):
                errors[name] = [str(why)]
        if errors:
            return Response(errors, status=400)
        meta = self.form.model._meta
        for name in self.form.request.model_fields():
            if name in data:
                setattr(record, name, data[name])
            elif not partial and name not in self.form.fixed:
                setattr(record, name, meta.get_field(name).get_default())
        children = self.form.children_field
        save = Save(
            record=record,
            children=data.get(children) if children else None,
            user=request.user,
            expected_version=expected,
            reason=data.get("change_reason", ""),
            complete=data.get("complete", True),
        )
        return self.write(save, record.patient, status=200)

    def patch(self, request: Request, id: str) -> Response:
        return self.edit(request, id, partial=True)

    def put(self, request: Request, id: str) -> Response:
        return self.edit(request, id, partial=False)

    def delete(self, request: Request, id: str) -> Response:
        record = self.record_get(id)
        if record is None:
            return _not_found()
        expected = self.preconditions(request, record)
        if isinstance(expected, Response):
            return expected
        body = VoidSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                voided = self.form.void(
                    record=record,
                    user=request.user,
                    reason=body.validated_data["void_reason"],
                    expected_version=expected,
                )
        except StaleRecordError as conflict:
            return _stale(conflict)
        except ValidationError as error:
            return self.refused(error, record.patient)
        return self.answer(voided)


# --- schema -------------------------------------------------------------------------------


class RecordDetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class RecordConflictSerializer(RecordDetailSerializer):
    id = serializers.IntegerField(
        required=False, help_text="The record the request conflicts with, when there is one."
    )


class StaleRecordSerializer(RecordDetailSerializer):
    current_version = serializers.IntegerField()
    changed_by = serializers.CharField()
    changed_at = serializers.DateTimeField()
    changed_fields = serializers.ListField(child=serializers.CharField())


IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the record as last read, e.g. W/"3". Without it: 428.',
)
RECORD_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The record id."
)
FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description=(
        "Field errors keyed by the body field ({field: [messages]}; child rows as a list of "
        "such objects), or non_field_errors."
    ),
)
NOT_FOUND = OpenApiResponse(
    RecordDetailSerializer, description="No such record (or patient) at your sites."
)
CONFLICT = OpenApiResponse(
    RecordConflictSerializer,
    description=(
        "The record, its casebook or the study is locked, the record is voided, or the write "
        "clashes with another record."
    ),
)
STALE = OpenApiResponse(
    StaleRecordSerializer,
    description="If-Match is not the stored version: who changed the record, and when.",
)
PRECONDITION_REQUIRED = OpenApiResponse(RecordDetailSerializer, description="No If-Match header.")


def _class_name(form: RecordForm, suffix: str) -> str:
    return "".join(part.title() for part in form.name.split("_")) + suffix


def record_views(form: RecordForm):
    """The two views of one form (collection, item), each with its own schema."""
    label = str(form.model._meta.verbose_name)
    response = form.response
    ok = OpenApiResponse(response, description="The record; its version in the ETag header.")
    tags = ["records"]

    @extend_schema(
        operation_id=f"records_{form.name}_create",
        summary=f"Create a {label}",
        description=(
            f"Creates a {label} of the patient named by subject_code, validated and saved by "
            "the form's own service. The answer carries the record with its derived values, "
            'its version as ETag (W/"<version>") and its Location.'
        ),
        request=form.request,
        responses={
            201: OpenApiResponse(response, description="Created; the ETag is its version."),
            400: FIELD_ERRORS,
            404: NOT_FOUND,
            409: CONFLICT,
        },
        tags=tags,
    )
    def post(self, request: Request) -> Response:
        return RecordCollection.post(self, request)

    @extend_schema(
        operation_id=f"records_{form.name}_retrieve",
        summary=f"One {label}",
        description="The record (voided ones too) with its version in the ETag header.",
        parameters=[RECORD_ID],
        responses={200: ok, 404: NOT_FOUND},
        tags=tags,
    )
    def get(self, request: Request, id: str) -> Response:
        return RecordItem.get(self, request, id)

    edit_responses = {
        200: ok,
        400: FIELD_ERRORS,
        404: NOT_FOUND,
        409: CONFLICT,
        412: STALE,
        428: PRECONDITION_REQUIRED,
    }

    @extend_schema(
        operation_id=f"records_{form.name}_partial_update",
        summary=f"Change fields of a {label}",
        description=(
            "Changes the fields given (a child list given replaces the whole list). Needs "
            "If-Match; change_reason is required once the record is complete."
        ),
        parameters=[RECORD_ID, IF_MATCH],
        request=form.request,
        responses=edit_responses,
        tags=tags,
    )
    def patch(self, request: Request, id: str) -> Response:
        return RecordItem.patch(self, request, id)

    @extend_schema(
        operation_id=f"records_{form.name}_update",
        summary=f"Replace a {label}",
        description=(
            "Replaces the record: fields left out take their defaults. Needs If-Match; "
            "change_reason is required once the record is complete."
        ),
        parameters=[RECORD_ID, IF_MATCH],
        request=form.request,
        responses=edit_responses,
        tags=tags,
    )
    def put(self, request: Request, id: str) -> Response:
        return RecordItem.put(self, request, id)

    @extend_schema(
        operation_id=f"records_{form.name}_void",
        summary=f"Void a {label}",
        description=(
            "Voids the record with the reason (it is never deleted: it stays, with its "
            "history, as voided). Needs If-Match."
        ),
        parameters=[RECORD_ID, IF_MATCH],
        request=VoidSerializer,
        responses={**edit_responses, 200: ok},
        tags=tags,
    )
    def delete(self, request: Request, id: str) -> Response:
        return RecordItem.delete(self, request, id)

    collection = type(
        _class_name(form, "Records"),
        (RecordCollection,),
        {"form": form, "post": post, "serializer_class": form.request},
    )
    item = type(
        _class_name(form, "Record"),
        (RecordItem,),
        {
            "form": form,
            "get": get,
            "patch": patch,
            "put": put,
            "delete": delete,
            "serializer_class": form.request,
        },
    )
    return collection.as_view(), item.as_view()


VIEWS = {form.name: record_views(form) for form in records.FORMS}
