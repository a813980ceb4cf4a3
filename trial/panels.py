"""Sections that higher apps add to the patient page, without the patients app importing them.

An app registers a panel in its AppConfig.ready(); the patient page renders every registered
panel in `order`. Each panel's `context` is called once per page with (request, patient) and
must use a fixed number of queries whatever the patient's history (pages stay flat).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class Panel:
    key: str
    order: int
    template: str
    context: Callable[[HttpRequest, object], dict | None]  # None: the panel is not shown


_PANELS: dict[str, Panel] = {}


def register_patient_panel(panel: Panel) -> None:
    """Add (or replace, by key) a patient-page panel."""
    _PANELS[panel.key] = panel


def patient_panels(request: HttpRequest, patient: object) -> list[tuple[Panel, dict]]:
    """The panels to show for `patient`, in order, each with its template context."""
    shown = []
    for panel in sorted(_PANELS.values(), key=lambda p: p.order):
        context = panel.context(request, patient)
        if context is not None:
            shown.append((panel, context))
    return shown
