"""The lab overview, the panel form and the patient page's "Latest labs" card run a fixed
number of queries, whether the patient has 2 or 20 panels."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assessments.models import LabPanel
from assessments.panels_labs import latest_labs_context
from patients.selectors import patient_get
from tests.factories.labs import record_panel
from tests.factories.patients import baselined_patient

# Measured: 10 queries for the overview (session, user, two permission reads, site ids, the
# patient, its consents, the panels, their results, the user's groups) and 10 for the edit form
# (the panel and its results instead of the panels), for 2 and for 20 panels. One of slack.
LIST_MAX_QUERIES = 11
FORM_MAX_QUERIES = 11
CARD_QUERIES = 2  # the "Latest labs" card: the last panel and its results


@pytest.fixture
def today():
    return timezone.localdate()


def _patient_with_panels(site, user, today, count: int):
    patient = baselined_patient(site=site, user=user, today=today)
    start = patient.screening.screened_on - timedelta(days=40)
    for index in range(count):
        record_panel(
            patient,
            user,
            start + timedelta(days=index),
            context=LabPanel.Context.OTHER,
            today=today,
            alt=30 + index,
            anc="1.2",
            ca19_9=100 + index,
        )
    return patient


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("count", [2, 20])
def test_the_lab_pages_have_a_fixed_query_count(
    client_for,
    coordinator,
    site_a,
    today,
    count,
    django_assert_max_num_queries,
    django_assert_num_queries,
):
    patient = _patient_with_panels(site_a, coordinator, today, count)
    panel = LabPanel.objects.filter(patient=patient).latest("sampled_on")
    client = client_for(coordinator)
    client.get(f"/patients/{patient.pk}/")  # warm the session
    with django_assert_max_num_queries(LIST_MAX_QUERIES):
        response = client.get(f"/patients/{patient.pk}/labs/")
    assert len(response.context["grid"].panels) == count
    with django_assert_max_num_queries(FORM_MAX_QUERIES):
        client.get(f"/patients/{patient.pk}/labs/{panel.pk}/")
    # The patient page holds other apps' panels too: the card's own queries are counted here,
    # the whole page's flatness below.
    request = response.wsgi_request
    patient = patient_get(patient_id=patient.pk, user=request.user)  # as the patient page has it
    with django_assert_num_queries(CARD_QUERIES):
        context = latest_labs_context(request, patient)
    assert context["panel"] == panel


def test_the_query_counts_do_not_grow_with_the_number_of_panels(
    client_for, coordinator, site_a, today
):
    client = client_for(coordinator)
    small = _patient_with_panels(site_a, coordinator, today, 2)
    large = _patient_with_panels(site_a, coordinator, today, 20)
    pages = ("/patients/{}/labs/", "/patients/{}/", "/patients/{}/labs/new/")
    client.get(f"/patients/{small.pk}/")
    counts = {
        page: (_queries(client, page.format(small.pk)), _queries(client, page.format(large.pk)))
        for page in pages
    }
    edits = [
        f"/patients/{p.pk}/labs/{LabPanel.objects.filter(patient=p).latest('id').pk}/"
        for p in (small, large)
    ]
    counts["edit"] = (_queries(client, edits[0]), _queries(client, edits[1]))
    print(counts)
    assert all(a == b for a, b in counts.values()), counts
