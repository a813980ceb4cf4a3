"""Model-level factories for the patients app (they bypass the services: for fixtures only).

Use `tests.factories.patients.enrolled_patient` when a test needs a patient that went through
the real services (screened, consented, enrolled).
"""

from datetime import date, timedelta
from decimal import Decimal

import factory

from patients import services
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Screening,
    Withdrawal,
)
from tests.factories.trial import SiteFactory
from trial.models import Cohort, FormStatus

TODAY = date(2026, 6, 1)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    site = factory.SubFactory(SiteFactory)
    subject_code = factory.Sequence(lambda n: f"TEST-{n + 1:04d}")
    sex = "M"
    status = Patient.Status.SCREENING


class PatientIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientIdentity

    patient = factory.SubFactory(PatientFactory)
    site = factory.SelfAttribute("patient.site")
    full_name = factory.Faker("name", locale="zh_CN")
    hospital_record_number = factory.Sequence(lambda n: f"HRN{n + 1:07d}")
    date_of_birth = date(1960, 5, 17)
    phone = factory.Faker("phone_number", locale="zh_CN")


class ScreeningFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Screening

    patient = factory.SubFactory(PatientFactory)
    screened_on = TODAY - timedelta(days=30)
    age_at_screening = 65
    intended_cohort = Cohort.PROSPECTIVE
    confirmation = Screening.Confirmation.HISTOLOGY
    is_pdac = True
    synchronous_liver_metastases = True
    imaging_on = TODAY - timedelta(days=35)
    prior_systemic_therapy = False
    status = FormStatus.COMPLETE


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    patient = factory.SubFactory(PatientFactory)
    basis = Consent.Basis.SIGNED
    consented_on = TODAY - timedelta(days=29)
    consent_version = "v1.2"
    study_consent = True
    biobank_consent = True
    status = FormStatus.COMPLETE


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    patient = factory.SubFactory(
        PatientFactory, status=Patient.Status.ENROLLED, cohort=Cohort.PROSPECTIVE
    )
    enrolled_on = TODAY - timedelta(days=28)
    cohort = Cohort.PROSPECTIVE
    diagnosed_on = TODAY - timedelta(days=40)
    status = FormStatus.COMPLETE


class BaselineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Baseline

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.ENROLLED)
    assessed_on = TODAY - timedelta(days=27)
    ecog = 1
    height_cm = Decimal("170.0")
    weight_kg = Decimal("65.0")
    bsa_m2 = Decimal("1.75")
    primary_site = Baseline.PrimarySite.HEAD
    primary_size_mm = Decimal("35.0")
    liver_met_count = 3
    liver_met_largest_mm = Decimal("22.0")
    liver_met_distribution = Baseline.Distribution.BILOBAR
    ajcc_t = "T3"
    ajcc_n = "N1"
    ca19_9_u_ml = Decimal("1200.0")
    status = FormStatus.COMPLETE


class WithdrawalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Withdrawal

    patient = factory.SubFactory(PatientFactory, status=Patient.Status.WITHDRAWN)
    withdrawn_on = TODAY - timedelta(days=5)
    kind = Withdrawal.Kind.DROP_OUT
    reason = Withdrawal.Reason.PATIENT_DECISION
    last_medication_on = TODAY - timedelta(days=10)
    status = FormStatus.COMPLETE


def screened_patient(
    *, site, user, today=TODAY, cohort=Cohort.PROSPECTIVE, identity=None, **screening
) -> Patient:
    """A candidate registered and screened through the real service.

    `identity` (a dict) overrides identity fields, e.g. {"date_of_birth": date(2009, 1, 1)}.
    """
    identity = PatientIdentityFactory.build(patient=None, site=None, **(identity or {}))
    fields = {
        "screened_on": today - timedelta(days=10),
        "intended_cohort": cohort,
        "confirmation": Screening.Confirmation.HISTOLOGY,
        "is_pdac": True,
        "synchronous_liver_metastases": True,
        "imaging_on": today - timedelta(days=12),
        "prior_systemic_therapy": False,
        **screening,
    }
    return services.candidate_screen(
        site=site, user=user, sex="F", identity=identity, screening=Screening(**fields), today=today
    )


def enrolled_patient(*, site, user, today=TODAY, cohort=Cohort.PROSPECTIVE) -> Patient:
    """A patient screened, consented and enrolled through the real services."""
    patient = screened_patient(site=site, user=user, today=today, cohort=cohort)
    services.consent_save(
        consent=Consent(
            patient=patient,
            basis=Consent.Basis.SIGNED,
            consented_on=today - timedelta(days=9),
            consent_version="v1.2",
            study_consent=True,
            biobank_consent=True,
        ),
        user=user,
        today=today,
    )
    services.patient_enroll(
        enrollment=Enrollment(
            patient=patient, enrolled_on=today - timedelta(days=8), cohort=cohort
        ),
        user=user,
        today=today,
    )
    patient.refresh_from_db()
    return patient


def baselined_patient(*, site, user, today=TODAY, **baseline) -> Patient:
    """An enrolled patient with a baseline form, all through the real services.

    `baseline` overrides fields of the baseline (e.g. ecog=0, primary_site="body").
    """
    patient = enrolled_patient(site=site, user=user, today=today)
    fields = {
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
        **baseline,
    }
    services.baseline_save(baseline=Baseline(patient=patient, **fields), user=user, today=today)
    patient.refresh_from_db()
    return patient


# Builders of one unsaved, valid row per audited model (collected by tests/trial/test_audit.py).
AUDIT_BUILDERS = {
    "patients.Patient": lambda site: PatientFactory.build(site=site),
    "patients.PatientIdentity": lambda site: PatientIdentityFactory.build(
        patient=PatientFactory(site=site), site=site
    ),
    "patients.Screening": lambda site: ScreeningFactory.build(patient=PatientFactory(site=site)),
    "patients.Consent": lambda site: ConsentFactory.build(patient=PatientFactory(site=site)),
    "patients.Enrollment": lambda site: EnrollmentFactory.build(patient=PatientFactory(site=site)),
    "patients.Baseline": lambda site: BaselineFactory.build(patient=PatientFactory(site=site)),
    "patients.Withdrawal": lambda site: WithdrawalFactory.build(patient=PatientFactory(site=site)),
}
