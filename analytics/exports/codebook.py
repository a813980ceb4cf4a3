"""The codebook (data dictionary): every exported variable of every form table and of the
analysis dataset, with its type, unit, labels in English and Chinese, allowed codes with their
meanings in both languages, and how derived variables are derived.

English labels come from the model fields' verbose names; Chinese ones from the same lazy
strings rendered with the zh-hans catalogue (a string not translated yet shows in English).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.utils import translation

from analytics.exports import dataset_columns
from analytics.exports.forms import FORMS, column_codes, json_default

DATASET_TABLE = "analysis_dataset"
LANGUAGES = ("en", "zh-hans")
CSV_COLUMNS = (
    "table",
    "variable",
    "type",
    "unit",
    "label_en",
    "label_zh",
    "codes",
    "description_en",
    "description_zh",
    "source",
)


def _both(text) -> tuple[str, str]:
    """(English, Chinese) renderings of a lazy string."""
    if not text:
        return "", ""
    rendered = []
    for language in LANGUAGES:
        with translation.override(language):
            rendered.append(str(text))
    return rendered[0], rendered[1]


def _codes(codes) -> list[dict]:
    entries = []
    for code, text in codes:
        label_en, label_zh = _both(text)
        entries.append({"code": code, "label_en": label_en, "label_zh": label_zh})
    return entries


def _source(model_field) -> str:
    if model_field is None:
        return ""
    return f"{model_field.model._meta.label}.{model_field.name}"


def codebook() -> list[dict]:
    """One entry per variable: {"table", "variable", "type", "unit", "label_en", "label_zh",
    "codes": [{"code", "label_en", "label_zh"}], "description_en", "description_zh" (the
    derivation of a derived variable, or the field's help text), "source" ("app.Model.field"
    the value is read from, or "" when derived)}. Form tables in registry order, then the
    analysis dataset."""
    entries = []
    for form in FORMS:
        for column in form.columns:
            label_en, label_zh = _both(column.label)
            description_en, description_zh = _both(column.description)
            entries.append(
                {
                    "table": form.name,
                    "variable": column.name,
                    "type": column.kind.value,
                    "unit": column.unit,
                    "label_en": label_en,
                    "label_zh": label_zh,
                    "codes": _codes(column_codes(form.name, column)),
                    "description_en": description_en,
                    "description_zh": description_zh,
                    "source": "" if column.compute else _source(column.model_field),
                }
            )
    for column in dataset_columns.COLUMNS:
        label_en, label_zh = _both(column.label)
        description_en, description_zh = _both(column.derivation)
        entries.append(
            {
                "table": DATASET_TABLE,
                "variable": column.name,
                "type": column.kind.value,
                "unit": column.unit,
                "label_en": label_en,
                "label_zh": label_zh,
                "codes": _codes(column.codes),
                "description_en": description_en,
                "description_zh": description_zh,
                "source": "" if column.derivation else _source(column.model_field),
            }
        )
    return entries


def _codes_text(codes: list[dict]) -> str:
    return "; ".join(
        "%s = %s (%s)" % ("" if c["code"] is None else c["code"], c["label_en"], c["label_zh"])
        for c in codes
    )


def codebook_csv(entries: list[dict] | None = None) -> Iterator[str]:
    """The codebook as CSV chunks (one line per variable; codes as "code = English (中文); …")."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in entries if entries is not None else codebook():
        writer.writerow(
            [_codes_text(entry[name]) if name == "codes" else entry[name] for name in CSV_COLUMNS]
        )
    yield buffer.getvalue()


def codebook_json(entries: list[dict] | None = None) -> Iterator[str]:
    """The codebook as JSON chunks: {"variables": [entry, …]}."""
    entries = entries if entries is not None else codebook()
    yield json.dumps({"variables": entries}, ensure_ascii=False, default=json_default, indent=1)
