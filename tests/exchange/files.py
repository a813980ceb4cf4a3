"""Import files for the tests: rows as dicts, written as CSV or XLSX bytes."""

import csv
import io

from exchange.template import COLUMNS

HEADER = [c.name for c in COLUMNS]

# An alive patient with every CRF the template can fill (baseline, line, operation,
# recurrence after the resection) and the identity given.
FULL = {
    "subject_code": "SITEA-0101",
    "sex": "F",
    "date_of_birth": "1961-04-02",
    "enrollment_date": "2023-02-01",
    "vital_status": "alive",
    "last_contact_date": "2024-06-01",
    "name": "王芳",
    "hospital_record_number": "H0012345",
    "pathological_confirmation": "cytology",
    "diagnosis_date": "2023-01-20",
    "baseline_date": "2023-01-28",
    "ecog": "1",
    "height_cm": "160",
    "weight_kg": "55.5",
    "primary_site": "head",
    "primary_size_mm": "32",
    "liver_mets_count": "2",
    "liver_mets_largest_mm": "18",
    "liver_mets_distribution": "unilobar",
    "ajcc_t": "T3",
    "ajcc_n": "N1",
    "ca19_9_baseline": "1250.5",
    "cea_baseline": "6.2",
    "regimen": "mFOLFIRINOX",
    "first_cycle_date": "2023-02-10",
    "cycles": "8",
    "best_response": "PR",
    "surgery_date": "2023-07-15",
    "pancreatic_procedure": "pd",
    "liver_procedures": "wedge",
    "liver_lesions_resected": "2",
    "approach": "open",
    "operative_minutes": "420",
    "blood_loss_ml": "600",
    "r_status": "R0",
    "recurrence_date": "2024-01-20",
    "recurrence_sites": "liver;peritoneum",
    "recurrence_detected_by": "imaging",
}

# A dead patient with the minimal columns, an age instead of a date of birth, values the CRFs
# cannot hold (a cycle count, a best response) and one "unknown".
MINIMAL_DEAD = {
    "subject_code": "SITEA-0102",
    "sex": "M",
    "age": "67",
    "enrollment_date": "2023-01-10",
    "vital_status": "dead",
    "last_contact_date": "2023-08-30",
    "death_date": "2023-09-10",
    "death_cause": "progression",
    "regimen": "AG",
    "cycles": "6",
    "best_response": "SD",
    "ecog": "unknown",
}

# Dead; the last contact is the call that reported the death; the surgery is only partly
# abstracted (no operative details), so it stays in the abstract.
REPORTED_DEATH = {
    "subject_code": "SITEA-0103",
    "sex": "M",
    "age": "58",
    "enrollment_date": "2022-11-05",
    "vital_status": "dead",
    "last_contact_date": "2023-12-01",
    "death_date": "2023-11-20",
    "surgery_date": "2023-04-02",
    "pancreatic_procedure": "dps",
    "r_status": "R1",
}

GOOD_ROWS = [FULL, MINIMAL_DEAD, REPORTED_DEATH]


def csv_bytes(rows: list[dict], *, header: list[str] | None = None, bom: bool = False) -> bytes:
    header = header or HEADER
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    text = out.getvalue()
    return (("\ufeff" if bom else "") + text).encode("utf-8")


def xlsx_bytes(rows: list[dict], *, header: list[str] | None = None) -> bytes:
    from openpyxl import Workbook

    header = header or HEADER
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(name) or None for name in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
