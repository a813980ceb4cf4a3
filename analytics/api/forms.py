"""Read endpoints of every CRF under /api/v1/forms/, from the export registry
(`analytics.exports.forms.FORMS`): the same explicit columns as the form exports (subject code,
never PHI, no free text), as paginated JSON.

- GET /api/v1/forms/: the forms the user may read, with their columns (name, type, label,
  unit, allowed codes).
- GET /api/v1/forms/<form>/: the records of the user's sites, ordered by record id, cursor
  pagination (`cursor`, `page_size` 100 by default, at most 1000). Filters: site, cohort,
  subject_code, updated_since (ISO date-time: records created, edited or voided since),
  date_from / date_to (on the form's own date), include_voided.

Each form has its own path and view class (`form_view`), so the OpenAPI schema describes the
columns of each form exactly. A form needs the view permission of its model (every clinical
role has it); rows are scoped by the user's sites like the pages.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import pagination, permissions, serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.api import parameters as p
from analytics.exports.forms import (
    FORMS,
    FORMS_BY_NAME,
    Column,
    ExportForm,
    Kind,
    column_codes,
    export_patients,
    finish_row,
    form_queryset,
)

PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
FILTERS = (
    "site",
    "cohort",
    "subject_code",
    "updated_since",
    "date_from",
    "date_to",
    "include_voided",
)


def view_permission(form: ExportForm) -> str:
    meta = form.model._meta
    return f"{meta.app_label}.view_{meta.model_name}"


def changed_field(form: ExportForm) -> str:
    """The time of a record's last change (audited records) or refresh (computed ones)."""
    return "updated_at" if form.audited else "refreshed_at"


class CanReadForm(permissions.BasePermission):
    message = "You do not have permission to read this form."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(view_permission(view.form)))


class RecordCursorPagination(pagination.CursorPagination):
    """By record id, oldest first; a malformed cursor is a 400 keyed "cursor"."""

    ordering = "id"
    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                int(cursor.position)  # record ids: anything else would reach the query
        except (NotFound, ValueError):
            raise p.refuse(
                "cursor", _("This cursor is not one this API gave: follow the 'next' link.")
            ) from None
        return cursor

    def get_page_size(self, request) -> int:
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        try:
            size = int(text)
        except ValueError:
            size = 0
        if size < 1:
            raise p.refuse(
                "page_size",
                _("'%(value)s' is not a page size: give a whole number from 1 to %(max)d.")
                % {"value": text, "max": self.max_page_size},
            )
        return min(size, self.max_page_size)


# --- rows ---------------------------------------------------------------------------------


def rows_queryset(form: ExportForm, *, user, values: dict[str, str]) -> models.QuerySet:
    """The records of `form` the user may read, filtered by the query `values` (already
    checked by name), as dicts of the lookups of the form's columns."""
    patients = export_patients(user=user, site=p.site_code(values, user), cohort=p.cohort(values))
    if values.get("subject_code"):
        patients = patients.filter(subject_code=values["subject_code"])
    queryset = form_queryset(
        form,
        patients_qs=patients,
        include_voided=p.boolean(values, "include_voided"),
        by_patient_id=True,
    )
    since = p.iso_datetime(values, "updated_since")
    if since is not None:
        queryset = queryset.filter(**{f"{changed_field(form)}__gte": since})
    date_from, date_to = p.iso_date(values, "date_from"), p.iso_date(values, "date_to")
    if date_from or date_to:
        if form.date_lookup is None:
            name = "date_from" if date_from else "date_to"
            raise p.refuse(
                name, _("The form %(form)s has no date to filter on.") % {"form": form.name}
            )
        if date_from and date_to and date_to < date_from:
            raise p.refuse("date_to", _("date_to is before date_from."))
        lookup = form.date_lookup
        if isinstance(_date_field(form), models.DateTimeField):
            lookup += "__date"
        if date_from:
            queryset = queryset.filter(**{f"{lookup}__gte": date_from})
        if date_to:
            queryset = queryset.filter(**{f"{lookup}__lte": date_to})
    lookups = {c.lookup for c in form.columns if c.lookup} | {"id"}
    if form.audited:
        lookups.add("export_voided")
    return queryset.values(*lookups)


def _date_field(form: ExportForm) -> models.Field | None:
    column = next((c for c in form.columns if c.name == form.date_field), None)
    return column.model_field if column else None


def as_row(form: ExportForm, record: dict) -> dict:
    """A record of `rows_queryset` as the form's row, built like `forms.export_rows` does."""
    row = {column.name: record[column.lookup] for column in form.columns if column.lookup}
    return finish_row(form, row, voided=bool(record.get("export_voided")))


# --- schema -------------------------------------------------------------------------------


def _schema_field(form: ExportForm, column: Column) -> serializers.Field:
    options = {"allow_null": True, "help_text": str(column.label)}
    codes = column_codes(form.name, column)
    if codes and column.kind in (Kind.TEXT, Kind.INTEGER):
        choices = [(value, str(label)) for value, label in codes]
        if column.kind == Kind.TEXT and (column.model_field is None or column.model_field.blank):
            choices.append(("", "(blank)"))
        return serializers.ChoiceField(choices=choices, **options)
    return {
        Kind.TEXT: serializers.CharField,
        Kind.INTEGER: serializers.IntegerField,
        Kind.DECIMAL: serializers.FloatField,
        Kind.DATE: serializers.DateField,
        Kind.DATETIME: serializers.DateTimeField,
        Kind.BOOLEAN: serializers.BooleanField,
    }[column.kind](**options)


def row_serializer(form: ExportForm) -> type[serializers.Serializer]:
    """A serializer class describing one row of `form` (for the OpenAPI schema only; the
    component is named after the form, e.g. LabResultsRow)."""
    name = "".join(part.title() for part in form.name.split("_")) + "Row"
    fields = {column.name: _schema_field(form, column) for column in form.columns}
    return type(name, (serializers.Serializer,), fields)


FILTER_PARAMETERS = [
    p.SITE,
    p.COHORT,
    OpenApiParameter("subject_code", OpenApiTypes.STR, description="One patient's records."),
    OpenApiParameter(
        "updated_since",
        OpenApiTypes.DATETIME,
        description="Records created, edited or voided at or after this time (ISO 8601).",
    ),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="The form's date on or after."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="The form's date on or before."),
    OpenApiParameter(
        "include_voided", OpenApiTypes.BOOL, description="Also voided records (voided = true)."
    ),
]


class FormRows(ListAPIView):
    """GET /api/v1/forms/<form>/ (one subclass per form, built by `form_view`)."""

    form: ExportForm
    permission_classes = [permissions.IsAuthenticated, CanReadForm]
    pagination_class = RecordCursorPagination

    def get_queryset(self):
        allowed = (*FILTERS, "cursor", "page_size", "format")
        self.values = p.parameters(self.request.query_params, allowed)
        return rows_queryset(self.form, user=self.request.user, values=self.values)

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([as_row(self.form, record) for record in page])


def form_view(form: ExportForm):
    """The view of one form's rows, with its own schema (row component, filters)."""

    @extend_schema(
        operation_id=f"forms_{form.name}_list",
        summary=str(form.label),
        description=(
            "Records of %s at your sites, by record id; voided ones only on request. Dates "
            "ISO 8601, codes as stored (GET /api/v1/exports/codebook/ gives their labels)."
            % form.model._meta.verbose_name
        ),
        parameters=FILTER_PARAMETERS,
        tags=["forms"],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return self.list(request, *args, **kwargs)

    name = "".join(part.title() for part in form.name.split("_")) + "Rows"
    attributes = {"form": form, "serializer_class": row_serializer(form), "get": get}
    return type(name, (FormRows,), attributes).as_view()


# --- the list of forms --------------------------------------------------------------------


def form_description(form: ExportForm) -> dict:
    return {
        "name": form.name,
        "label": str(form.label),
        "phase": form.phase.value,
        "date_field": form.date_field,
        "url": f"/api/v1/forms/{form.name}/",
        "columns": [
            {
                "name": column.name,
                "type": column.kind.value,
                "label": str(column.label),
                "unit": column.unit,
                "codes": [
                    {"code": value, "label": str(label)}
                    for value, label in column_codes(form.name, column)
                ],
            }
            for column in form.columns
        ],
    }


class FormList(APIView):
    """GET /api/v1/forms/"""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="forms_index",
        summary="The forms you may read, with their columns",
        parameters=[],
        responses=inline_serializer(
            "FormIndex",
            {
                "forms": serializers.ListField(
                    child=inline_serializer(
                        "FormDescription",
                        {
                            "name": serializers.CharField(),
                            "label": serializers.CharField(),
                            "phase": serializers.CharField(),
                            "date_field": serializers.CharField(allow_null=True),
                            "url": serializers.CharField(),
                            "columns": serializers.ListField(
                                child=inline_serializer(
                                    "FormColumn",
                                    {
                                        "name": serializers.CharField(),
                                        "type": serializers.ChoiceField(
                                            choices=[k.value for k in Kind]
                                        ),
                                        "label": serializers.CharField(),
                                        "unit": serializers.CharField(),
                                        "codes": serializers.ListField(
                                            child=inline_serializer(
                                                "FormCode",
                                                {
                                                    "code": serializers.JSONField(),
                                                    "label": serializers.CharField(),
                                                },
                                            )
                                        ),
                                    },
                                )
                            ),
                        },
                    )
                )
            },
        ),
        tags=["forms"],
    )
    def get(self, request: Request) -> Response:
        p.parameters(request.query_params, ("format",))
        readable = [f for f in FORMS if request.user.has_perm(view_permission(f))]
        return Response({"forms": [form_description(form) for form in readable]})


class UnknownForm(APIView):
    """GET /api/v1/forms/<anything else>/: 404 naming the forms there are."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(exclude=True)
    def get(self, request: Request, form: str) -> Response:
        return Response(
            {
                "form": [
                    _("'%(value)s' is not a form: choose %(allowed)s.")
                    % {"value": form, "allowed": ", ".join(FORMS_BY_NAME)}
                ]
            },
            status=404,
        )
