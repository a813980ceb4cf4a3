"""The codebook covers every column any export emits, and nothing else; labels and codes come
in English and Chinese; derived variables say how they are derived."""

import csv
import io
import json

import pytest

from analytics import dataset
from analytics.exports import codebook, dataset_columns
from analytics.exports.forms import FORMS, export_rows
from analytics.exports.streams import codebook_export
from analytics.models import ExportLog
from patients.models import Patient
from tests.analytics.test_exports import full_patient, second_patient

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    return codebook.codebook()


def _keys(entries) -> set[tuple[str, str]]:
    return {(e["table"], e["variable"]) for e in entries}


def test_every_emitted_column_is_in_the_codebook_and_no_entry_is_orphaned(
    site_a, investigator, entries
):
    full_patient(site_a, investigator)
    second_patient(site_a, investigator)
    patients = Patient.objects.active()
    emitted: set[tuple[str, str]] = set()
    for form in FORMS:
        emitted |= {(form.name, name) for name in form.column_names}
        for row in export_rows(form, patients_qs=patients, include_voided=True):
            emitted |= {(form.name, name) for name in row}
    rows = dataset.build(patients=patients)
    assert rows
    emitted |= {(codebook.DATASET_TABLE, name) for row in rows for name in row}
    emitted |= {(codebook.DATASET_TABLE, name) for name in dataset.COLUMNS}
    assert _keys(entries) == emitted
    assert len(entries) == len(_keys(entries))  # no duplicates


def test_the_dataset_description_follows_the_dataset_columns():
    assert tuple(c.name for c in dataset_columns.COLUMNS) == dataset.COLUMNS


def test_labels_codes_and_derivations(entries):
    by_key = {(e["table"], e["variable"]): e for e in entries}
    operated = by_key[("operations", "operated_on")]
    assert (operated["label_en"], operated["label_zh"]) == ("date of operation", "手术日期")
    assert (operated["type"], operated["source"]) == ("date", "surgery.Operation.operated_on")
    cause = {c["code"]: c for c in by_key[("deaths", "cause")]["codes"]}
    assert (cause["progression"]["label_en"], cause["progression"]["label_zh"]) == (
        "Disease progression",
        "疾病进展",
    )
    assert by_key[("baseline", "ca19_9_u_ml")]["unit"] == "U/mL"
    assert {c["code"] for c in by_key[("lab_results", "analyte")]["codes"]} >= {"ca19_9", "alt"}
    assert "Neutrophil count decreased" in {
        c["code"] for c in by_key[("adverse_events", "term")]["codes"]
    }
    for name in (
        "os_days",
        "os_event",
        "rfs_days",
        "rfs_event",
        "surgery_days",
        "best_response",
        "r_status",
        "mortality_90d",
        "cycles_before_surgery",
    ):
        entry = by_key[(codebook.DATASET_TABLE, name)]
        assert entry["description_en"], name
        assert entry["source"] == "", name
    assert {c["code"] for c in by_key[(codebook.DATASET_TABLE, "os_event")]["codes"]} == {0, 1}
    assert by_key[(codebook.DATASET_TABLE, "sex")]["source"] == "patients.Patient.sex"
    # Most labels have a Chinese translation already (the model labels are in the catalogue).
    translated = [e for e in entries if e["label_zh"] != e["label_en"]]
    assert len(translated) > 0.8 * len(entries)


def test_csv_and_json_renderings(entries, statistician):
    lines = list(csv.DictReader(io.StringIO("".join(codebook.codebook_csv(entries)))))
    assert len(lines) == len(entries)
    deaths = next(r for r in lines if (r["table"], r["variable"]) == ("deaths", "cause"))
    assert "progression = Disease progression (疾病进展)" in deaths["codes"]
    document = json.loads("".join(codebook.codebook_json(entries)))
    assert document["variables"] == json.loads(json.dumps(entries))

    export = codebook_export(user=statistician, format="csv")
    body = b"".join(export.chunks).decode()
    assert body.startswith("table,variable,type")
    log = ExportLog.objects.get(what="codebook")
    assert log.row_count == len(entries)
    assert log.completed_at is not None
