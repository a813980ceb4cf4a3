"""De-identification by date shifting: every date of one patient moves by the same number of
days, so every interval within the patient (OS, RFS, time to surgery, length of stay) stays
exact while the calendar dates no longer match the hospital's records.

The offset is derived, not stored: HMAC-SHA256 of the patient's id under a secret (the setting
EXPORT_DATE_SHIFT_SECRET, or SECRET_KEY when it is not set), mapped to −MAX_SHIFT_DAYS …
+MAX_SHIFT_DAYS excluding 0. The same patient gets the same offset in every export, so tables
exported on different days still join on subject code and dates; changing the secret changes
every offset (do it only between data releases).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta

from django.conf import settings

MAX_SHIFT_DAYS = 180


def shift_secret() -> str:
    """The secret of the offsets: EXPORT_DATE_SHIFT_SECRET, else SECRET_KEY (read at call time)."""
    return getattr(settings, "EXPORT_DATE_SHIFT_SECRET", "") or settings.SECRET_KEY


def date_offset(patient_id: int, *, secret: str) -> int:
    """The patient's stable offset in days, in −180 … −1 or +1 … +180 (never 0: an unshifted
    patient would be recognisable)."""
    digest = hmac.new(
        secret.encode(), f"plm-edc-date-shift:{patient_id}".encode(), hashlib.sha256
    ).digest()
    span = 2 * MAX_SHIFT_DAYS
    index = int.from_bytes(digest[:8], "big") % span  # 0 … 359
    return index - MAX_SHIFT_DAYS if index < MAX_SHIFT_DAYS else index - MAX_SHIFT_DAYS + 1


def shift(value, offset: int):
    """`value` moved by `offset` days when it is a date or datetime; anything else unchanged."""
    if isinstance(value, date | datetime):
        return value + timedelta(days=offset)
    return value


class Offsets:
    """Offsets by patient id, computed once per patient for one export."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret or shift_secret()
        self._cache: dict[int, int] = {}

    def __call__(self, patient_id: int) -> int:
        offset = self._cache.get(patient_id)
        if offset is None:
            offset = self._cache[patient_id] = date_offset(patient_id, secret=self.secret)
        return offset


def analysis_rows_deidentified(
    rows: Iterable[dict], *, date_shift: bool, secret: str | None = None
) -> Iterator[dict]:
    """The analysis-dataset rows (`analytics.dataset.build`) with every date value moved by the
    patient's offset when `date_shift`; durations (os_days, rfs_days, surgery_days, …) are
    differences of dates and stay as they are. The rows carry the subject code, not the
    patient id, so the offset is looked up through the subject code."""
    if not date_shift:
        yield from rows
        return
    rows = list(rows)
    from patients.models import Patient  # a lookup of the ids of the codes in the rows

    codes = [row["subject_code"] for row in rows]
    ids: dict[str, int] = {}
    for start in range(0, len(codes), 5000):  # bounded IN lists (SQLite's variable limit)
        chunk = codes[start : start + 5000]
        ids.update(Patient.objects.filter(subject_code__in=chunk).values_list("subject_code", "id"))
    offsets = Offsets(secret)
    for row in rows:
        offset = offsets(ids[row["subject_code"]])
        yield {key: shift(value, offset) for key, value in row.items()}
