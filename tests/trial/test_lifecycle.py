"""The form lifecycle services (trial.lifecycle): source-data verification, signatures with
password re-entry, form / casebook / study locks; status changes never move the version."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from patients import services as patient_services
from patients.models import Baseline, Consent
from tests.factories.patients import TODAY, PatientFactory, enrolled_patient, screened_patient
from trial import lifecycle
from trial.lifecycle_selectors import casebook_summary, record_get, record_lifecycle
from trial.models import Casebook, FormStatus, Signature, SourceVerification, Study
from trial.services import StaleRecordError, clinical_save, clinical_void

PASSWORD = "test-password-123"  # tests.factories.trial.UserFactory


def _baseline(patient, user, *, complete=True) -> Baseline:
    values = {
        "assessed_on": patient.enrollment.enrolled_on,
        "ecog": 1,
        "height_cm": Decimal("170"),
        "weight_kg": Decimal("64"),
        "primary_site": "head",
        "primary_size_mm": Decimal("30"),
        "liver_met_count": 2,
        "liver_met_largest_mm": Decimal("15"),
        "liver_met_distribution": "unilobar",
        "ajcc_t": "T3",
        "ajcc_n": "N1",
    }
    return patient_services.baseline_save(
        baseline=Baseline(patient=patient, **values), user=user, today=TODAY, complete=complete
    )


def _edit(baseline: Baseline, user, **changes) -> Baseline:
    fresh = Baseline.objects.get(pk=baseline.pk)
    for name, value in changes.items():
        setattr(fresh, name, value)
    return patient_services.baseline_save(
        baseline=fresh,
        user=user,
        expected_version=fresh.version,
        reason="corrected from the chart",
        today=TODAY,
    )


def _reasons(baseline: Baseline) -> list[tuple[str, str, str]]:
    rows = Baseline.history.filter(id=baseline.pk).order_by("history_date", "history_id")
    return [
        (row.status, row.history_change_reason or "", str(row.history_user or "")) for row in rows
    ]


@pytest.fixture
def patient(site_a, coordinator):
    return enrolled_patient(site=site_a, user=coordinator)


@pytest.fixture
def baseline(patient, coordinator):
    return _baseline(patient, coordinator)


def test_the_full_lifecycle(patient, coordinator, monitor, investigator, data_manager):
    draft = _baseline(patient, coordinator, complete=False)
    assert draft.status == FormStatus.DRAFT
    with pytest.raises(ValidationError, match="draft"):
        lifecycle.form_verify(draft, user=monitor, expected_version=1)
    with pytest.raises(ValidationError, match="draft cannot be signed"):
        lifecycle.form_sign(draft, user=investigator, password=PASSWORD, expected_version=1)
    with pytest.raises(ValidationError, match="draft cannot be locked"):
        lifecycle.form_lock(draft, user=data_manager, reason="end of study")

    complete = patient_services.baseline_save(
        baseline=Baseline.objects.get(pk=draft.pk),
        user=coordinator,
        expected_version=1,
        complete=True,
        today=TODAY,
    )
    assert (complete.status, complete.version) == (FormStatus.COMPLETE, 2)
    casebook_version = Casebook.objects.get(pk=patient.pk).version

    verified = lifecycle.form_verify(complete, user=monitor, expected_version=2)
    assert (verified.status, verified.version) == (FormStatus.VERIFIED, 2)
    signature = lifecycle.form_sign(
        verified, user=investigator, password=PASSWORD, expected_version=2
    )
    assert (signature.version, signature.scope, signature.signed_by) == (2, "record", investigator)
    assert Baseline.objects.get(pk=draft.pk).status == FormStatus.SIGNED

    with pytest.raises(ValidationError) as caught:
        lifecycle.form_lock(verified, user=data_manager, reason="  ")
    assert list(caught.value.message_dict) == ["reason"]
    locked = lifecycle.form_lock(verified, user=data_manager, reason="ready for analysis")
    assert locked.status == FormStatus.LOCKED

    # Locked: edits are refused with a clear message and nothing changes.
    with pytest.raises(ValidationError, match="This form is locked"):
        _edit(draft, coordinator, ecog=2)
    with pytest.raises(ValidationError, match="locked"):
        lifecycle.form_verify(locked, user=monitor, expected_version=2)
    assert Baseline.objects.get(pk=draft.pk).ecog == 1

    with pytest.raises(ValidationError) as caught:
        lifecycle.form_unlock(locked, user=data_manager, reason="")
    assert list(caught.value.message_dict) == ["reason"]
    unlocked = lifecycle.form_unlock(locked, user=data_manager, reason="query on ECOG")
    # The signature still holds, so the form is signed again; the version never moved.
    stored = Baseline.objects.get(pk=draft.pk)
    assert (unlocked.status, stored.status, stored.version) == (FormStatus.SIGNED,) * 2 + (2,)
    assert Casebook.objects.get(pk=patient.pk).version == casebook_version

    history = _reasons(draft)
    assert [status for status, _reason, _user in history] == [
        "draft",
        "complete",
        "verified",
        "signed",
        "locked",
        "signed",
    ]
    assert history[2][1].startswith("Source-data verification (whole form), version 2")
    assert history[2][2] == "mon_a"
    assert history[3][1].startswith("Signed (version 2)")
    assert history[3][2] == "inv_a"
    assert history[4][1:] == ("ready for analysis", "dm")
    assert history[5][1:] == ("query on ECOG", "dm")


def test_unlock_returns_to_verified_or_complete(baseline, monitor, data_manager, coordinator):
    lifecycle.form_verify(baseline, user=monitor, expected_version=1)
    lifecycle.form_lock(baseline, user=data_manager, reason="interim analysis")
    assert lifecycle.form_unlock(baseline, user=data_manager, reason="done").status == "verified"

    _edit(baseline, coordinator, ecog=0)  # the verification no longer holds
    stored = Baseline.objects.get(pk=baseline.pk)
    assert (stored.status, stored.version) == (FormStatus.COMPLETE, 2)
    lifecycle.form_lock(stored, user=data_manager, reason="interim analysis")
    assert lifecycle.form_unlock(stored, user=data_manager, reason="done").status == "complete"


def test_verification_field_by_field(baseline, monitor):
    fields = [f.name for f in record_lifecycle(_scoped(baseline, monitor)).fields]
    assert "ecog" in fields
    assert not {"status", "version", "patient"} & set(fields)
    with pytest.raises(ValidationError) as caught:
        lifecycle.form_verify(baseline, user=monitor, expected_version=1, fields=["nonsense"])
    assert "Not a field of this form: nonsense" in caught.value.message_dict["fields"][0]

    lifecycle.form_verify(baseline, user=monitor, expected_version=1, fields=fields[:-1])
    assert Baseline.objects.get(pk=baseline.pk).status == FormStatus.COMPLETE
    # Verifying a field twice records nothing new.
    lifecycle.form_verify(baseline, user=monitor, expected_version=1, fields=fields[:1])
    assert SourceVerification.objects.count() == len(fields) - 1
    lifecycle.form_verify(baseline, user=monitor, expected_version=1, fields=fields[-1:])
    stored = Baseline.objects.get(pk=baseline.pk)
    assert (stored.status, stored.version) == (FormStatus.VERIFIED, 1)
    state = record_lifecycle(_scoped(baseline, monitor))
    assert state.every_field_verified
    assert not state.whole_form_verified


def test_a_stale_verification_or_signature_is_refused(baseline, coordinator, monitor, investigator):
    _edit(baseline, coordinator, ecog=2)
    with pytest.raises(StaleRecordError):
        lifecycle.form_verify(baseline, user=monitor, expected_version=1)
    with pytest.raises(StaleRecordError):
        lifecycle.form_sign(baseline, user=investigator, password=PASSWORD, expected_version=1)
    assert not SourceVerification.objects.exists()
    assert not Signature.objects.exists()


def _scoped(record, user):
    return record_get(model=type(record), pk=record.pk, user=user)


def test_editing_a_signed_form_returns_it_to_complete(baseline, coordinator, investigator):
    lifecycle.form_sign(baseline, user=investigator, password=PASSWORD, expected_version=1)
    assert record_lifecycle(_scoped(baseline, investigator)).signature_holds

    edited = _edit(baseline, coordinator, weight_kg=Decimal("61.5"))
    assert (edited.status, edited.version) == (FormStatus.COMPLETE, 2)
    state = record_lifecycle(_scoped(baseline, investigator))
    [signature] = state.signatures
    assert (signature.signature.version, signature.holds) == (1, False)
    assert not state.signature_holds


def test_the_casebook_signature_breaks_when_any_record_changes(
    patient, baseline, coordinator, investigator
):
    signature = lifecycle.casebook_sign(patient, user=investigator, password=PASSWORD)
    casebook = Casebook.objects.get(pk=patient.pk)
    assert (signature.scope, signature.version) == ("casebook", casebook.version)
    assert casebook_summary(patient=patient)["signature"]["holds"]

    # Another record of the patient (the consent), not the baseline, changes.
    consent = Consent.objects.get(patient=patient)
    consent.consent_version = "v1.3"
    clinical_save(consent, user=coordinator, expected_version=consent.version, reason="typo")
    summary = casebook_summary(patient=patient)
    assert not summary["signature"]["holds"]
    assert summary["signature"]["version"] == casebook.version
    assert summary["signature"]["signed_by"] == "inv_a"


def test_signing_a_casebook_creates_the_casebook_row(site_a, investigator):
    patient = PatientFactory(site=site_a)  # a factory row: no write went through the services
    assert not Casebook.objects.filter(pk=patient.pk).exists()
    signature = lifecycle.casebook_sign(patient, user=investigator, password=PASSWORD)
    assert signature.version == Casebook.objects.get(pk=patient.pk).version == 0


def test_a_wrong_password_signs_nothing(patient, baseline, investigator):
    before = _reasons(baseline)
    with pytest.raises(ValidationError) as caught:
        lifecycle.form_sign(baseline, user=investigator, password="wrong", expected_version=1)
    assert list(caught.value.message_dict) == ["password"]
    with pytest.raises(ValidationError) as caught:
        lifecycle.casebook_sign(patient, user=investigator, password="")
    assert list(caught.value.message_dict) == ["password"]
    assert not Signature.objects.exists()
    assert Baseline.objects.get(pk=baseline.pk).status == FormStatus.COMPLETE
    assert _reasons(baseline) == before


def test_roles_that_cannot_act_are_refused(patient, baseline, coordinator, monitor):
    with pytest.raises(PermissionDenied):
        lifecycle.form_sign(baseline, user=coordinator, password=PASSWORD, expected_version=1)
    with pytest.raises(PermissionDenied):
        lifecycle.casebook_sign(patient, user=coordinator, password=PASSWORD)
    with pytest.raises(PermissionDenied):
        lifecycle.form_verify(baseline, user=coordinator, expected_version=1)
    with pytest.raises(PermissionDenied):
        lifecycle.form_lock(baseline, user=monitor, reason="no")
    with pytest.raises(PermissionDenied):
        lifecycle.casebook_lock(patient, user=monitor, reason="no")
    assert not Signature.objects.exists()
    assert Baseline.objects.get(pk=baseline.pk).status == FormStatus.COMPLETE


def test_a_casebook_lock_refuses_edits_and_voids(
    patient, baseline, coordinator, monitor, investigator, data_manager
):
    lifecycle.casebook_lock(patient, user=data_manager, reason="patient finished the study")
    with pytest.raises(ValidationError, match="already locked"):
        lifecycle.casebook_lock(patient, user=data_manager, reason="again")
    consent = Consent.objects.get(patient=patient)
    with pytest.raises(ValidationError, match="casebook is locked"):
        _edit(baseline, coordinator, ecog=3)
    with pytest.raises(ValidationError, match="casebook is locked"):
        clinical_void(consent, user=coordinator, reason="wrong patient")
    with pytest.raises(ValidationError, match="casebook is locked"):
        lifecycle.form_verify(baseline, user=monitor, expected_version=1)
    with pytest.raises(ValidationError, match="casebook is locked"):
        lifecycle.casebook_sign(patient, user=investigator, password=PASSWORD)
    assert Baseline.objects.get(pk=baseline.pk).ecog == 1
    assert Consent.objects.get(pk=consent.pk).voided_at is None

    casebook = lifecycle.casebook_unlock(patient, user=data_manager, reason="late lab result")
    assert casebook.locked_at is None
    assert _edit(baseline, coordinator, ecog=3).ecog == 3
    reasons = list(
        Casebook.history.filter(patient_id=patient.pk)
        .order_by("history_date", "history_id")
        .values_list("history_change_reason", "locked_by__username")
    )
    assert reasons[-2:] == [("patient finished the study", "dm"), ("late lab result", None)]


def test_a_study_lock_refuses_every_write(
    site_a, patient, baseline, coordinator, monitor, investigator, data_manager
):
    study = Study.objects.get(sites=site_a)
    lifecycle.study_lock(study, user=data_manager, reason="database lock for the final analysis")
    consent = Consent.objects.get(patient=patient)
    with pytest.raises(ValidationError, match="study database is locked"):
        _edit(baseline, coordinator, ecog=3)
    with pytest.raises(ValidationError, match="study database is locked"):
        clinical_void(consent, user=coordinator, reason="wrong patient")
    with pytest.raises(ValidationError, match="study database is locked"):
        screened_patient(site=site_a, user=coordinator, today=TODAY - timedelta(days=1))
    with pytest.raises(ValidationError, match="study database is locked"):
        lifecycle.form_verify(baseline, user=monitor, expected_version=1)
    with pytest.raises(ValidationError, match="study database is locked"):
        lifecycle.form_sign(baseline, user=investigator, password=PASSWORD, expected_version=1)
    with pytest.raises(ValidationError, match="study database is locked"):
        lifecycle.casebook_sign(patient, user=investigator, password=PASSWORD)
    assert Baseline.objects.get(pk=baseline.pk).ecog == 1
    assert not Signature.objects.exists()

    with pytest.raises(ValidationError) as caught:
        lifecycle.study_unlock(study, user=data_manager, reason=" ")
    assert list(caught.value.message_dict) == ["reason"]
    lifecycle.study_unlock(study, user=data_manager, reason="reopened for a correction")
    assert _edit(baseline, coordinator, ecog=3).ecog == 3
    with pytest.raises(ValidationError, match="not locked"):
        lifecycle.study_unlock(study, user=data_manager, reason="again")
    rows = Study.history.filter(id=study.pk).order_by("history_date", "history_id")
    assert [(r.history_change_reason, str(r.history_user)) for r in rows][-2:] == [
        ("database lock for the final analysis", "dm"),
        ("reopened for a correction", "dm"),
    ]


def test_voided_records_have_no_lifecycle(patient, coordinator, monitor, data_manager):
    consent = Consent.objects.get(patient=patient)
    clinical_void(consent, user=coordinator, reason="entered twice")
    with pytest.raises(ValidationError, match="voided"):
        lifecycle.form_verify(consent, user=monitor, expected_version=None)
    with pytest.raises(ValidationError, match="voided"):
        lifecycle.form_lock(consent, user=data_manager, reason="x")
