"""The audit trail as CSV and as a PDF (A4 landscape), for monitors, inspectors and the TMF.

One line per changed field (an entry that changed no field, such as a deletion, gets one line
with the field empty), newest first, as on the page.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from trial.history import Entry

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
# Characters Helvetica (WinAnsi) cannot draw go to the CID font, which covers Chinese.
_NOT_WIN_ANSI = re.compile(
    r"[^\x00-\x7f\xa0-\xff\u2013\u2014\u2018\u2019\u201c\u201d\u2022\u20ac]+"
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
# Rows per table on the PDF: platypus splits long tables in quadratic time.
_PDF_ROWS_PER_TABLE = 250


def _when(at: datetime) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Line:
    history_id: int
    when: str
    user: str
    form: str
    record: str
    record_id: object
    action: str
    field: str
    old: str
    new: str
    reason: str
    version: str


def lines(entries: Iterable[Entry]) -> Iterator[Line]:
    """One line per changed field of each entry."""
    for entry in entries:
        common = {
            "history_id": entry.history_id,
            "when": _when(entry.at),
            "user": entry.user,
            "form": entry.form,
            "record": entry.record,
            "record_id": entry.record_id,
            "action": entry.kind,
            "reason": entry.reason,
            "version": "" if entry.version is None else str(entry.version),
        }
        if not entry.changes:
            yield Line(field="", old="", new="", **common)
        for change in entry.changes:
            yield Line(field=change.label, old=change.old, new=change.new, **common)


def csv_columns() -> list[str]:
    return [
        _("When"),
        _("User"),
        _("Form"),
        _("Record"),
        _("Record id"),
        _("Action"),
        _("Field"),
        _("Old value"),
        _("New value"),
        _("Reason"),
        _("Version"),
        _("History id"),
    ]


def _cell(value: object) -> str:
    """Text that a spreadsheet will not run as a formula (a leading =, +, -, @ gets a quote;
    plain numbers such as -1.5 are left alone)."""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def write_csv(entries: Iterable[Entry], out: io.TextIOBase) -> None:
    """The trail as CSV (UTF-8 with a byte-order mark, so spreadsheets read Chinese)."""
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(csv_columns())
    for line in lines(entries):
        writer.writerow(
            [
                _cell(value)
                for value in (
                    line.when,
                    line.user,
                    line.form,
                    line.record,
                    line.record_id,
                    line.action,
                    line.field,
                    line.old,
                    line.new,
                    line.reason,
                    line.version,
                    line.history_id,
                )
            ]
        )


# --- PDF -------------------------------------------------------------------------------------


def _register_fonts() -> None:
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def markup(text: object) -> str:
    """Paragraph markup for `text`: escaped, with runs Helvetica cannot draw (Chinese, arrows)
    set in the CID font."""
    escaped = escape(str(text))
    return _NOT_WIN_ANSI.sub(
        lambda match: f'<font name="{CJK_FONT}">{match.group(0)}</font>', escaped
    )


@dataclass(frozen=True)
class PdfHeader:
    study: str
    subject: str  # "Subject CJFH-0007" or the record's label
    generated_at: datetime
    generated_by: str
    filters: str = ""


def _canvas_class(header: PdfHeader):
    """A canvas that draws the header on every page and "Page n of N" once N is known."""

    class NumberedCanvas(canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _text(self, x: float, y: float, text: str, size: float, right: bool = False) -> None:
            paragraph = Paragraph(
                markup(text),
                ParagraphStyle("h", fontName=LATIN_FONT, fontSize=size, leading=size * 1.2),
            )
            width, _height = paragraph.wrap(self._pagesize[0] / 2, 20 * mm)
            if right:
                width = max(line_width for line_width in paragraph.getActualLineWidths0())
                x -= width
            paragraph.drawOn(self, x, y)

        def _decorate(self, total: int) -> None:
            page_width, page_height = self._pagesize
            left, right = 12 * mm, page_width - 12 * mm
            top = page_height - 12 * mm
            self._text(left, top, _("Audit trail") + " · " + header.study, 10)
            self._text(left, top - 13, header.subject, 9)
            generated = _("Generated %(when)s by %(user)s") % {
                "when": _when(header.generated_at),
                "user": header.generated_by,
            }
            self._text(right, top, generated, 8, right=True)
            if header.filters:
                self._text(right, top - 13, header.filters, 8, right=True)
            page = _("Page %(page)s of %(total)s") % {
                "page": self._pageNumber,
                "total": total,
            }
            self._text(right, 8 * mm, page, 8, right=True)
            self._text(left, 8 * mm, _("The audit trail cannot be edited."), 7)

    return NumberedCanvas


def write_pdf(entries: Iterable[Entry], header: PdfHeader, out: io.BufferedIOBase) -> None:
    """The trail as an A4 landscape PDF: a table repeating its column titles on every page,
    the study, subject, who generated it and when at the top, page numbers at the foot."""
    _register_fonts()
    cell = ParagraphStyle("cell", fontName=LATIN_FONT, fontSize=7, leading=8.5)
    head = ParagraphStyle("head", parent=cell, fontName="Helvetica-Bold")
    titles = [
        _("When"),
        _("User"),
        _("Record"),
        _("Action"),
        _("Field"),
        _("Old value"),
        _("New value"),
        _("Reason"),
    ]
    widths = [x * mm for x in (28, 24, 38, 17, 34, 48, 48, 36)]
    heading = [Paragraph(markup(title), head) for title in titles]
    style = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf1")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        ]
    )
    story: list = []
    rows: list = []

    def flush() -> None:
        if rows:
            story.append(LongTable([heading, *rows], colWidths=widths, repeatRows=1, style=style))
            rows.clear()

    for line in lines(entries):
        record = f"{line.record} #{line.record_id}"
        rows.append(
            [
                Paragraph(markup(value), cell)
                for value in (
                    line.when,
                    line.user,
                    record + (f" v{line.version}" if line.version else ""),
                    line.action,
                    line.field,
                    line.old,
                    line.new,
                    line.reason,
                )
            ]
        )
        if len(rows) >= _PDF_ROWS_PER_TABLE:
            flush()
    flush()
    if not story:
        story.append(Paragraph(markup(_("No history.")), cell))
    story.insert(0, Spacer(1, 2 * mm))
    document = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=24 * mm,
        bottomMargin=15 * mm,
        title=_("Audit trail") + " · " + header.subject,
        author=header.generated_by,
    )
    document.build(story, canvasmaker=_canvas_class(header))
