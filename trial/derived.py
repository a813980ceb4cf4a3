"""Keeping derived data current when the records it is derived from change.

Higher apps derive values from lower apps' records (an evaluation's cycle count from the
cycles, a lab grade from the baseline panel, later the protocol calendar from everything).
A lower app cannot call them, so after it changes a patient's records it calls
`patient_records_changed`, and every refresher that a higher app registered in its
AppConfig.ready() runs, in the same transaction: derived data is never out of step with what
was committed. Refreshers must be idempotent and save only what actually changed.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Refresher:
    key: str
    order: int
    refresh: Callable[..., None]  # refresh(*, patient, user, source: str) -> None


_REFRESHERS: dict[str, Refresher] = {}


def register_refresher(refresher: Refresher) -> None:
    """Add (or replace, by key) a refresher; lower `order` runs first."""
    _REFRESHERS[refresher.key] = refresher


def patient_records_changed(*, patient, user: AbstractBaseUser | None, source: str) -> None:
    """Tell the higher apps that `patient`'s records changed (`source`: e.g. "treatments.cycle").

    Call it inside the service's transaction, after the change is saved.
    """
    for refresher in sorted(_REFRESHERS.values(), key=lambda r: r.order):
        refresher.refresh(patient=patient, user=user, source=source)
