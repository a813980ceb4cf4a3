"""Reading an import file (CSV or XLSX) and parsing its cells: no database access.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first patient row 2.
Every problem becomes an `Issue` (row, column, value, message); parsing never stops at the
first one, so the report lists them all.
"""

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from exchange.template import COLUMNS, COLUMNS_BY_NAME, UNKNOWN, Column, Kind
from patients import eligibility
from patients.eligibility import age_on
from trial.validation import fmt

XLSX_SIGNATURE = b"PK\x03\x04"
MAX_ROWS = 50_000


@dataclass(frozen=True)
class Issue:
    row: int | None  # None: the file as a whole
    column: str
    value: str
    message: str

    def as_dict(self) -> dict:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }


@dataclass
class ParsedRow:
    number: int
    raw: dict[str, str]
    values: dict[str, object] = field(default_factory=dict)  # typed; absent when empty
    unknown: set[str] = field(default_factory=set)  # columns given as "unknown"

    def get(self, name: str, default=None):
        return self.values.get(name, default)

    def has_all(self, names) -> bool:
        return all(self.values.get(name) not in (None, "", ()) for name in names)


class FileUnreadable(Exception):
    """The file is not a CSV or XLSX file this import can read."""


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def kind_of(content: bytes, file_name: str) -> str:
    """ "csv" or "xlsx", from the extension checked against the content; FileUnreadable when
    they disagree or the type is neither."""
    name = file_name.lower()
    if name.endswith(".xlsx"):
        if not content.startswith(XLSX_SIGNATURE) or not zipfile.is_zipfile(io.BytesIO(content)):
            raise FileUnreadable(_("The file is named .xlsx but is not an Excel (XLSX) workbook."))
        return "xlsx"
    if name.endswith(".csv"):
        if content.startswith(XLSX_SIGNATURE) or b"\x00" in content[:4096]:
            raise FileUnreadable(_("The file is named .csv but is not a text file."))
        return "csv"
    raise FileUnreadable(
        _("Upload a .csv or .xlsx file (the template is docs/import-template.csv).")
    )


def read_table(content: bytes, file_name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty rows (with their spreadsheet row number) of a CSV (UTF-8,
    with or without BOM) or of the first sheet of an XLSX workbook."""
    if kind_of(content, file_name) == "xlsx":
        from openpyxl import load_workbook  # only needed for workbooks

        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds on a damaged file
            raise FileUnreadable(
                _("The workbook cannot be read: %(error)s") % {"error": error}
            ) from error
        sheet = book.worksheets[0]
        lines = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        book.close()
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FileUnreadable(_("The file is not UTF-8 text: save the CSV as UTF-8.")) from None
        lines = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    if not lines:
        raise FileUnreadable(_("The file is empty."))
    header = [cell.strip().lower() for cell in lines[0]]
    while header and not header[-1]:
        header.pop()
    rows = [
        (number, row) for number, row in enumerate(lines[1:], start=2) if any(cell for cell in row)
    ]
    return header, rows


def check_header(header: list[str]) -> list[Issue]:
    """Unknown, duplicate and missing required columns."""
    issues = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            issues.append(
                Issue(1, name, name, _("The column %(name)s appears twice.") % {"name": name})
            )
        seen.add(name)
        if name not in COLUMNS_BY_NAME:
            issues.append(
                Issue(
                    1,
                    name,
                    name,
                    _("Unknown column %(name)s (see docs/import-template.md).")
                    % {"name": name or "—"},
                )
            )
    for column in COLUMNS:
        if column.required and column.name not in seen:
            issues.append(
                Issue(
                    1,
                    column.name,
                    "",
                    _("The required column %(name)s is missing.") % {"name": column.name},
                )
            )
    if "age" not in seen and "date_of_birth" not in seen:
        issues.append(Issue(1, "age", "", _("Give an age or a date_of_birth column.")))
    return issues


# Dates: ISO first; day/month orders that read both ways (03/04/2024) are refused.
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
)


def parse_date(text: str) -> date:
    """A date in one of the accepted formats; ValueError with the reason otherwise."""
    text = text.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}[ T]00:00(:00)?$", text):  # a spreadsheet's date-time
        text = text[:10]
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return date(year, month, day)
            except ValueError:
                raise ValueError(_("%(value)s is not a calendar date.") % {"value": text}) from None
    raise ValueError(
        _("Unreadable date %(value)s: use YYYY-MM-DD (e.g. 2024-03-05).") % {"value": text}
    )


def _number(column: Column, text: str) -> Decimal | int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(_("%(value)s is not a number.") % {"value": text}) from None
    if not value.is_finite():
        raise ValueError(_("%(value)s is not a number.") % {"value": text})
    if column.kind == Kind.INTEGER:
        if value != value.to_integral_value():
            raise ValueError(_("%(value)s is not a whole number.") % {"value": text})
        value = int(value)
    if (column.low is not None and value < column.low) or (
        column.high is not None and value > column.high
    ):
        raise ValueError(
            _("%(value)s is outside the plausible range %(low)s–%(high)s.")
            % {"value": text, "low": _plain(column.low), "high": _plain(column.high)}
        )
    return value


def _plain(number: float | None) -> str:
    return "" if number is None else f"{number:g}"


def _code(column: Column, text: str) -> str:
    by_lower = {code.lower(): code for code in column.codes}
    code = by_lower.get(text.lower())
    if code is None:
        raise ValueError(
            _("Unknown code %(value)s: use one of %(codes)s.")
            % {"value": text, "codes": ", ".join(column.codes)}
        )
    return code


def parse_cell(column: Column, text: str):
    """The typed value of one non-empty cell; ValueError with the message otherwise."""
    if column.kind == Kind.DATE:
        return parse_date(text)
    if column.kind in (Kind.INTEGER, Kind.DECIMAL):
        return _number(column, text)
    if column.kind == Kind.CODE:
        return _code(column, text)
    if column.kind == Kind.CODES:
        parts = [part.strip() for part in text.split(";") if part.strip()]
        codes = tuple(dict.fromkeys(_code(column, part) for part in parts))
        if not codes:
            raise ValueError(_("Give at least one code."))
        return codes
    if column.max_length and len(text) > column.max_length:
        raise ValueError(
            _("%(length)s characters: at most %(max)s.")
            % {"length": len(text), "max": column.max_length}
        )
    return text


def parse_row(number: int, header: list[str], cells: list[str]) -> tuple[ParsedRow, list[Issue]]:
    """The typed values of one row, and the problems of its cells taken one by one."""
    raw = {name: (cells[i] if i < len(cells) else "") for i, name in enumerate(header)}
    row = ParsedRow(number=number, raw=raw)
    issues: list[Issue] = []
    for name, text in raw.items():
        column = COLUMNS_BY_NAME.get(name)
        if column is None or not text:
            continue
        # "unknown" is a value of its own where it is one of the column's codes (death_cause).
        if text.lower() == UNKNOWN and UNKNOWN not in column.codes:
            if column.unknown_ok:
                row.unknown.add(name)
                continue
            if column.kind != Kind.TEXT:
                message = _("“unknown” is not allowed in this column.")
                issues.append(Issue(number, name, text, message))
                continue
        try:
            row.values[name] = parse_cell(column, text)
        except ValueError as error:
            issues.append(Issue(number, name, text, str(error)))
    return row, issues


def check_row(row: ParsedRow, *, today: date) -> list[Issue]:
    """The rules between the cells of one row that need no database: required values, dates
    in order, death and vital status."""
    issues: list[Issue] = []
    n = row.number

    def add(column: str, message: str) -> None:
        issues.append(Issue(n, column, row.raw.get(column, ""), message))

    for column in COLUMNS:
        if column.required and column.name not in row.values and column.name not in _failed(row):
            add(column.name, _("%(name)s is required.") % {"name": column.name})
    given = {"age", "date_of_birth"} & (set(row.values) | _failed(row))
    if not given:
        add("age", _("Give the age or the date of birth."))
    for column in COLUMNS:
        value = row.values.get(column.name)
        if column.kind == Kind.DATE and isinstance(value, date) and value > today:
            add(
                column.name,
                _("%(value)s is in the future (today is %(today)s).")
                % {"value": fmt(value), "today": fmt(today)},
            )
    age = row.get("age")
    if age is not None and age < eligibility.ADULT_AGE:
        add(
            "age",
            _("Age %(age)s: the study enrolls patients aged %(adult)s or older.")
            % {"age": age, "adult": eligibility.ADULT_AGE},
        )
    enrolled = row.get("enrollment_date")
    died = row.get("death_date")
    born = row.get("date_of_birth")
    dead = row.get("vital_status") == "dead"
    if dead and died is None and "death_date" not in _failed(row):
        add("death_date", _("The patient is dead: give the date of death."))
    if row.get("vital_status") == "alive" and died is not None:
        add("death_date", _("A date of death is given but the vital status is alive."))
    if row.get("vital_status") == "alive" and row.get("death_cause"):
        add("death_cause", _("A cause of death is given but the vital status is alive."))
    if born and enrolled:
        if born > enrolled:
            add(
                "date_of_birth",
                _("The date of birth (%(born)s) is after the enrollment (%(on)s).")
                % {"born": fmt(born), "on": fmt(enrolled)},
            )
        elif row.get("age") is not None:
            derived = age_on(born, enrolled)
            if derived != row.get("age"):
                add(
                    "age",
                    _(
                        "Age %(age)s does not match the date of birth (%(derived)s years at "
                        "the enrollment)."
                    )
                    % {"age": row.get("age"), "derived": derived},
                )
    if enrolled:
        for name, label in (
            ("death_date", _("Date of death")),
            ("last_contact_date", _("Last contact")),
            ("first_cycle_date", _("First cycle")),
            ("surgery_date", _("Date of operation")),
            ("recurrence_date", _("Recurrence / progression")),
        ):
            value = row.get(name)
            if value and value < enrolled:
                add(
                    name,
                    _("%(label)s (%(value)s) is before the enrollment (%(other)s).")
                    % {"label": label, "value": fmt(value), "other": fmt(enrolled)},
                )
        diagnosed = row.get("diagnosis_date")
        if diagnosed and diagnosed > enrolled:
            add(
                "diagnosis_date",
                _("The diagnosis (%(value)s) is after the enrollment (%(other)s).")
                % {"value": fmt(diagnosed), "other": fmt(enrolled)},
            )
    if died:
        for name, label in (
            ("first_cycle_date", _("First cycle")),
            ("surgery_date", _("Date of operation")),
            ("recurrence_date", _("Recurrence / progression")),
            ("baseline_date", _("Baseline")),
        ):
            value = row.get(name)
            if value and value > died:
                add(
                    name,
                    _("%(label)s (%(value)s) is after the date of death (%(other)s).")
                    % {"label": label, "value": fmt(value), "other": fmt(died)},
                )
    if row.get("regimen") == "other" and not row.get("regimen_other"):
        add("regimen_other", _("Name the other regimen."))
    if row.get("regimen_other") and row.get("regimen") != "other":
        add("regimen_other", _("A regimen name is only given for an other regimen."))
    procedures = row.get("liver_procedures") or ()
    if "none" in procedures and len(procedures) > 1:
        add("liver_procedures", _("“none” cannot be combined with a liver procedure."))
    sites = row.get("recurrence_sites") or ()
    if "other" in sites and not row.get("recurrence_site_other"):
        add("recurrence_site_other", _("Name the other site."))
    if row.get("death_cause") == "other" and not row.get("death_cause_detail"):
        add("death_cause_detail", _("Describe the cause of death."))
    return issues


def _failed(row: ParsedRow) -> set[str]:
    """Columns that had a value which did not parse (already reported)."""
    return {
        name
        for name, text in row.raw.items()
        if text and name not in row.values and name not in row.unknown
    }
