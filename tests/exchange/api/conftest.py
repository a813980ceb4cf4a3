"""Fixtures of the record API tests: a fresh throttle, a patient on chemotherapy at site A."""

from datetime import date

import pytest
from django.core.cache import cache

from tests.exchange.api.helpers import ENTRY_DAY, bodies
from tests.factories.patients import baselined_patient
from tests.factories.treatments import cycle_given, line_started
from treatments.models import Regimen


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def on_chemotherapy(site_a, coordinator):
    """Enrolled 24 May 2026 (baseline BSA 1.74 m²), mFOLFIRINOX from 25 May, C1 and C2 given
    on 25 May and 8 June through the services."""
    patient = baselined_patient(site=site_a, user=coordinator, today=date(2026, 6, 1))
    line = line_started(
        patient,
        user=coordinator,
        started_on=date(2026, 5, 25),
        regimen=Regimen.MFOLFIRINOX,
        today=ENTRY_DAY,
    )
    cycle_given(line, user=coordinator, given_on=date(2026, 5, 25), today=ENTRY_DAY)
    cycle_given(line, user=coordinator, given_on=date(2026, 6, 8), today=ENTRY_DAY)
    return patient, line


@pytest.fixture
def world(on_chemotherapy):
    """The patient, their line and a valid create body per form."""
    patient, line = on_chemotherapy
    return patient, line, bodies(patient, line)
