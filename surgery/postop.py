"""The postoperative lab days of the protocol and their windows, pure.

Panels are due on postoperative days 1, 3, 5 and 7 (± 1 day) and 30 (± 3 days); the day is
counted from the operation (the day of the operation is day 0).
"""

from dataclasses import dataclass

PROTOCOL_DAYS: tuple[int, ...] = (1, 3, 5, 7, 30)


def tolerance(day: int) -> int:
    """How many days either side of protocol day `day` its window reaches."""
    return 3 if day >= 30 else 1


def window(day: int) -> tuple[int, int]:
    """The first and last postoperative day of protocol day `day`'s window."""
    return day - tolerance(day), day + tolerance(day)


@dataclass(frozen=True)
class Snap:
    pod: int  # the postoperative day of the sample
    day: int  # the protocol day it counts for
    in_window: bool


def snap(pod: int, *, day: int | None = None) -> Snap:
    """The protocol day a sample taken on postoperative day `pod` counts for.

    With `day` given (the user chose it), that day; else the nearest protocol day whose window
    holds `pod` (the earlier on a tie, e.g. day 2 counts for day 1), or the nearest protocol day
    when no window holds it (then `in_window` is False).
    """
    if day is None:
        day = min(PROTOCOL_DAYS, key=lambda d: (abs(pod - d), d))
    first, last = window(day)
    return Snap(pod=pod, day=day, in_window=first <= pod <= last)
