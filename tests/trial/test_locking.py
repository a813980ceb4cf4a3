"""Optimistic locking and voiding (trial.services): a stale edit is refused with a conflict
message and the user's input kept, never silently merged; a voided record stays and is frozen."""

import contextlib
import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import Client
from django.utils import timezone

from patients import services
from patients.models import Baseline, Consent
from tests.factories.forms import baseline_post, post_from_form
from tests.factories.patients import TODAY, ConsentFactory, enrolled_patient
from tests.factories.trial import UserFactory
from trial.models import FormStatus, Role
from trial.services import StaleRecordError, clinical_save, clinical_void


def _version_in(content: bytes) -> int:
    match = re.search(rb'name="version" value="(\d+)"', content)
    assert match, "the form carries no version"
    return int(match.group(1))


def _baseline_for(patient, user, *, on, **fields) -> Baseline:
    data = baseline_post(on=on)
    values = {
        "assessed_on": on,
        "ecog": 1,
        "height_cm": Decimal(data["height_cm"]),
        "weight_kg": Decimal(data["weight_kg"]),
        "primary_site": "head",
        "primary_size_mm": Decimal("32.0"),
        "liver_met_count": 3,
        "liver_met_largest_mm": Decimal("21.0"),
        "liver_met_distribution": "bilobar",
        "ajcc_t": "T3",
        "ajcc_n": "N1",
        "ca19_9_u_ml": Decimal(data["ca19_9_u_ml"]),
        **fields,
    }
    return services.baseline_save(
        baseline=Baseline(patient=patient, **values), user=user, today=on + timedelta(days=1)
    )


@pytest.fixture
def second_coordinator(site_a):
    return UserFactory(roles=[Role.COORDINATOR], sites=[site_a], username="coord_a2")


# --- through the pages --------------------------------------------------------------------


def test_two_coordinators_edit_the_same_baseline(site_a, coordinator, second_coordinator):
    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)
    assessed_on = patient.enrollment.enrolled_on
    baseline = _baseline_for(patient, coordinator, on=assessed_on)
    url = f"/patients/{patient.pk}/baseline/"

    first, second = Client(), Client()
    first.force_login(coordinator)
    second.force_login(second_coordinator)
    assert _version_in(first.get(url).content) == 1
    assert _version_in(second.get(url).content) == 1

    # The first coordinator saves.
    response = first.post(
        url,
        baseline_post(on=assessed_on, weight_kg="70.0", version="1", change_reason="re-weighed"),
    )
    assert response.status_code == 302

    # The second coordinator's form is stale: refused, told who changed it, input kept.
    mine = baseline_post(on=assessed_on, weight_kg="58.5", version="1", change_reason="typo")
    response = second.post(url, mine)
    assert response.status_code == 200
    text = response.content.decode()
    assert "This record was changed by coord_a at" in text
    assert "(version 2) after you opened it (version 1)" in text
    assert "Fields that differ: weight (kg)" in text
    form = response.context["form"]
    assert form["weight_kg"].value() == "58.5"
    assert form["change_reason"].value() == "typo"
    assert 'value="58.5"' in text
    baseline.refresh_from_db()
    assert (baseline.version, baseline.weight_kg) == (2, Decimal("70.0"))
    assert baseline.updated_by == coordinator

    # The re-rendered form carries the current version: submitting it again saves deliberately.
    assert _version_in(response.content) == 2
    response = second.post(url, {**mine, "version": "2"})
    assert response.status_code == 302
    baseline.refresh_from_db()
    assert (baseline.version, baseline.weight_kg) == (3, Decimal("58.5"))
    assert baseline.updated_by == second_coordinator
    reasons = list(
        Baseline.history.filter(id=baseline.pk)
        .order_by("history_date")
        .values_list("history_change_reason", flat=True)
    )
    assert reasons[1:] == ["re-weighed", "typo"]


# --- clinical_save ------------------------------------------------------------------------


@pytest.fixture
def baseline(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    return _baseline_for(patient, coordinator, on=TODAY - timedelta(days=7))


def test_clinical_save_refuses_a_stale_version(baseline, coordinator, second_coordinator):
    mine = Baseline.objects.get(pk=baseline.pk)
    theirs = Baseline.objects.get(pk=baseline.pk)
    theirs.ecog = 2
    clinical_save(theirs, user=second_coordinator, expected_version=1, reason="re-examined")

    mine.ca19_9_u_ml = Decimal("12.0")
    with pytest.raises(StaleRecordError) as caught:
        clinical_save(mine, user=coordinator, expected_version=1, reason="lab report")
    conflict = caught.value
    assert (conflict.expected_version, conflict.current_version) == (1, 2)
    assert conflict.changed_by == "coord_a2"
    assert set(conflict.changed_fields) == {"ecog", "ca19_9_u_ml"}
    assert str(conflict).startswith("This record was changed by coord_a2 at ")
    stored = Baseline.objects.get(pk=baseline.pk)
    assert (stored.version, stored.ecog, stored.ca19_9_u_ml) == (2, 2, Decimal("845.0"))
    assert Baseline.history.filter(id=baseline.pk).count() == 2


def test_clinical_save_needs_a_reason_once_complete(baseline, coordinator):
    assert baseline.status == FormStatus.COMPLETE
    baseline.ecog = 0
    with pytest.raises(ValidationError, match="give a reason for the change") as caught:
        clinical_save(baseline, user=coordinator, expected_version=1, reason="   ")
    assert list(caught.value.message_dict) == ["change_reason"]
    assert Baseline.objects.get(pk=baseline.pk).ecog == 1


def test_a_draft_is_edited_without_reason_and_completed_once(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    draft = services.baseline_save(
        baseline=Baseline(
            patient=patient,
            assessed_on=TODAY - timedelta(days=7),
            ecog=1,
            height_cm=Decimal("170"),
            weight_kg=Decimal("64"),
            primary_site="head",
            primary_size_mm=Decimal("30"),
            liver_met_count=2,
            liver_met_largest_mm=Decimal("15"),
            liver_met_distribution="unilobar",
            ajcc_t="T2",
            ajcc_n="N0",
        ),
        user=coordinator,
        complete=False,
        today=TODAY,
    )
    assert draft.status == FormStatus.DRAFT
    draft.ecog = 2
    clinical_save(draft, user=coordinator, expected_version=1, complete=False)
    assert (draft.version, draft.status) == (2, FormStatus.DRAFT)
    clinical_save(draft, user=coordinator, expected_version=2, complete=True)
    assert (draft.version, draft.status) == (3, FormStatus.COMPLETE)
    # complete=False never moves a complete form back to draft.
    draft.ecog = 1
    clinical_save(draft, user=coordinator, expected_version=3, complete=False, reason="typo")
    draft.refresh_from_db()
    assert (draft.version, draft.status, draft.ecog) == (4, FormStatus.COMPLETE, 1)


def test_an_edit_that_changes_nothing_saves_nothing(baseline, coordinator):
    same = Baseline.objects.get(pk=baseline.pk)
    result = clinical_save(same, user=coordinator, expected_version=1)
    assert result.version == 1
    assert Baseline.history.filter(id=baseline.pk).count() == 1


# --- clinical_void ------------------------------------------------------------------------


@pytest.fixture
def consent(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    return Consent.objects.get(patient=patient)


def test_voiding_needs_a_reason(consent, coordinator):
    with pytest.raises(ValidationError, match="Give a reason for voiding this record.") as caught:
        clinical_void(consent, user=coordinator, reason="  ")
    assert list(caught.value.message_dict) == ["void_reason"]
    consent.refresh_from_db()
    assert not consent.is_voided


def test_voiding_keeps_the_row_records_history_and_freezes_it(consent, second_coordinator):
    voided = clinical_void(
        consent, user=second_coordinator, reason="entered on the wrong patient", expected_version=1
    )
    row = Consent.objects.get(pk=consent.pk)
    assert row.is_voided
    assert row.voided_by == second_coordinator
    assert row.void_reason == "entered on the wrong patient"
    assert row.version == voided.version == 2
    assert not Consent.objects.active().filter(pk=consent.pk).exists()
    last = Consent.history.filter(id=consent.pk).latest("history_date")
    assert last.history_user == second_coordinator
    assert last.history_change_reason == "entered on the wrong patient"
    assert last.voided_at is not None
    assert Consent.history.filter(id=consent.pk).count() == 2

    row.consent_version = "v9"
    with pytest.raises(ValidationError, match="voided and can no longer be edited"):
        clinical_save(row, user=second_coordinator, expected_version=2, reason="fix")
    with pytest.raises(ValidationError, match="already voided"):
        clinical_void(row, user=second_coordinator, reason="again")
    assert Consent.objects.get(pk=consent.pk).consent_version == "v1.2"


def test_voiding_a_stale_version_is_refused(consent, coordinator):
    consent.consent_version = "v1.3"
    clinical_save(consent, user=coordinator, expected_version=1, reason="version typo")
    with pytest.raises(StaleRecordError):
        clinical_void(consent, user=coordinator, reason="duplicate", expected_version=1)
    assert not Consent.objects.get(pk=consent.pk).is_voided


# --- a real race on PostgreSQL ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_of_the_same_version_let_exactly_one_win(coordinator, second_coordinator):
    record = ConsentFactory(patient__site=coordinator.site_memberships.get().site)
    assert record.version == 1
    copies = {
        coordinator: Consent.objects.get(pk=record.pk),
        second_coordinator: Consent.objects.get(pk=record.pk),
    }
    start = threading.Barrier(2, timeout=10)
    # Both writers pause inside the transaction after their version check. With the row lock
    # the second writer is still waiting for the lock, so the pause times out; without it,
    # both would pass the check and both would save.
    inside = threading.Barrier(2, timeout=0.5)
    outcomes: dict[str, object] = {}

    def attempt(user, instance):
        def pause_then_clean(*args, **kwargs):
            with contextlib.suppress(threading.BrokenBarrierError):
                inside.wait()
            return type(instance).full_clean(instance, *args, **kwargs)

        instance.full_clean = pause_then_clean
        instance.consent_version = f"v-{user.username}"
        try:
            start.wait()
            clinical_save(instance, user=user, expected_version=1, reason="race")
            outcomes[user.username] = "saved"
        except StaleRecordError as conflict:
            outcomes[user.username] = conflict
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcomes[user.username] = error
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=attempt, args=(user, instance)) for user, instance in copies.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    winners = [name for name, outcome in outcomes.items() if outcome == "saved"]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, StaleRecordError)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    assert losers[0].current_version == 2
    stored = Consent.objects.get(pk=record.pk)
    assert stored.version == 2
    assert stored.consent_version == f"v-{winners[0]}"
    assert Consent.history.filter(id=record.pk, version=2).count() == 1


def test_a_conflict_on_the_second_form_of_a_page_can_be_resolved(
    site_a, coordinator, second_coordinator
):
    """The screening page holds two records (screening and identity), each with its version.
    When only the identity changed meanwhile, the conflict must refresh the identity's version,
    so that saving again works."""
    today = timezone.localdate()
    patient = enrolled_patient(site=site_a, user=coordinator, today=today)
    url = f"/patients/{patient.pk}/screening/"
    first, second = Client(), Client()
    first.force_login(coordinator)
    second.force_login(second_coordinator)
    page_1 = first.get(url).context["forms"]
    page_2 = second.get(url).context["forms"]

    def page_data(forms, **identity):
        data = post_from_form(forms[0], change_reason="checked")
        data.update(post_from_form(forms[1], button=None, **identity))
        return data

    response = first.post(url, page_data(page_1, phone="13700000000"))
    assert response.status_code == 302
    patient.identity.refresh_from_db()
    assert patient.identity.version == 2

    mine = page_data(page_2, phone="13811112222")
    response = second.post(url, mine)
    assert response.status_code == 200
    text = response.content.decode()
    assert "This record was changed by coord_a" in text
    assert "Fields that differ: phone." in text
    assert 'name="id-version" value="2"' in text  # the identity's current version
    assert 'name="version" value="1"' in text  # the screening did not change
    assert 'value="13811112222"' in text

    response = second.post(url, {**mine, "id-version": "2"})
    assert response.status_code == 302
    patient.identity.refresh_from_db()
    assert (patient.identity.version, patient.identity.phone) == (3, "13811112222")
