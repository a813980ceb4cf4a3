"""Last known alive: the one-patient and the batched reads agree with each other and with the
records written, exclude voided rows, and run a fixed number of queries."""

import random
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from followup import selectors
from followup.models import FollowUpContact
from tests.factories.followup import (
    DeathFactory,
    FollowUpContactFactory,
    LostToFollowUpFactory,
    RecurrenceFactory,
    TreatmentEndFactory,
)
from tests.factories.imaging import ImagingStudyFactory, ResponseEvaluationFactory
from tests.factories.labs import LabPanelFactory
from tests.factories.patients import (
    BaselineFactory,
    ConsentFactory,
    EnrollmentFactory,
    PatientFactory,
    ScreeningFactory,
    WithdrawalFactory,
)
from tests.factories.surgery import (
    ComplicationFactory,
    DischargeFactory,
    MdtDecisionFactory,
    OperationFactory,
    PathologyFactory,
)
from tests.factories.treatments import AdverseEventFactory, ChemoCycleFactory, RegimenLineFactory

START = date(2025, 1, 1)


class _Cohort:
    """Writes random records (some voided) and remembers, per patient, the latest date that
    should count as alive."""

    def __init__(self, rng: random.Random, site) -> None:
        self.rng, self.site = rng, site
        self.expected: dict[int, date] = {}
        self.lines: dict[int, int] = {}

    def day(self) -> date:
        return START + timedelta(days=self.rng.randint(0, 700))

    def _void(self, row, voided: bool):
        if voided:
            row.voided_at = timezone.now()
            row.save()
        return row

    def note(self, patient, on: date | None, counts: bool = True) -> None:
        if counts and on is not None:
            current = self.expected.get(patient.pk)
            self.expected[patient.pk] = on if current is None else max(current, on)

    def patient(self):
        rng = self.rng
        patient = PatientFactory(site=self.site)
        for make in (
            self.once,
            self.cycles,
            self.many,
            self.surgery,
            self.contacts,
            self.not_alive,
        ):
            if rng.random() < 0.7:
                make(patient)
        return patient

    def once(self, patient) -> None:
        for factory, column in (
            (ScreeningFactory, "screened_on"),
            (EnrollmentFactory, "enrolled_on"),
            (BaselineFactory, "assessed_on"),
            (WithdrawalFactory, "withdrawn_on"),
            (TreatmentEndFactory, "ended_on"),
        ):
            if self.rng.random() < 0.5:
                on, voided = self.day(), self.rng.random() < 0.2
                self._void(factory(patient=patient, **{column: on}), voided)
                self.note(patient, on, not voided)

    def cycles(self, patient) -> None:
        for _index in range(self.rng.randint(1, 3)):
            number = self.lines[patient.pk] = self.lines.get(patient.pk, 0) + 1
            on, voided = self.day(), self.rng.random() < 0.2
            line = RegimenLineFactory(patient=patient, line_number=number, started_on=on)
            self._void(ChemoCycleFactory(line=line, given_on=on), voided)
            self.note(patient, on, not voided)

    def many(self, patient) -> None:
        for factory, column in (
            (ConsentFactory, "consented_on"),
            (AdverseEventFactory, "onset_on"),
            (LabPanelFactory, "sampled_on"),
            (ImagingStudyFactory, "performed_on"),
            (MdtDecisionFactory, "decided_on"),
            (RecurrenceFactory, "detected_on"),
        ):
            for _index in range(self.rng.randint(0, 2)):
                on, voided = self.day(), self.rng.random() < 0.2
                self._void(factory(patient=patient, **{column: on}), voided)
                self.note(patient, on, not voided)
        if self.rng.random() < 0.5:
            on, voided = self.day(), self.rng.random() < 0.2
            imaging = ImagingStudyFactory(patient=patient, performed_on=on)
            self.note(patient, on)
            self._void(
                ResponseEvaluationFactory(patient=patient, imaging=imaging, evaluated_on=on), voided
            )

    def surgery(self, patient) -> None:
        on, voided = self.day(), self.rng.random() < 0.25
        operation = OperationFactory(patient=patient, operated_on=on)
        later = [on + timedelta(days=self.rng.randint(1, 60)) for _index in range(4)]
        ComplicationFactory(operation=operation, onset_on=later[0])
        discharge = DischargeFactory(operation=operation, discharged_on=later[1])
        if self.rng.random() < 0.5:
            discharge.readmitted_on = later[2]
            discharge.save()
            self.note(patient, later[2], not voided)
        # The pathology report is not a visit: it never counts.
        PathologyFactory(operation=operation, reported_on=later[3] + timedelta(days=90))
        self._void(operation, voided)
        self.note(patient, on, not voided)
        self.note(patient, max(later[:2]), not voided)

    def contacts(self, patient) -> None:
        for _index in range(self.rng.randint(1, 4)):
            on, voided = self.day(), self.rng.random() < 0.2
            kind = self.rng.choice(["alive", "dead", "failed"])
            fields = {
                "alive": {},
                "dead": {"vital_status": "dead", "ecog": None},
                "failed": {"reached": False, "vital_status": "unknown", "ecog": None},
            }[kind]
            self._void(FollowUpContactFactory(patient=patient, contacted_on=on, **fields), voided)
            self.note(patient, on, kind == "alive" and not voided)

    def not_alive(self, patient) -> None:
        """A death and a loss are not sources: the day of death is not a day known alive."""
        DeathFactory(patient=patient, died_on=START + timedelta(days=800))
        LostToFollowUpFactory(patient=patient, declared_on=START + timedelta(days=790))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_one_patient_and_batched_reads_agree_with_the_records(site_a, seed):
    cohort = _Cohort(random.Random(seed), site_a)
    patients = [cohort.patient() for _index in range(12)]
    batched = selectors.last_known_alive_by_patient(patient_ids=[p.pk for p in patients])
    for patient in patients:
        single = selectors.last_known_alive(patient=patient)
        assert single.on == cohort.expected.get(patient.pk) == batched.get(patient.pk)
        if single.on is not None:
            record = single.record
            source = selectors.SOURCES_BY_KEY[single.key]
            assert getattr(record, source.date_field) == single.on
            assert record.voided_at is None
            assert single.source == str(source.label)
    assert set(batched) == {p for p, on in cohort.expected.items() if on is not None}


def test_the_latest_record_and_its_label(site_a):
    patient = PatientFactory(site=site_a)
    assert selectors.last_known_alive(patient=patient).on is None
    EnrollmentFactory(patient=patient, enrolled_on=date(2026, 1, 5))
    line = RegimenLineFactory(patient=patient, started_on=date(2026, 1, 10))
    cycle = ChemoCycleFactory(line=line, given_on=date(2026, 3, 12))
    FollowUpContactFactory(
        patient=patient,
        contacted_on=date(2026, 4, 1),
        reached=False,
        vital_status="unknown",
        ecog=None,
    )
    known = selectors.last_known_alive(patient=patient)
    assert (known.on, known.source, known.record) == (
        date(2026, 3, 12),
        "chemotherapy cycle",
        cycle,
    )
    contact = FollowUpContactFactory(patient=patient, contacted_on=date(2026, 4, 2))
    known = selectors.last_known_alive(patient=patient)
    assert (known.on, known.source, known.record) == (
        date(2026, 4, 2),
        "follow-up contact",
        contact,
    )
    contact.voided_at = timezone.now()
    contact.save()
    assert selectors.last_known_alive(patient=patient).on == date(2026, 3, 12)
    assert selectors.last_known_alive_by_patient(patient_ids=[patient.pk]) == {
        patient.pk: date(2026, 3, 12)
    }


def test_one_patient_is_one_query(site_a, django_assert_num_queries):
    patient = PatientFactory(site=site_a)
    for day in range(1, 20):
        FollowUpContactFactory(patient=patient, contacted_on=date(2026, 5, day))
    with django_assert_num_queries(1):
        known = selectors.last_known_alive(patient=patient)
    assert known.on == date(2026, 5, 19)
    with django_assert_num_queries(1):
        assert known.record.contacted_on == date(2026, 5, 19)


def _many(site, count: int) -> list[int]:
    ids = []
    for index in range(count):
        patient = PatientFactory(site=site)
        EnrollmentFactory(patient=patient, enrolled_on=date(2026, 1, 1) + timedelta(days=index))
        FollowUpContactFactory(patient=patient, contacted_on=date(2026, 6, 1))
        FollowUpContactFactory(patient=patient, contacted_on=date(2026, 7, 1))
        LabPanelFactory(patient=patient, sampled_on=date(2026, 3, 1))
        ids.append(patient.pk)
    return ids


@pytest.mark.parametrize("count", [5, 50])
def test_the_batched_read_does_not_grow_with_the_patients(
    site_a, count, django_assert_max_num_queries
):
    ids = _many(site_a, count)
    with django_assert_max_num_queries(len(selectors.SOURCES)):
        latest = selectors.last_known_alive_by_patient(patient_ids=ids)
    assert latest == dict.fromkeys(ids, date(2026, 7, 1))


def test_the_batched_query_count_is_the_same_for_5_and_50_patients(site_a):
    counts = []
    for count in (5, 50):
        ids = _many(site_a, count)
        with CaptureQueriesContext(connection) as captured:
            selectors.last_known_alive_by_patient(patient_ids=ids)
        counts.append(len(captured))
    assert counts[0] == counts[1] == len(selectors.SOURCES)
    assert selectors.last_known_alive_by_patient(patient_ids=[]) == {}


def test_the_summary_reads_a_fixed_number_of_queries(site_a, django_assert_max_num_queries):
    patient = PatientFactory(site=site_a, status="enrolled")
    for day in range(1, 25):
        FollowUpContactFactory(patient=patient, contacted_on=date(2026, 5, day))
    for day in (1, 2, 3):
        FollowUpContactFactory(
            patient=patient,
            contacted_on=date(2026, 6, day),
            reached=False,
            vital_status="unknown",
            ecog=None,
        )
    with django_assert_max_num_queries(4):
        summary = selectors.followup_summary(patient=patient)
        assert len(summary.recent_contacts) == selectors.RECENT_CONTACTS
        assert summary.may_declare_lost
        assert summary.known_alive.on == date(2026, 5, 24)
    assert [c.contacted_on for c in summary.failed_attempts] == [
        date(2026, 6, 1),
        date(2026, 6, 2),
        date(2026, 6, 3),
    ]
    assert FollowUpContact.objects.count() == 27
