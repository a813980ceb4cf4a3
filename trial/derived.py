"""Keeping derived data current when the records it is derived from change.

Higher apps derive values from lower apps' records (an evaluation's cycle count from the
cycles, a lab grade from the baseline panel, later the protocol calendar from everything).
A lower app cannot call them, so after it changes a patient's records it calls
`patient_records_changed`, and every refresher that a higher app registered in its
AppConfig.ready() runs, in the same transaction: derived data is never out of step with what
was committed. Refreshers must be idempotent and save only what actually changed.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Refresher:
    key: str
    order: int
    refresh: Callable[..., None]  # refresh(*, patient, user, source: str) -> None
    # Optional: refresh many patients at once (patient ids). A refresher that has it may be
    # deferred to the end of a bulk job (see `refreshes_deferred`).
    batch: Callable[[list[int]], None] | None = None


_REFRESHERS: dict[str, Refresher] = {}
# Inside `refreshes_deferred()`: refresher key -> patient ids waiting for its batch refresh.
_DEFERRED: ContextVar[dict[str, set[int]] | None] = ContextVar("derived_deferred", default=None)


def register_refresher(refresher: Refresher) -> None:
    """Add (or replace, by key) a refresher; lower `order` runs first."""
    _REFRESHERS[refresher.key] = refresher


def patient_records_changed(*, patient, user: AbstractBaseUser | None, source: str) -> None:
    """Tell the higher apps that `patient`'s records changed (`source`: e.g. "treatments.cycle").

    Call it inside the service's transaction, after the change is saved.
    """
    deferred = _DEFERRED.get()
    for refresher in sorted(_REFRESHERS.values(), key=lambda r: r.order):
        if deferred is not None and refresher.batch is not None:
            deferred.setdefault(refresher.key, set()).add(patient.pk)
        else:
            refresher.refresh(patient=patient, user=user, source=source)


@contextmanager
def refreshes_deferred() -> Iterator[None]:
    """Within a bulk job (the demo seed, an import), run the refreshers that can work in
    batches once per patient at the end instead of after every save. Refreshers without a
    batch form still run at once, since later saves of the job may depend on them. Use it
    inside the job's transaction, so the derived data is committed with the records."""
    if _DEFERRED.get() is not None:  # nested: the outer block refreshes
        yield
        return
    pending: dict[str, set[int]] = {}
    token = _DEFERRED.set(pending)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
    for refresher in sorted(_REFRESHERS.values(), key=lambda r: r.order):
        ids = pending.get(refresher.key)
        if ids and refresher.batch is not None:
            refresher.batch(sorted(ids))
