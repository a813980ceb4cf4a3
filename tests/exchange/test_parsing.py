"""Cells, dates and the template documents (no database)."""

import csv
from datetime import date
from pathlib import Path

import pytest

from exchange import parsing
from exchange.template import COLUMNS, COLUMNS_BY_NAME, REQUIRED

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    "text",
    ["2024-03-05", "2024/3/5", "2024.03.05", "20240305", "2024年3月5日", "2024-03-05 00:00:00"],
)
def test_accepted_date_formats(text):
    assert parsing.parse_date(text) == date(2024, 3, 5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("05/03/2024", "Unreadable date"),
        ("2024-02-30", "not a calendar date"),
        ("yesterday", "Unreadable date"),
    ],
)
def test_ambiguous_or_broken_dates_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parsing.parse_date(text)


def test_cells_are_typed_and_checked():
    assert parsing.parse_cell(COLUMNS_BY_NAME["regimen"], "mfolfirinox") == "mFOLFIRINOX"
    assert parsing.parse_cell(COLUMNS_BY_NAME["recurrence_sites"], "liver; lung;liver") == (
        "liver",
        "lung",
    )
    assert parsing.parse_cell(COLUMNS_BY_NAME["cycles"], "6.0") == 6
    with pytest.raises(ValueError, match="not a whole number"):
        parsing.parse_cell(COLUMNS_BY_NAME["cycles"], "6.5")
    with pytest.raises(ValueError, match="outside the plausible range 100–230"):
        parsing.parse_cell(COLUMNS_BY_NAME["height_cm"], "17")


def test_empty_is_not_collected_and_unknown_is_kept_apart():
    header = ["subject_code", "ecog", "cea_baseline", "enrollment_date", "death_cause"]
    row, issues = parsing.parse_row(2, header, ["SITEA-0001", "Unknown", "", "unknown", "unknown"])
    assert row.unknown == {"ecog"}
    assert "cea_baseline" not in row.values
    assert row.values["death_cause"] == "unknown"  # a code of its own there
    assert [(i.column, i.message) for i in issues] == [
        ("enrollment_date", "“unknown” is not allowed in this column.")
    ]


def test_a_row_in_the_future_or_out_of_order_is_reported():
    header = [
        "subject_code",
        "sex",
        "age",
        "enrollment_date",
        "vital_status",
        "last_contact_date",
        "death_date",
        "first_cycle_date",
    ]
    row, _ = parsing.parse_row(
        2,
        header,
        ["SITEA-0001", "M", "15", "2024-01-10", "alive", "2030-01-01", "2024-05-01", "2023-12-01"],
    )
    found = {i.column: i.message for i in parsing.check_row(row, today=date(2026, 6, 1))}
    assert "in the future" in found["last_contact_date"]
    assert "vital status is alive" in found["death_date"]
    assert "before the enrollment" in found["first_cycle_date"]
    assert "18 or older" in found["age"]


def test_the_template_csv_has_every_column_in_order():
    with (DOCS / "import-template.csv").open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == [c.name for c in COLUMNS]


def test_the_template_description_covers_every_column_and_code():
    text = (DOCS / "import-template.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"`{column.name}`" in text, column.name
        for code in column.codes:
            assert f"`{code}`" in text, (column.name, code)
    assert set(REQUIRED) <= set(COLUMNS_BY_NAME)
