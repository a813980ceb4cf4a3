"""The statisticians' exports under /api/v1/exports/: thin wrappers around
`analytics.exports.streams`, answering a StreamingHttpResponse (memory stays flat whatever the
cohort), with the file name in Content-Disposition and the data version in the headers
(X-Data-As-Of: the last change of the exported records; X-Data-Version: the content hash, when
it is known before the first byte; otherwise it ends the JSON and is in the export log).

Who may export: whoever may see the analyses (trial.view_analytics: statisticians,
investigators, data managers), never a coordinator or a monitor; the ODM audit records
(`audit=true`: who changed what, when, why) only a data manager (analytics.view_exportlog).
Everything is scoped to the user's sites (`analytics.exports.forms.export_patients`), free of
PHI, and logged (analytics.models.ExportLog).

`format` here is the file format (csv, json), not DRF's content negotiation: the views use
`JsonOnlyNegotiation`, so errors are JSON whatever `format` says. Refusals are 400 keyed by
the parameter to fix; unknown or repeated parameters are refused too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import pandas as pd
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from analytics import dataset, survival_surgery
from analytics.api import parameters as p
from analytics.exports import streams
from analytics.exports.forms import FORMS, FORMS_BY_NAME, csv_stream, export_patients, json_stream
from analytics.exports.log import VIEW_EXPORT_LOG, export_completed, export_logged
from analytics.exports.version import ContentHash, as_of
from analytics.survival import SurvivalError

EXPORT_PERMISSION = "trial.view_analytics"
TABULAR = ("csv", "json")
WIDE, COUNTING_PROCESS = "wide", "counting-process"
COUNTING_COLUMNS = ("subject_code", "start", "stop", "event", "surgery")
SCOPE = ("site", "cohort")


class CanExport(permissions.BasePermission):
    """Exports are for statisticians, investigators and data managers (trial.roles)."""

    message = "You do not have permission to export study data."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(EXPORT_PERMISSION))


class ExportView(APIView):
    """GET only; token or session; JSON errors whatever `format` asks for."""

    permission_classes = [permissions.IsAuthenticated, CanExport]
    content_negotiation_class = p.JsonOnlyNegotiation
    # No HEAD: it would log an export that sends nothing.
    http_method_names = ["get", "options"]

    def patients(self, values: dict[str, str]):
        return export_patients(
            user=self.request.user,
            site=p.site_code(values, self.request.user),
            cohort=p.cohort(values),
        )


def streamed(export: streams.Export) -> StreamingHttpResponse:
    """The export as a download: its content type, file name and data-version headers."""
    response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    for name, value in export.headers.items():
        if value:
            response[name] = value
    return response


def _file(description: str) -> dict:
    return {
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=description),
        (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description=description),
        **ERRORS,
    }


ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="A parameter to fix: {name: [message]}."),
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="Not authenticated."),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="Not allowed to export."),
}


# --- the analysis dataset ------------------------------------------------------------------


def counting_process_rows(rows: list[dict]) -> list[dict]:
    """The analysis rows as start/stop rows with surgery as a time-varying covariate
    (`survival_surgery.to_counting_process` on os_days / os_event / surgery_days). SurvivalError
    for an operation after the end of follow-up."""
    frame = pd.DataFrame.from_records(rows, columns=dataset.COLUMNS)
    if frame["os_days"].notna().sum() == 0:
        return []
    table = survival_surgery.to_counting_process(frame)
    return [
        {
            "subject_code": subject,
            "start": float(start),
            "stop": float(stop),
            "event": int(event),
            "surgery": int(surgery),
        }
        for subject, start, stop, event, surgery in table.itertuples(index=False, name=None)
    ]


def counting_process_export(
    *, user, patients_qs, format: str, origin: dataset.Origin, parameters: dict
) -> streams.Export:
    """The counting-process layout of the analysis dataset, logged like the other exports
    (what "analysis-dataset", parameters with layout counting-process). Its data version is the
    hash of the analysis rows it comes from, so it matches the wide layout's."""
    stamp = as_of(patients_qs=patients_qs)
    rows = dataset.build(patients=patients_qs, origin=origin)
    table = counting_process_rows(rows)  # refuses before anything is logged
    log = export_logged(
        user=user,
        what=streams.ANALYSIS_DATASET,
        format=format,
        parameters={**parameters, "origin": origin.value, "layout": COUNTING_PROCESS},
        as_of=stamp,
    )
    hasher = ContentHash()
    for row in rows:
        hasher.update(streams.ANALYSIS_DATASET, row)
    digest = hasher.hexdigest([streams.ANALYSIS_DATASET])
    if format == "csv":
        text: Iterable[str] = csv_stream(table, COUNTING_COLUMNS)
    else:
        text = json_stream(
            table,
            header={
                "table": streams.ANALYSIS_DATASET,
                "layout": COUNTING_PROCESS,
                "origin": origin.value,
                "as_of": stamp.isoformat() if stamp else None,
            },
            trailer=lambda: {"data_version": digest},
            columns=COUNTING_COLUMNS,
        )

    def chunks() -> Iterator[bytes]:
        sha = hashlib.sha256()
        for chunk in text:
            data = chunk.encode()
            sha.update(data)
            yield data
        export_completed(
            log, row_count=len(table), data_version=digest, content_sha256=sha.hexdigest()
        )

    return streams.Export(
        chunks=chunks(),
        content_type=streams.CONTENT_TYPES[format],
        filename=f"{streams.ANALYSIS_DATASET}-counting-process.{format}",
        headers={"X-Data-As-Of": stamp.isoformat() if stamp else "", "X-Data-Version": digest},
    )


class AnalysisDatasetExport(ExportView):
    """GET /api/v1/exports/analysis-dataset/"""

    @extend_schema(
        operation_id="export_analysis_dataset",
        summary="The analysis dataset: one row per enrolled patient (or counting-process rows)",
        description=(
            "One row per enrolled patient with os_days, os_event, rfs_days, rfs_event and the "
            "covariates (see the codebook). layout=counting-process gives start/stop rows "
            "(subject_code, start, stop, event, surgery) with surgery as a time-varying "
            "covariate, for coxph(Surv(start, stop, event) ~ surgery + cluster(subject_code))."
        ),
        parameters=[
            p.format_parameter(TABULAR, "csv"),
            OpenApiParameter("origin", OpenApiTypes.STR, enum=[o.value for o in dataset.Origin]),
            OpenApiParameter("layout", OpenApiTypes.STR, enum=[WIDE, COUNTING_PROCESS]),
            p.DATE_SHIFT,
            p.SITE,
            p.COHORT,
        ],
        responses=_file("The dataset as CSV or JSON ({rows, row_count, data_version, …})."),
        tags=["exports"],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        allowed = ("format", "origin", "layout", "date_shift", *SCOPE)
        values = p.parameters(request.query_params, allowed)
        format = p.choice(values, "format", TABULAR, "csv")
        origin = dataset.Origin(
            p.choice(values, "origin", tuple(o.value for o in dataset.Origin), "enrollment")
        )
        layout = p.choice(values, "layout", (WIDE, COUNTING_PROCESS), WIDE)
        date_shift = p.boolean(values, "date_shift")
        patients = self.patients(values)
        scope = {k: values[k] for k in SCOPE if values.get(k)}
        if layout == COUNTING_PROCESS:
            try:
                export = counting_process_export(
                    user=request.user,
                    patients_qs=patients,
                    format=format,
                    origin=origin,
                    parameters={**scope, "date_shift": date_shift},
                )
            except SurvivalError as error:
                raise p.refuse("layout", error.message) from None
        else:
            export = streams.analysis_dataset_export(
                user=request.user,
                patients_qs=patients,
                format=format,
                origin=origin,
                date_shift=date_shift,
                parameters=scope,
            )
        return streamed(export)


# --- form tables, codebook, ODM -----------------------------------------------------------


class FormExport(ExportView):
    """GET /api/v1/exports/forms/<form>/"""

    @extend_schema(
        operation_id="export_form",
        summary="One long table per form",
        description=(
            "Every record of the form for the patients of your sites: subject code, record id, "
            "status, version, dates and stored codes (the codebook gives their labels); free "
            "text and personal identifiers are never exported. Forms: "
            + ", ".join(form.name for form in FORMS)
            + "."
        ),
        parameters=[
            OpenApiParameter(
                "form", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(FORMS_BY_NAME)
            ),
            p.format_parameter(TABULAR, "csv"),
            p.DATE_SHIFT,
            OpenApiParameter(
                "include_voided",
                OpenApiTypes.BOOL,
                description="Also the voided records (column voided = 1).",
            ),
            p.SITE,
            p.COHORT,
        ],
        responses=_file("The table as CSV or JSON ({table, rows, row_count, data_version, …})."),
        tags=["exports"],
    )
    def get(self, request: Request, form: str) -> StreamingHttpResponse:
        if form not in FORMS_BY_NAME:
            raise p.refuse(
                "form",
                _("'%(value)s' is not a form of the export: choose %(allowed)s.")
                % {"value": form, "allowed": ", ".join(FORMS_BY_NAME)},
            )
        values = p.parameters(
            request.query_params, ("format", "date_shift", "include_voided", *SCOPE)
        )
        format = p.choice(values, "format", TABULAR, "csv")
        date_shift = p.boolean(values, "date_shift")
        include_voided = p.boolean(values, "include_voided")
        export = streams.form_export(
            user=request.user,
            form_name=form,
            patients_qs=self.patients(values),
            format=format,
            include_voided=include_voided,
            date_shift=date_shift,
            parameters={k: values[k] for k in SCOPE if values.get(k)},
        )
        return streamed(export)


class CodebookExport(ExportView):
    """GET /api/v1/exports/codebook/"""

    @extend_schema(
        operation_id="export_codebook",
        summary="The codebook: every exported variable",
        description=(
            "Every column of every table and of the analysis dataset: label (English and "
            "Chinese), type, unit, allowed codes with their meanings, derivation."
        ),
        parameters=[p.format_parameter(TABULAR, "json")],
        responses=_file("The codebook as CSV or JSON."),
        tags=["exports"],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        values = p.parameters(request.query_params, ("format",))
        format = p.choice(values, "format", TABULAR, "json")
        return streamed(streams.codebook_export(user=request.user, format=format))


class OdmExport(ExportView):
    """GET /api/v1/exports/odm/"""

    @extend_schema(
        operation_id="export_odm",
        summary="The whole study as CDISC ODM 1.3.2 XML",
        description=(
            "Metadata and clinical data of the patients of your sites. audit=true adds the "
            "audit records (data managers only; not with date_shift)."
        ),
        parameters=[
            OpenApiParameter(
                "audit", OpenApiTypes.BOOL, description="Include the audit trail (data managers)."
            ),
            p.DATE_SHIFT,
            p.SITE,
            p.COHORT,
        ],
        responses={
            (200, "application/xml"): OpenApiResponse(
                OpenApiTypes.STR, description="ODM 1.3.2 XML."
            ),
            **ERRORS,
        },
        tags=["exports"],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        values = p.parameters(request.query_params, ("audit", "date_shift", *SCOPE))
        audit = p.boolean(values, "audit")
        date_shift = p.boolean(values, "date_shift")
        if audit and not request.user.has_perm(VIEW_EXPORT_LOG):
            self.permission_denied(
                request, message=_("Only a data manager may export the audit records.")
            )
        if audit and date_shift:
            raise p.refuse(
                "date_shift",
                _("Audit records carry real dates: ask for audit=true or date_shift=true."),
            )
        export = streams.odm_export(
            user=request.user,
            patients_qs=self.patients(values),
            include_audit=audit,
            date_shift=date_shift,
            parameters={k: values[k] for k in SCOPE if values.get(k)},
        )
        return streamed(export)
