"""The patients services refuse bad input with a message on the field to fix, and save nothing
then; the rules that pass compute what they should (age, BSA, status, subject codes)."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from patients import services
from patients.forms import BaselineForm
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Screening,
    Withdrawal,
)
from tests.factories.forms import baseline_post
from tests.factories.patients import (
    TODAY,
    BaselineFactory,
    PatientIdentityFactory,
    enrolled_patient,
    screened_patient,
)
from tests.factories.trial import SiteFactory
from trial.models import Cohort, FormStatus
from trial.services import clinical_void

DAY = timedelta(days=1)


def _messages(error: ValidationError, field: str) -> str:
    return " ".join(error.message_dict[field])


def _counts() -> dict[str, int]:
    models = (Patient, PatientIdentity, Screening, Consent, Enrollment, Baseline, Withdrawal)
    return {model.__name__: model.objects.count() for model in models}


def _consent(patient, *, on, basis=Consent.Basis.SIGNED, **fields) -> Consent:
    defaults = (
        {"consent_version": "v1.2", "study_consent": True, "biobank_consent": True}
        if basis == Consent.Basis.SIGNED
        else {"waiver_reference": "IRB-2025-017", "study_consent": False, "biobank_consent": False}
    )
    return Consent(patient=patient, basis=basis, consented_on=on, **{**defaults, **fields})


def _enrollment(patient, *, on, cohort=Cohort.PROSPECTIVE, **fields) -> Enrollment:
    return Enrollment(patient=patient, enrolled_on=on, cohort=cohort, **fields)


def _baseline(patient, *, on, **fields) -> Baseline:
    values = {
        "assessed_on": on,
        "ecog": 1,
        "height_cm": Decimal("170.0"),
        "weight_kg": Decimal("64.0"),
        "primary_site": Baseline.PrimarySite.HEAD,
        "primary_size_mm": Decimal("32.0"),
        "liver_met_count": 3,
        "liver_met_largest_mm": Decimal("21.0"),
        "liver_met_distribution": Baseline.Distribution.BILOBAR,
        "ajcc_t": "T3",
        "ajcc_n": "N1",
        **fields,
    }
    return Baseline(patient=patient, **values)


def _withdrawal(patient, *, on, last_medication_on=None, **fields) -> Withdrawal:
    values = {
        "withdrawn_on": on,
        "kind": Withdrawal.Kind.DROP_OUT,
        "reason": Withdrawal.Reason.PATIENT_DECISION,
        "last_medication_on": last_medication_on,
        **fields,
    }
    return Withdrawal(patient=patient, **values)


def _screen(site, user, *, identity=None, **screening):
    fields = {
        "screened_on": TODAY - 10 * DAY,
        "intended_cohort": Cohort.PROSPECTIVE,
        "confirmation": Screening.Confirmation.HISTOLOGY,
        "is_pdac": True,
        "synchronous_liver_metastases": True,
        "imaging_on": TODAY - 12 * DAY,
        "prior_systemic_therapy": False,
        **screening,
    }
    return services.candidate_screen(
        site=site,
        user=user,
        sex="M",
        identity=PatientIdentityFactory.build(patient=None, site=None, **(identity or {})),
        screening=Screening(**fields),
        today=TODAY,
    )


# --- candidate_screen ---------------------------------------------------------------------


def test_a_candidate_is_registered_with_age_status_and_the_next_code(site_a, coordinator):
    patient = _screen(site_a, coordinator, identity={"date_of_birth": date(1960, 5, 23)})
    assert patient.subject_code == "SITEA-0001"
    assert patient.status == Patient.Status.SCREENING
    # Screened on 22 May 2026, one day before the 66th birthday.
    assert patient.screening.age_at_screening == 65
    assert patient.screening.status == FormStatus.COMPLETE
    assert patient.identity.site == site_a
    assert patient.created_by == coordinator


@pytest.mark.parametrize(
    ("screening", "identity", "field", "message"),
    [
        ({"screened_on": TODAY + DAY}, {}, "screened_on", "is in the future"),
        ({"imaging_on": TODAY + 2 * DAY}, {}, "imaging_on", "is in the future"),
        ({}, {"date_of_birth": TODAY + DAY}, "date_of_birth", "is in the future"),
        (
            {"screened_on": date(1959, 1, 1), "imaging_on": None},
            {"date_of_birth": date(1960, 5, 17)},
            "screened_on",
            "is before the date of birth",
        ),
        (
            {"imaging_on": TODAY - 5 * DAY},
            {},
            "screened_on",
            "is before the staging imaging",
        ),
        (
            {"confirmation": Screening.Confirmation.NONE, "is_pdac": True},
            {},
            "is_pdac",
            "the diagnosis is not PDAC yet",
        ),
    ],
)
def test_bad_screening_input_is_refused_and_nothing_is_saved(
    site_a, coordinator, screening, identity, field, message
):
    before = _counts()
    with pytest.raises(ValidationError, match=message) as caught:
        _screen(site_a, coordinator, identity=identity, **screening)
    assert message in _messages(caught.value, field)
    assert _counts() == before
    site_a.refresh_from_db()
    assert site_a.last_subject_number == 0


def test_a_future_screening_message_gives_the_dates(site_a, coordinator):
    with pytest.raises(ValidationError) as caught:
        _screen(site_a, coordinator, screened_on=date(2026, 6, 3))
    assert _messages(caught.value, "screened_on") == (
        "June 3, 2026 is in the future (today is June 1, 2026)."
    )


def test_a_failure_after_the_code_was_taken_rolls_the_code_back(site_a, coordinator):
    """The duplicate record number is found after the subject number was incremented."""
    _screen(site_a, coordinator, identity={"hospital_record_number": "MRN-42"})
    before = _counts()
    with pytest.raises(ValidationError, match="already registered at this site as SITEA-0001"):
        _screen(site_a, coordinator, identity={"hospital_record_number": "MRN-42"})
    assert _counts() == before
    site_a.refresh_from_db()
    assert site_a.last_subject_number == 1
    assert _screen(site_a, coordinator).subject_code == "SITEA-0002"


def test_an_invalid_sex_is_refused_without_a_half_saved_patient(site_a, coordinator):
    with pytest.raises(ValidationError) as caught:
        services.candidate_screen(
            site=site_a,
            user=coordinator,
            sex="X",
            identity=PatientIdentityFactory.build(patient=None, site=None),
            screening=Screening(
                screened_on=TODAY,
                intended_cohort=Cohort.PROSPECTIVE,
                confirmation=Screening.Confirmation.HISTOLOGY,
                is_pdac=True,
                synchronous_liver_metastases=True,
                prior_systemic_therapy=False,
            ),
            today=TODAY,
        )
    assert "is not a valid choice" in _messages(caught.value, "sex")
    assert Patient.objects.count() == 0
    site_a.refresh_from_db()
    assert site_a.last_subject_number == 0


def test_duplicate_record_number_is_refused_within_a_site_but_allowed_at_another(
    site_a, site_b, coordinator, coordinator_b
):
    first = _screen(site_a, coordinator, identity={"hospital_record_number": "0099871"})
    with pytest.raises(ValidationError) as caught:
        _screen(site_a, coordinator, identity={"hospital_record_number": "0099871"})
    assert _messages(caught.value, "hospital_record_number") == (
        f"Record number 0099871 is already registered at this site as {first.subject_code}."
    )
    other = _screen(site_b, coordinator_b, identity={"hospital_record_number": "0099871"})
    assert other.identity.hospital_record_number == "0099871"
    assert other.subject_code == "SITEB-0001"


def test_subject_codes_are_sequential_per_site_and_never_reused(coordinator):
    cjfh = SiteFactory(code="CJFH")  # the site the data migration creates
    other = SiteFactory(code="PUMCH")
    codes = [_screen(cjfh, coordinator).subject_code for _ in range(2)]
    assert codes == ["CJFH-0001", "CJFH-0002"]
    assert _screen(other, coordinator).subject_code == "PUMCH-0001"

    # A voided patient keeps their code; the next patient gets a new one.
    second = Patient.objects.get(subject_code="CJFH-0002")
    clinical_void(second, user=coordinator, reason="registered twice")
    assert _screen(cjfh, coordinator).subject_code == "CJFH-0003"

    # Even when the highest-numbered patient row is gone, the number is not given again.
    third = Patient.objects.get(subject_code="CJFH-0003")
    third.identity.delete()
    third.screening.delete()
    third.delete()
    assert _screen(cjfh, coordinator).subject_code == "CJFH-0004"
    cjfh.refresh_from_db()
    assert cjfh.last_subject_number == 4


@pytest.mark.parametrize(
    ("screening", "status"),
    [
        ({}, Patient.Status.SCREENING),
        ({"synchronous_liver_metastases": False}, Patient.Status.SCREEN_FAILED),
        ({"confirmation": Screening.Confirmation.NONE, "is_pdac": False}, "screen_failed"),
        ({"prior_systemic_therapy": True}, Patient.Status.SCREEN_FAILED),
        (
            {"prior_systemic_therapy": True, "intended_cohort": Cohort.RETROSPECTIVE},
            Patient.Status.SCREENING,
        ),
    ],
)
def test_screening_status_follows_the_checklist(site_a, coordinator, screening, status):
    assert _screen(site_a, coordinator, **screening).status == status


def test_a_minor_is_a_screen_failure_and_cannot_be_enrolled(site_a, coordinator):
    patient = _screen(site_a, coordinator, identity={"date_of_birth": date(2008, 6, 2)})
    assert patient.screening.age_at_screening == 17
    assert patient.status == Patient.Status.SCREEN_FAILED
    services.consent_save(
        consent=_consent(patient, on=TODAY - 9 * DAY), user=coordinator, today=TODAY
    )
    with pytest.raises(ValidationError, match="Age 18 or older at screening") as caught:
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 8 * DAY), user=coordinator, today=TODAY
        )
    assert caught.value.messages == [
        "Not eligible: Age 18 or older at screening — Age at screening is 17 years."
    ]
    assert Enrollment.objects.count() == 0
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREEN_FAILED


def test_screening_edit_refused_when_it_would_make_an_enrolled_patient_ineligible(
    site_a, coordinator
):
    patient = enrolled_patient(site=site_a, user=coordinator)
    screening = patient.screening
    screening.synchronous_liver_metastases = False
    with pytest.raises(ValidationError, match="this edit would make them ineligible"):
        services.screening_update(
            screening=screening,
            identity=patient.identity,
            user=coordinator,
            expected_version=screening.version,
            identity_version=patient.identity.version,
            reason="typo",
            today=TODAY,
        )
    screening.refresh_from_db()
    assert screening.synchronous_liver_metastases is True
    assert screening.version == 1


# --- consent ------------------------------------------------------------------------------


def test_a_future_consent_is_refused(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError) as caught:
        services.consent_save(
            consent=_consent(patient, on=TODAY + DAY), user=coordinator, today=TODAY
        )
    assert "is in the future" in _messages(caught.value, "consented_on")
    assert Consent.objects.count() == 0


def test_the_enrollment_consent_cannot_be_moved_after_the_enrollment(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)  # enrolled on TODAY - 8
    consent = Consent.objects.get(patient=patient)
    consent.consented_on = TODAY - 2 * DAY
    with pytest.raises(ValidationError) as caught:
        services.consent_save(
            consent=consent, user=coordinator, reason="typo", expected_version=1, today=TODAY
        )
    assert _messages(caught.value, "consented_on") == (
        "Consent (May 30, 2026) cannot be dated after the enrollment (May 24, 2026)."
    )
    consent.refresh_from_db()
    assert consent.consented_on == TODAY - 9 * DAY


def test_a_re_consent_after_the_enrollment_is_accepted(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)  # consented TODAY - 9
    services.consent_save(
        consent=_consent(patient, on=TODAY - 2 * DAY), user=coordinator, today=TODAY
    )
    assert Consent.objects.active().filter(patient=patient).count() == 2


def test_a_waiver_is_refused_for_a_prospective_patient(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator, cohort=Cohort.PROSPECTIVE)
    with pytest.raises(ValidationError) as caught:
        services.consent_save(
            consent=_consent(patient, on=TODAY - 9 * DAY, basis=Consent.Basis.WAIVER),
            user=coordinator,
            today=TODAY,
        )
    assert "allowed for retrospective cases only" in _messages(caught.value, "basis")
    assert Consent.objects.count() == 0


def test_a_waiver_lets_a_retrospective_patient_enroll(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator, cohort=Cohort.RETROSPECTIVE)
    services.consent_save(
        consent=_consent(patient, on=TODAY - 9 * DAY, basis=Consent.Basis.WAIVER),
        user=coordinator,
        today=TODAY,
    )
    services.patient_enroll(
        enrollment=_enrollment(patient, on=TODAY - 8 * DAY, cohort=Cohort.RETROSPECTIVE),
        user=coordinator,
        today=TODAY,
    )
    patient.refresh_from_db()
    assert (patient.status, patient.cohort) == (Patient.Status.ENROLLED, Cohort.RETROSPECTIVE)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"basis": Consent.Basis.SIGNED, "consent_version": ""},
            "consent_version",
            "Give the version of the consent form",
        ),
        (
            {"basis": Consent.Basis.WAIVER, "waiver_reference": ""},
            "waiver_reference",
            "Give the ethics committee's reference",
        ),
        (
            {"basis": Consent.Basis.WAIVER, "biobank_consent": True},
            "biobank_consent",
            "A waiver does not cover the biobank",
        ),
    ],
)
def test_consent_row_rules(site_a, coordinator, fields, field, message):
    patient = screened_patient(site=site_a, user=coordinator, cohort=Cohort.RETROSPECTIVE)
    with pytest.raises(ValidationError, match=message) as caught:
        services.consent_save(
            consent=_consent(patient, on=TODAY - 9 * DAY, **fields), user=coordinator, today=TODAY
        )
    assert message in _messages(caught.value, field)
    assert Consent.objects.count() == 0


# --- enrollment ---------------------------------------------------------------------------


def test_enrollment_sets_the_patient_status_and_cohort(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator, cohort=Cohort.PROSPECTIVE)
    assert (patient.status, patient.cohort) == (Patient.Status.ENROLLED, Cohort.PROSPECTIVE)
    assert patient.enrollment.status == FormStatus.COMPLETE
    assert patient.enrollment.created_by == coordinator


@pytest.fixture
def consented(site_a, coordinator):
    """Screened on TODAY - 10, consented on TODAY - 9."""
    patient = screened_patient(site=site_a, user=coordinator)
    services.consent_save(
        consent=_consent(patient, on=TODAY - 9 * DAY), user=coordinator, today=TODAY
    )
    return patient


@pytest.mark.parametrize(
    ("enrollment", "field", "message"),
    [
        ({"on": TODAY + DAY}, "enrolled_on", "June 2, 2026 is in the future"),
        ({"on": TODAY - 11 * DAY}, "enrolled_on", "is before the screening"),
        ({"on": TODAY - 10 * DAY}, "enrolled_on", "is before the consent"),
        ({"on": TODAY - 8 * DAY, "diagnosed_on": TODAY + DAY}, "diagnosed_on", "in the future"),
        (
            {"on": TODAY - 8 * DAY, "diagnosed_on": TODAY - 7 * DAY},
            "diagnosed_on",
            "Enrollment (May 24, 2026) is before the diagnosis (May 25, 2026).",
        ),
    ],
)
def test_enrollment_dates_are_checked(consented, coordinator, enrollment, field, message):
    enrollment = dict(enrollment)
    on = enrollment.pop("on")
    with pytest.raises(ValidationError) as caught:
        services.patient_enroll(
            enrollment=_enrollment(consented, on=on, **enrollment), user=coordinator, today=TODAY
        )
    assert message in _messages(caught.value, field)
    assert Enrollment.objects.count() == 0
    consented.refresh_from_db()
    assert consented.status == Patient.Status.SCREENING


def test_enrollment_before_the_consent_is_refused(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator)  # screened TODAY - 10
    services.consent_save(
        consent=_consent(patient, on=TODAY - 5 * DAY), user=coordinator, today=TODAY
    )
    with pytest.raises(ValidationError) as caught:
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 6 * DAY), user=coordinator, today=TODAY
        )
    assert _messages(caught.value, "enrolled_on") == (
        "Enrollment (May 26, 2026) is before the consent (May 27, 2026)."
    )
    assert Enrollment.objects.count() == 0


def test_enrollment_without_consent_is_refused(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError, match="No signed study consent is recorded"):
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 8 * DAY), user=coordinator, today=TODAY
        )
    assert Enrollment.objects.count() == 0


def test_a_declined_or_voided_consent_does_not_allow_enrollment(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator)
    consent = services.consent_save(
        consent=_consent(patient, on=TODAY - 9 * DAY), user=coordinator, today=TODAY
    )
    clinical_void(consent, user=coordinator, reason="wrong patient's form")
    with pytest.raises(ValidationError, match="No signed study consent is recorded"):
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 8 * DAY), user=coordinator, today=TODAY
        )
    services.consent_save(
        consent=_consent(patient, on=TODAY - 9 * DAY, study_consent=False, biobank_consent=False),
        user=coordinator,
        today=TODAY,
    )
    with pytest.raises(ValidationError, match="No signed study consent is recorded"):
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 8 * DAY), user=coordinator, today=TODAY
        )
    assert Enrollment.objects.count() == 0


def test_an_unscreened_patient_cannot_be_enrolled(site_a, coordinator):
    patient = Patient.objects.create(site=site_a, subject_code="SITEA-0009", sex="F")
    with pytest.raises(ValidationError, match="Screen the patient before enrolling them."):
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY), user=coordinator, today=TODAY
        )


def test_prior_systemic_therapy_excludes_the_prospective_cohort_only(site_a, coordinator):
    patient = screened_patient(
        site=site_a, user=coordinator, cohort=Cohort.RETROSPECTIVE, prior_systemic_therapy=True
    )
    services.consent_save(
        consent=_consent(patient, on=TODAY - 9 * DAY), user=coordinator, today=TODAY
    )
    with pytest.raises(ValidationError) as caught:
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 8 * DAY, cohort=Cohort.PROSPECTIVE),
            user=coordinator,
            today=TODAY,
        )
    assert caught.value.messages == [
        "Not eligible: No prior systemic therapy (prospective cohort) — "
        "Prior systemic therapy excludes the prospective cohort."
    ]
    assert Enrollment.objects.count() == 0

    services.patient_enroll(
        enrollment=_enrollment(patient, on=TODAY - 8 * DAY, cohort=Cohort.RETROSPECTIVE),
        user=coordinator,
        today=TODAY,
    )
    assert Enrollment.objects.get().cohort == Cohort.RETROSPECTIVE


def test_a_second_enrollment_is_refused(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError) as caught:
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 7 * DAY), user=coordinator, today=TODAY
        )
    assert _messages(caught.value, "enrolled_on") == "This patient is already enrolled."
    assert Enrollment.objects.count() == 1
    assert Enrollment.objects.get().enrolled_on == TODAY - 8 * DAY


def test_a_withdrawn_patient_cannot_be_enrolled_again(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    services.withdrawal_save(
        withdrawal=_withdrawal(patient, on=TODAY - DAY, last_medication_on=TODAY - 2 * DAY),
        user=coordinator,
        today=TODAY,
    )
    with pytest.raises(ValidationError, match="has withdrawn and cannot be enrolled"):
        services.patient_enroll(
            enrollment=_enrollment(patient, on=TODAY - 7 * DAY), user=coordinator, today=TODAY
        )


# --- baseline -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "weight", "bsa"),
    [
        ("170.0", "64.0", "1.74"),  # √(10880 / 3600) = 1.7385
        ("160.0", "50.0", "1.49"),  # 1.4907
        ("180.0", "80.0", "2.00"),  # exactly 2
        ("152.5", "45.5", "1.39"),  # 1.3880
    ],
)
def test_bsa_is_computed_by_mosteller(site_a, coordinator, height, weight, bsa):
    patient = enrolled_patient(site=site_a, user=coordinator)
    saved = services.baseline_save(
        baseline=_baseline(
            patient, on=TODAY - 7 * DAY, height_cm=Decimal(height), weight_kg=Decimal(weight)
        ),
        user=coordinator,
        today=TODAY,
    )
    saved.refresh_from_db()
    assert saved.bsa_m2 == Decimal(bsa)


@given(
    height=st.decimals(min_value=100, max_value=230, places=1),
    weight=st.decimals(min_value=25, max_value=250, places=1),
)
def test_bsa_matches_the_mosteller_formula(height, weight):
    reference = (height * weight / 3600).sqrt()
    computed = services.bsa_mosteller(height_cm=height, weight_kg=weight)
    assert computed.as_tuple().exponent == -2
    assert abs(computed - reference) <= Decimal("0.005")


def test_the_bsa_is_recomputed_when_the_weight_changes(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    baseline = services.baseline_save(
        baseline=_baseline(patient, on=TODAY - 7 * DAY), user=coordinator, today=TODAY
    )
    baseline.weight_kg = Decimal("81.0")
    services.baseline_save(
        baseline=baseline, user=coordinator, expected_version=1, reason="scale", today=TODAY
    )
    baseline.refresh_from_db()
    assert baseline.bsa_m2 == Decimal("1.96")  # √(170 × 81 / 3600) = 1.9558


@pytest.mark.parametrize(
    ("offset_days", "ok"),
    [(-28, True), (-29, False), (14, True), (15, False), (0, True)],
)
def test_baseline_window_around_enrollment(site_a, coordinator, offset_days, ok):
    patient = enrolled_patient(site=site_a, user=coordinator, today=TODAY + 20 * DAY)
    enrolled_on = patient.enrollment.enrolled_on  # TODAY + 12
    baseline = _baseline(patient, on=enrolled_on + offset_days * DAY)
    if ok:
        services.baseline_save(baseline=baseline, user=coordinator, today=TODAY + 30 * DAY)
        assert Baseline.objects.count() == 1
        return
    with pytest.raises(ValidationError) as caught:
        services.baseline_save(baseline=baseline, user=coordinator, today=TODAY + 30 * DAY)
    assert "must be within 28 days before and 14 days after the enrollment" in _messages(
        caught.value, "assessed_on"
    )
    assert Baseline.objects.count() == 0


def test_a_future_baseline_is_refused(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError) as caught:
        services.baseline_save(
            baseline=_baseline(patient, on=TODAY + DAY), user=coordinator, today=TODAY
        )
    assert "is in the future" in _messages(caught.value, "assessed_on")
    assert Baseline.objects.count() == 0


def test_baseline_needs_an_enrolled_patient(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError, match="Enroll the patient before recording the baseline"):
        services.baseline_save(
            baseline=_baseline(patient, on=TODAY - DAY), user=coordinator, today=TODAY
        )
    assert Baseline.objects.count() == 0


ECOG_REFUSED = r"less than or equal to 5|not a valid choice|not one of the available choices"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("primary_size_mm", Decimal("0"), "greater than or equal to 1"),
        ("primary_size_mm", Decimal("-12.0"), "greater than or equal to 1"),
        ("liver_met_largest_mm", Decimal("0"), "greater than or equal to 1"),
        ("liver_met_largest_mm", Decimal("-3"), "greater than or equal to 1"),
        ("liver_met_count", 0, "greater than or equal to 1"),
        ("height_cm", Decimal("0"), "greater than or equal to 100"),
        ("weight_kg", Decimal("-60"), "greater than or equal to 25"),
        ("ca19_9_u_ml", Decimal("-1"), "greater than or equal to 0"),
        ("ecog", 6, ECOG_REFUSED),
    ],
)
def test_baseline_model_validators_refuse_impossible_values(field, value, message):
    baseline = BaselineFactory.build(**{field: value})
    with pytest.raises(ValidationError) as caught:
        baseline.full_clean(exclude=["patient"])
    assert list(caught.value.message_dict) == [field]
    assert re.search(message, _messages(caught.value, field))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("primary_size_mm", "0", "greater than or equal to 1"),
        ("primary_size_mm", "-5", "greater than or equal to 1"),
        ("liver_met_largest_mm", "0", "greater than or equal to 1"),
        ("liver_met_count", "0", "greater than or equal to 1"),
        ("ecog", "6", ECOG_REFUSED),
    ],
)
def test_the_baseline_form_refuses_impossible_values(site_a, coordinator, field, value, message):
    patient = enrolled_patient(site=site_a, user=coordinator)
    form = BaselineForm(
        baseline_post(on=TODAY - 7 * DAY, **{field: value}), instance=Baseline(patient=patient)
    )
    assert not form.is_valid()
    assert list(form.errors) == [field]
    assert re.search(message, " ".join(form.errors[field]))


def test_the_baseline_service_refuses_a_negative_size_and_saves_nothing(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError) as caught:
        services.baseline_save(
            baseline=_baseline(patient, on=TODAY - 7 * DAY, primary_size_mm=Decimal("-4")),
            user=coordinator,
            today=TODAY,
        )
    assert "greater than or equal to 1" in _messages(caught.value, "primary_size_mm")
    assert Baseline.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"biliary_stent": True}, "biliary_stent_type", "Say which kind of stent"),
        ({"biliary_stent_type": "metal"}, "biliary_stent_type", "no stent is recorded"),
        (
            {"liver_met_count": 1, "liver_met_distribution": "bilobar"},
            "liver_met_distribution",
            "A single liver metastasis cannot be bilobar.",
        ),
    ],
)
def test_baseline_skip_logic(fields, field, message):
    with pytest.raises(ValidationError) as caught:
        BaselineFactory.build(**fields).full_clean(exclude=["patient"])
    assert message in _messages(caught.value, field)


# --- withdrawal ---------------------------------------------------------------------------


def test_withdrawal_needs_the_last_medication_date(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError) as caught:
        services.withdrawal_save(
            withdrawal=_withdrawal(patient, on=TODAY - DAY), user=coordinator, today=TODAY
        )
    assert _messages(caught.value, "last_medication_on") == (
        "The protocol requires the date of the last medication."
    )
    assert Withdrawal.objects.count() == 0
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED

    # Unless no study treatment was ever given.
    services.withdrawal_save(
        withdrawal=_withdrawal(patient, on=TODAY - DAY, no_medication_given=True),
        user=coordinator,
        today=TODAY,
    )
    patient.refresh_from_db()
    assert patient.status == Patient.Status.WITHDRAWN


@pytest.mark.parametrize(
    ("withdrawal", "field", "message"),
    [
        (
            {"on": TODAY - 9 * DAY, "last_medication_on": TODAY - 10 * DAY},
            "withdrawn_on",
            "Withdrawal (May 23, 2026) is before the enrollment (May 24, 2026).",
        ),
        ({"on": TODAY + DAY, "last_medication_on": TODAY - DAY}, "withdrawn_on", "in the future"),
        (
            {"on": TODAY - 2 * DAY, "last_medication_on": TODAY - DAY},
            "last_medication_on",
            "The last medication cannot be after the withdrawal.",
        ),
        (
            {"on": TODAY - DAY, "last_medication_on": TODAY - 2 * DAY, "no_medication_given": True},
            "last_medication_on",
            "No treatment was given, so there is no last medication date.",
        ),
        (
            {
                "on": TODAY - DAY,
                "last_medication_on": TODAY - 2 * DAY,
                "reason": Withdrawal.Reason.OTHER,
            },
            "reason_detail",
            "Describe the reason.",
        ),
    ],
)
def test_withdrawal_rules(site_a, coordinator, withdrawal, field, message):
    patient = enrolled_patient(site=site_a, user=coordinator)  # enrolled TODAY - 8
    withdrawal = dict(withdrawal)
    on = withdrawal.pop("on")
    with pytest.raises(ValidationError) as caught:
        services.withdrawal_save(
            withdrawal=_withdrawal(patient, on=on, **withdrawal), user=coordinator, today=TODAY
        )
    assert message in _messages(caught.value, field)
    assert Withdrawal.objects.count() == 0
    patient.refresh_from_db()
    assert patient.status == Patient.Status.ENROLLED


def test_a_patient_who_is_not_enrolled_cannot_withdraw(site_a, coordinator):
    patient = screened_patient(site=site_a, user=coordinator)
    with pytest.raises(ValidationError, match="Only an enrolled patient can withdraw"):
        services.withdrawal_save(
            withdrawal=_withdrawal(patient, on=TODAY - DAY, last_medication_on=TODAY - 2 * DAY),
            user=coordinator,
            today=TODAY,
        )
    assert Withdrawal.objects.count() == 0
    patient.refresh_from_db()
    assert patient.status == Patient.Status.SCREENING


def test_withdrawal_sets_the_status_and_is_audited(site_a, coordinator):
    patient = enrolled_patient(site=site_a, user=coordinator)
    services.withdrawal_save(
        withdrawal=_withdrawal(patient, on=TODAY - DAY, last_medication_on=TODAY - 2 * DAY),
        user=coordinator,
        today=TODAY,
    )
    patient.refresh_from_db()
    assert patient.status == Patient.Status.WITHDRAWN
    last = Patient.history.filter(id=patient.pk).latest("history_date")
    assert last.status == Patient.Status.WITHDRAWN
    assert last.history_user == coordinator
    assert last.history_change_reason  # status changes of the patient carry a reason
