"""Complete exports, logged: what an API endpoint returns (it only parses the query, scopes the
patients with `forms.export_patients` and wraps `Export.chunks` in a StreamingHttpResponse
with `content_type`, the `filename` and the `headers`).

Each export writes an ExportLog entry when it starts and completes it after its last chunk,
with the row count, the data version hash of the rows (analytics.exports.version) and the
SHA-256 of the bytes sent (what `sha256sum` of the saved file prints).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from analytics import dataset
from analytics.exports import codebook as codebook_module
from analytics.exports import deid, odm
from analytics.exports.forms import FORMS, csv_stream, export_rows, form_get, json_stream
from analytics.exports.log import export_completed, export_logged
from analytics.exports.version import ContentHash, as_of

ANALYSIS_DATASET = "analysis-dataset"
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xml": "application/xml",
}


@dataclass
class Export:
    chunks: Iterator[bytes]
    content_type: str
    filename: str
    headers: dict[str, str] = field(default_factory=dict)


def _finished(chunks: Iterable[str | bytes], *, on_done: Callable[[str], None]) -> Iterator[bytes]:
    """`chunks` as UTF-8 bytes, hashed; `on_done(sha256 hex)` after the last one."""
    digest = hashlib.sha256()
    for chunk in chunks:
        data = chunk.encode() if isinstance(chunk, str) else chunk
        digest.update(data)
        yield data
    on_done(digest.hexdigest())


def _check_format(format: str, allowed: tuple[str, ...]) -> None:
    if format not in allowed:
        raise ValueError(f"Unknown format {format!r}: choose one of {', '.join(allowed)}.")


def form_export(
    *,
    user: AbstractBaseUser,
    form_name: str,
    patients_qs: QuerySet,
    format: str = "csv",
    include_voided: bool = False,
    date_shift: bool = False,
    parameters: dict | None = None,
) -> Export:
    """One form table (`forms.FORMS_BY_NAME`; KeyError for an unknown name) as CSV or JSON.
    The JSON carries the data version: {"table", "as_of", "date_shift", "rows": […],
    "row_count", "data_version"}."""
    _check_format(format, ("csv", "json"))
    form = form_get(form_name)
    stamp = as_of(patients_qs=patients_qs, forms=[form])
    log = export_logged(
        user=user,
        what=form.name,
        format=format,
        parameters={
            **(parameters or {}),
            "include_voided": include_voided,
            "date_shift": date_shift,
        },
        as_of=stamp,
    )
    hasher = ContentHash()
    counted = {"rows": 0}

    def rows():
        for row in export_rows(
            form,
            patients_qs=patients_qs,
            include_voided=include_voided,
            date_shift=date_shift,
            hasher=hasher,
        ):
            counted["rows"] += 1
            yield row

    def version() -> str:
        return hasher.hexdigest([form.name])

    if format == "csv":
        text = csv_stream(rows(), form.column_names)
    else:
        text = json_stream(
            rows(),
            header={
                "table": form.name,
                "as_of": stamp.isoformat() if stamp else None,
                "date_shift": date_shift,
            },
            trailer=lambda: {"data_version": version()},
        )

    def done(sha256: str) -> None:
        export_completed(
            log, row_count=counted["rows"], data_version=version(), content_sha256=sha256
        )

    return Export(
        chunks=_finished(text, on_done=done),
        content_type=CONTENT_TYPES[format],
        filename=f"{form.name}.{format}",
        headers={"X-Data-As-Of": stamp.isoformat() if stamp else ""},
    )


def analysis_dataset_export(
    *,
    user: AbstractBaseUser,
    patients_qs: QuerySet,
    format: str = "csv",
    origin: dataset.Origin | str = dataset.Origin.ENROLLMENT,
    date_shift: bool = False,
    parameters: dict | None = None,
) -> Export:
    """The analysis dataset (one row per enrolled patient, dataset.COLUMNS) as CSV or JSON,
    dates shifted per patient on request (durations unchanged)."""
    _check_format(format, ("csv", "json"))
    origin = dataset.Origin(origin)
    stamp = as_of(patients_qs=patients_qs)
    log = export_logged(
        user=user,
        what=ANALYSIS_DATASET,
        format=format,
        parameters={**(parameters or {}), "origin": origin.value, "date_shift": date_shift},
        as_of=stamp,
    )
    rows = dataset.build(patients=patients_qs, origin=origin)
    hasher = ContentHash()
    for row in rows:
        hasher.update(ANALYSIS_DATASET, row)
    digest = hasher.hexdigest([ANALYSIS_DATASET])
    shifted = deid.analysis_rows_deidentified(rows, date_shift=date_shift)
    if format == "csv":
        text = csv_stream(shifted, dataset.COLUMNS)
    else:
        text = json_stream(
            shifted,
            header={
                "table": ANALYSIS_DATASET,
                "origin": origin.value,
                "as_of": stamp.isoformat() if stamp else None,
                "date_shift": date_shift,
            },
            trailer=lambda: {"data_version": digest},
            columns=dataset.COLUMNS,
        )

    def done(sha256: str) -> None:
        export_completed(log, row_count=len(rows), data_version=digest, content_sha256=sha256)

    return Export(
        chunks=_finished(text, on_done=done),
        content_type=CONTENT_TYPES[format],
        filename=f"{ANALYSIS_DATASET}.{format}",
        headers={"X-Data-As-Of": stamp.isoformat() if stamp else "", "X-Data-Version": digest},
    )


def codebook_export(*, user: AbstractBaseUser, format: str = "json") -> Export:
    """The codebook of every table and of the analysis dataset, as CSV or JSON."""
    _check_format(format, ("csv", "json"))
    entries = codebook_module.codebook()
    log = export_logged(user=user, what="codebook", format=format, row_count=len(entries))
    text = (
        codebook_module.codebook_csv(entries)
        if format == "csv"
        else codebook_module.codebook_json(entries)
    )

    def done(sha256: str) -> None:
        export_completed(log, row_count=len(entries), content_sha256=sha256)

    return Export(
        chunks=_finished(text, on_done=done),
        content_type=CONTENT_TYPES[format],
        filename=f"codebook.{format}",
    )


def odm_export(
    *,
    user: AbstractBaseUser,
    patients_qs: QuerySet,
    include_audit: bool = False,
    date_shift: bool = False,
    parameters: dict | None = None,
) -> Export:
    """The whole study as CDISC ODM 1.3.2 (analytics.exports.odm). ValueError for audit
    records with a date shift."""
    if include_audit and date_shift:
        raise ValueError("Audit records carry real dates: they cannot be date-shifted.")
    stamp = as_of(patients_qs=patients_qs)
    log = export_logged(
        user=user,
        what="odm",
        format="xml",
        parameters={
            **(parameters or {}),
            "include_audit": include_audit,
            "date_shift": date_shift,
        },
        as_of=stamp,
    )
    hasher = ContentHash()
    stream = odm.odm_stream(
        patients_qs=patients_qs, include_audit=include_audit, date_shift=date_shift, hasher=hasher
    )

    def done(sha256: str) -> None:
        export_completed(
            log,
            row_count=hasher.rows,
            data_version=hasher.hexdigest([form.name for form in FORMS]),
            content_sha256=sha256,
        )

    return Export(
        chunks=_finished(stream, on_done=done),
        content_type=CONTENT_TYPES["xml"],
        filename=f"plm-edc-odm-{timezone.localdate():%Y%m%d}.xml",
        headers={"X-Data-As-Of": stamp.isoformat() if stamp else ""},
    )
