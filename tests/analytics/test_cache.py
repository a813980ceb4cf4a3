"""The analysis dataset cache (analytics.cache): a second read is served from the cache, and
every kind of change to an input of the dataset (a new record, an edit, a voiding, a bulk
insert, a save that bypasses the services, a renamed site) gives the next read the new data.
Each test first reads (and so caches) the dataset, changes one input, then reads again: with
a stale cache the second answer would equal the first."""

import re
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import cache as analytics_cache
from analytics import dataset, selectors
from followup.models import Death, FollowUpContact
from followup.services import death_save, death_void
from patients.models import Enrollment, Patient
from surgery import services as surgery_services
from surgery.models import Complication, Operation
from tests.factories.followup import TODAY, contact_record, death_record, followup_patient
from tests.factories.surgery import operated_patient
from tests.factories.trial import UserFactory
from trial.models import FormStatus, Role

pytestmark = pytest.mark.django_db


def _survival(client, endpoint: str = "os") -> dict:
    response = client.get("/api/v1/analytics/survival/?" + urlencode({"endpoint": endpoint}))
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    return {key: body[key] for key in ("n", "events", "median_days", "timeline")}


@pytest.fixture
def two(site_a, coordinator, investigator):
    """Two followed patients, one of them operated (so RFS has a patient)."""
    patient = followup_patient(site=site_a, user=coordinator)
    operated = operated_patient(site=site_a, investigator=investigator).patient
    contact_record(patient, coordinator, on=date(2026, 6, 1))
    death_record(operated, investigator, on=date(2026, 8, 1))
    return patient, operated


def test_a_second_read_is_served_from_the_cache(client_for, statistician, two, monkeypatch):
    client = client_for(statistician)
    first = _survival(client)
    builds = []
    real = dataset.build
    monkeypatch.setattr(dataset, "build", lambda **kw: builds.append(1) or real(**kw))
    with CaptureQueriesContext(connection) as captured:
        assert _survival(client) == first
    assert builds == []
    assert len(captured) < 12, [q["sql"][:80] for q in captured]


def test_a_new_record_is_seen(client_for, statistician, coordinator, two):
    patient, _operated = two
    client = client_for(statistician)
    before = _survival(client)
    death_record(patient, coordinator, on=date(2026, 7, 1))
    after = _survival(client)
    assert after["events"] == before["events"] + 1


def test_an_edit_is_seen(client_for, statistician, investigator, two):
    _patient, operated = two
    client = client_for(statistician)
    before = _survival(client)
    death = Death.objects.get(patient=operated)
    death.died_on = date(2026, 9, 1)
    death_save(death=death, user=investigator, reason="Date corrected.", today=TODAY)
    after = _survival(client)
    assert after["timeline"] != before["timeline"]


def test_a_voiding_is_seen(client_for, statistician, investigator, two):
    patient, operated = two
    death_record(patient, investigator, on=date(2026, 7, 1))
    client = client_for(statistician)
    before = _survival(client)
    death_void(
        death=Death.objects.get(patient=operated), user=investigator, reason="Wrong patient."
    )
    after = _survival(client)
    assert after["events"] == before["events"] - 1


def test_a_new_last_date_known_alive_is_seen(client_for, statistician, coordinator, two):
    patient, _operated = two
    client = client_for(statistician)
    before = _survival(client)
    contact_record(patient, coordinator, on=date(2026, 10, 1))
    assert _survival(client)["timeline"] != before["timeline"]


def test_a_child_record_of_the_operation_is_seen(investigator, two):
    """A complication has no patient of its own (it hangs off the operation): its creation and
    its edit must both reach the dataset."""
    _patient, operated = two
    assert _row(investigator, operated)["clavien_dindo_max"] is None
    complication = surgery_services.complication_save(
        complication=Complication(
            operation=Operation.objects.get(patient=operated),
            onset_on=date(2026, 4, 24),
            kind=Complication.Kind.SSI,
            clavien_dindo="II",
        ),
        user=investigator,
        today=TODAY,
    )
    assert _row(investigator, operated)["clavien_dindo_max"] == "II"
    complication.clavien_dindo = "IIIa"
    surgery_services.complication_save(
        complication=complication, user=investigator, reason="Regraded.", today=TODAY
    )
    assert _row(investigator, operated)["clavien_dindo_max"] == "IIIa"


def _row(user, patient: Patient) -> dict:
    (row,) = [
        r for r in selectors.analysis_rows(user=user) if r["subject_code"] == patient.subject_code
    ]
    return row


def test_a_bulk_insert_is_seen(client_for, statistician, two):
    """Imports and the synthetic cohorts bulk-create rows: no service, no casebook touch."""
    patient, _operated = two
    client = client_for(statistician)
    before = _survival(client)
    FollowUpContact.objects.bulk_create(
        [
            FollowUpContact(
                patient=patient,
                contacted_on=date(2026, 10, 20),
                mode=FollowUpContact.Mode.PHONE,
                reached=True,
                vital_status=FollowUpContact.VitalStatus.ALIVE,
                recurrence=False,
                status=FormStatus.COMPLETE,
            )
        ]
    )
    assert _survival(client)["timeline"] != before["timeline"]


def test_a_save_outside_the_services_is_seen(client_for, statistician, two):
    """A plain save() (the admin, a data fix) keeps the version but moves updated_at."""
    patient, _operated = two
    client = client_for(statistician)
    before = _survival(client)
    enrollment = Enrollment.objects.get(patient=patient)
    enrollment.enrolled_on = enrollment.enrolled_on - timedelta(days=40)
    enrollment.save()
    assert _survival(client)["timeline"] != before["timeline"]


def test_a_renamed_site_is_seen(investigator, site_a, two):
    patient, _operated = two
    assert _row(investigator, patient)["site"] == site_a.code
    site_a.code = "RENAMED"
    site_a.save()
    assert _row(investigator, patient)["site"] == "RENAMED"


def test_each_origin_and_each_users_sites_have_their_own_entry(investigator, statistician, two):
    patient, _operated = two
    by_enrollment = _row(investigator, patient)
    first_cycle = [
        r
        for r in selectors.analysis_rows(user=investigator, origin="first_cycle")
        if r["subject_code"] == patient.subject_code
    ]
    assert first_cycle[0]["origin"] == "first_cycle" != by_enrollment["origin"]
    # A statistician of no site gets no rows, not the investigator's cached ones.
    nobody = UserFactory(roles=[Role.STATISTICIAN], sites=[])
    assert selectors.analysis_rows(user=nobody) == []
    assert len(selectors.analysis_rows(user=statistician)) == 2


def test_every_table_the_build_reads_is_in_the_stamp(investigator, two):
    """If dataset.build (or last_known_alive_by_patient) starts reading a table, the stamp
    must follow, or an edit of that table would be served stale."""
    with CaptureQueriesContext(connection) as captured:
        dataset.build(patients=Patient.objects.all())
    read = set()
    for query in captured:
        read.update(re.findall(r'(?:FROM|JOIN)\s+"?(\w+)"?', query["sql"]))
    stamped = {model._meta.db_table for model in analytics_cache.INPUT_MODELS}
    assert read - stamped <= {"trial_site"}, read - stamped  # site codes are in the key
    assert {"followup_death", "surgery_complication", "followup_followupcontact"} <= read


def test_the_stamp_is_one_query(two):
    with CaptureQueriesContext(connection) as captured:
        stamp = analytics_cache.data_stamp()
    assert len(captured) == 1
    assert len(stamp) == len(analytics_cache.INPUT_MODELS)
    assert dict((t, n) for t, n, _v, _u in stamp)["followup_death"] == 1
