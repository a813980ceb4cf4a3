"""Validation helpers shared by every app's models, services and forms.

Each returns nothing and raises ValidationError keyed by the field to fix, with a message
that carries the real values.
"""

from datetime import date

from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.translation import gettext as _


def fmt(value: date | None) -> str:
    """A date as the user reads it in messages (e.g. 12 Mar 2026 / 2026年3月12日)."""
    return date_format(value, "DATE_FORMAT") if value else "—"


def not_in_future(errors: dict, field: str, value: date | None, *, today: date) -> None:
    """Add an error for `field` when `value` is after `today`."""
    if value and value > today:
        errors.setdefault(field, []).append(
            _("%(value)s is in the future (today is %(today)s).")
            % {"value": fmt(value), "today": fmt(today)}
        )


def not_before(
    errors: dict, field: str, value: date | None, other: date | None, message: str
) -> None:
    """Add `message` for `field` when `value` is before `other`.

    `message` may use %(value)s and %(other)s, filled with the formatted dates.
    """
    if value and other and value < other:
        errors.setdefault(field, []).append(message % {"value": fmt(value), "other": fmt(other)})


def required_if(errors: dict, field: str, value: object, condition: bool, message: str) -> None:
    """Add `message` for `field` when `condition` holds and `value` is empty."""
    if condition and value in (None, "", [], ()):
        errors.setdefault(field, []).append(message)


def not_applicable_if(
    errors: dict, field: str, value: object, condition: bool, message: str
) -> None:
    """Add `message` for `field` when `condition` holds but `value` was given anyway."""
    if condition and value not in (None, "", False, [], ()):
        errors.setdefault(field, []).append(message)


def raise_if(errors: dict) -> None:
    """Raise the collected field errors, if any."""
    if errors:
        raise ValidationError(errors)
