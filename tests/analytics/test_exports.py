"""The export layer (analytics.exports): the registry of form tables, streaming, CSV/JSON,
de-identification by date shift, the data version and the export log.

`study_cohort` builds a small but full cohort: one patient with a record in every exported
table (services for screening to baseline and an edit with a reason, factories for the rest),
and a second, withdrawn and lost, patient with a voided lab panel.
"""

import csv
import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import models

from analytics import dataset
from analytics.exports import deid, version
from analytics.exports.forms import (
    AUDIT_EXCLUDED,
    FORMS,
    FORMS_BY_NAME,
    NOT_EXPORTED,
    csv_stream,
    export_patients,
    export_rows,
    form_get,
    json_stream,
)
from analytics.exports.log import export_log, export_logged
from analytics.exports.streams import analysis_dataset_export, form_export
from analytics.models import ExportLog
from assessments.models import LabPanel
from patients.models import Patient
from surgery.models import Complication, MdtEvidence
from tests.factories.biobank import CustodyEventFactory, SpecimenFactory, at
from tests.factories.followup import (
    DeathFactory,
    FollowUpContactFactory,
    LostToFollowUpFactory,
    RecurrenceFactory,
    TreatmentEndFactory,
)
from tests.factories.imaging import (
    ImagingStudyFactory,
    ResponseEvaluationFactory,
    TargetLesionFactory,
)
from tests.factories.labs import LabPanelFactory, LabResultFactory
from tests.factories.patients import WithdrawalFactory, baselined_patient, enrolled_patient
from tests.factories.surgery import (
    ComplicationFactory,
    DischargeFactory,
    MdtDecisionFactory,
    OperationFactory,
    PathologyFactory,
)
from tests.factories.treatments import (
    AdverseEventFactory,
    ChemoCycleFactory,
    CycleDoseFactory,
    RegimenLineFactory,
)
from tests.factories.trial import UserFactory
from tests.factories.visits import ExpectedVisitFactory, synthetic_cohort
from trial.models import Role
from trial.roles import CLINICAL_FORMS
from trial.services import clinical_save, clinical_void

pytestmark = pytest.mark.django_db

PHI = {
    "full_name": "欧阳明珠",
    "hospital_record_number": "HRN7654321",
    "phone": "13912345678",
    "date_of_birth": date(1958, 3, 14),
}


def full_patient(site, user) -> Patient:
    """A patient with at least one record in every exported table."""
    patient = baselined_patient(site=site, user=user)
    identity = patient.identity
    for name, value in PHI.items():
        setattr(identity, name, value)
    identity.save()
    baseline = patient.baseline
    baseline.ecog = 0
    clinical_save(baseline, user=user, expected_version=baseline.version, reason="ECOG corrected")
    start = patient.enrollment.enrolled_on

    def day(n: int) -> date:
        return start + timedelta(days=n)

    line = RegimenLineFactory(patient=patient, started_on=day(3))
    cycle = ChemoCycleFactory(line=line, given_on=day(3))
    CycleDoseFactory(cycle=cycle)
    AdverseEventFactory(patient=patient, line=line, onset_on=day(10), resolved_on=day(20))
    panel = LabPanelFactory(patient=patient, sampled_on=day(1))
    LabResultFactory(panel=panel, analyte="hemoglobin")
    LabResultFactory(panel=panel, analyte="ca19_9", value=Decimal("530"), entered_unit="U/mL")
    baseline_ct = ImagingStudyFactory(patient=patient, performed_on=day(1))
    TargetLesionFactory(study=baseline_ct, label="T1")
    evaluation = ResponseEvaluationFactory(
        patient=patient,
        evaluated_on=day(60),
        imaging__performed_on=day(58),
        recist_response="PR",
    )
    decision = MdtDecisionFactory(patient=patient, decided_on=day(70), investigator=user)
    MdtEvidence.objects.create(decision=decision, evaluation=evaluation)
    operation = OperationFactory(patient=patient, mdt_decision=decision, operated_on=day(90))
    PathologyFactory(operation=operation, reported_on=day(97))
    ComplicationFactory(
        operation=operation,
        onset_on=day(93),
        kind=Complication.Kind.POPF,
        isgps_grade="B",
        description="Drain output reviewed by Dr 欧阳明珠",
    )
    DischargeFactory(operation=operation, discharged_on=day(100))
    specimen = SpecimenFactory(
        operation=operation,
        patient=patient,
        code=f"{patient.subject_code}-T01",
        collected_at=at(day(90)),
    )
    CustodyEventFactory(specimen=specimen, at=at(day(90), 11))
    FollowUpContactFactory(patient=patient, contacted_on=day(150), notes="Talked to 13912345678")
    TreatmentEndFactory(patient=patient, ended_on=day(120))
    RecurrenceFactory(patient=patient, detected_on=day(200), kind="recurrence")
    DeathFactory(patient=patient, died_on=day(250))
    Patient.objects.filter(pk=patient.pk).update(died_on=day(250), status=Patient.Status.DECEASED)
    ExpectedVisitFactory(patient=patient, target_on=day(30), code="C02")
    return patient


def second_patient(site, user) -> Patient:
    """Enrolled, withdrawn, lost to follow-up, with a voided lab panel."""
    patient = enrolled_patient(site=site, user=user)
    WithdrawalFactory(patient=patient, withdrawn_on=date(2026, 6, 20))
    LostToFollowUpFactory(patient=patient, declared_on=date(2026, 7, 1))
    panel = LabPanelFactory(patient=patient, sampled_on=date(2026, 5, 30))
    LabResultFactory(panel=panel)
    clinical_void(panel, user=user, reason="entered twice")
    return patient


@pytest.fixture
def study_cohort(site_a, investigator):
    return full_patient(site_a, investigator), second_patient(site_a, investigator)


def _patients():
    return Patient.objects.active()


# --- the registry -------------------------------------------------------------------------


def test_every_clinical_model_is_exported_or_excluded_with_a_reason():
    exported = {form.model._meta.label_lower for form in FORMS}
    clinical = {f"{app}.{model}" for app, models_ in CLINICAL_FORMS.items() for model in models_}
    assert clinical <= exported | set(NOT_EXPORTED)
    assert not exported & set(NOT_EXPORTED)
    assert "patients.patientidentity" in NOT_EXPORTED


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_every_text_field_is_a_deliberate_column_or_excluded_with_a_reason(form):
    text_fields = {
        f.name
        for f in form.model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField)
    }
    own_columns = {c.lookup for c in form.columns if c.lookup and "__" not in c.lookup}
    excluded = {**AUDIT_EXCLUDED, **form.excluded} if form.audited else dict(form.excluded)
    assert all(reason.strip() for reason in excluded.values())
    unaccounted = text_fields - own_columns - set(excluded)
    assert not unaccounted, f"{form.name}: {unaccounted} neither exported nor excluded"
    # An excluded field is really left out, and exists (no stale entry).
    assert not set(excluded) & own_columns
    assert set(excluded) <= text_fields
    # Free-text columns are never exported: a TextField never, a CharField only as a code,
    # a catalogue value or a short controlled text.
    for column in form.columns:
        if isinstance(column.model_field, models.TextField):
            pytest.fail(f"{form.name}.{column.name} exports free text")


def test_the_identity_is_unreachable_from_every_form():
    for form in FORMS:
        for column in form.columns:
            if column.lookup:
                assert "identity" not in column.lookup
            if column.model_field is not None:
                assert column.model_field.model._meta.label != "patients.PatientIdentity"


def test_form_get_refuses_an_unknown_table():
    with pytest.raises(KeyError):
        form_get("patient_identity")


# --- rows ---------------------------------------------------------------------------------


def test_rows_of_every_form(study_cohort):
    first, _second = study_cohort
    for form in FORMS:
        rows = list(export_rows(form, patients_qs=_patients()))
        assert rows, f"no rows in {form.name}"
        assert all(list(row) == form.column_names for row in rows)
        if form.name not in ("withdrawal", "losses_to_followup"):  # the second patient's
            assert any(row["subject_code"] == first.subject_code for row in rows)


def test_rows_carry_stored_codes_dates_and_the_panel_of_a_lab_result(study_cohort):
    first, _second = study_cohort
    results = [
        r
        for r in export_rows(FORMS_BY_NAME["lab_results"], patients_qs=_patients())
        if r["subject_code"] == first.subject_code
    ]
    ca19_9 = next(r for r in results if r["analyte"] == "ca19_9")
    panel = LabPanel.objects.get(pk=ca19_9["panel_id"])
    assert ca19_9["sampled_on"] == panel.sampled_on
    assert ca19_9["context"] == "baseline"  # the code, not the label "Baseline"
    assert ca19_9["unit"] == "U/mL"
    assert ca19_9["value"] == Decimal("530")
    assert ca19_9["voided"] is False
    complication = next(export_rows(FORMS_BY_NAME["complications"], patients_qs=_patients()))
    assert complication["kind"] == "popf"
    assert complication["isgps_grade"] == "B"
    assert "description" not in complication


def test_voided_rows_and_rows_of_voided_parents_are_left_out_unless_asked(study_cohort):
    _first, second = study_cohort
    panels = FORMS_BY_NAME["lab_panels"]
    results = FORMS_BY_NAME["lab_results"]
    subject = second.subject_code
    assert not [
        r for r in export_rows(panels, patients_qs=_patients()) if r["subject_code"] == subject
    ]
    # The result itself was not voided, its panel was: it goes with it.
    assert not [
        r for r in export_rows(results, patients_qs=_patients()) if r["subject_code"] == subject
    ]
    with_voided = [
        r
        for r in export_rows(results, patients_qs=_patients(), include_voided=True)
        if r["subject_code"] == subject
    ]
    assert [r["voided"] for r in with_voided] == [True]


def test_rows_are_limited_to_the_patients_given(study_cohort, site_b, coordinator_b):
    other = enrolled_patient(site=site_b, user=coordinator_b)
    statistician_a = UserFactory(roles=[Role.STATISTICIAN], sites=[study_cohort[0].site])
    patients = export_patients(user=statistician_a)
    codes = {
        r["subject_code"] for r in export_rows(FORMS_BY_NAME["enrollment"], patients_qs=patients)
    }
    assert codes == {p.subject_code for p in study_cohort}
    assert other.subject_code not in codes


def test_export_rows_is_a_generator_with_a_bounded_number_of_queries(
    site_a, investigator, django_assert_max_num_queries
):
    synthetic_cohort(site=site_a, count=300, today=date(2026, 11, 24), investigator=investigator)
    form = FORMS_BY_NAME["cycles"]
    rows = export_rows(form, patients_qs=_patients())
    assert not isinstance(rows, list | tuple)
    assert iter(rows) is rows  # a generator: nothing is read before iterating
    with django_assert_max_num_queries(3):
        count = sum(1 for _row in rows)
    assert count > 1000  # up to 8 cycles for each of the 300 patients
    with django_assert_max_num_queries(3):
        assert (
            sum(1 for _ in export_rows(FORMS_BY_NAME["lab_results"], patients_qs=_patients())) == 0
        )


# --- rendering ----------------------------------------------------------------------------


def test_csv_has_a_header_iso_dates_and_empty_missing_values(study_cohort):
    form = FORMS_BY_NAME["adverse_events"]
    text = "".join(csv_stream(export_rows(form, patients_qs=_patients()), form.column_names))
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0]) == form.column_names
    row = records[0]
    date.fromisoformat(row["onset_on"])
    assert row["serious"] in ("0", "1")
    assert row["voided"] == "0"
    withdrawal = FORMS_BY_NAME["withdrawal"]
    text = "".join(
        csv_stream(export_rows(withdrawal, patients_qs=_patients()), withdrawal.column_names)
    )
    assert list(csv.DictReader(io.StringIO(text)))[0]["last_medication_on"]
    enrollment = FORMS_BY_NAME["enrollment"]
    text = "".join(
        csv_stream(export_rows(enrollment, patients_qs=_patients()), enrollment.column_names)
    )
    assert {r["diagnosed_on"] for r in csv.DictReader(io.StringIO(text))} == {""}


def test_json_stream_is_one_object_with_rows_count_and_trailer(study_cohort):
    form = FORMS_BY_NAME["specimens"]
    chunks = json_stream(
        export_rows(form, patients_qs=_patients()),
        header={"table": form.name},
        trailer=lambda: {"data_version": "x"},
    )
    document = json.loads("".join(chunks))
    assert document["table"] == "specimens"
    assert document["row_count"] == len(document["rows"]) == 1
    assert document["data_version"] == "x"
    specimen = document["rows"][0]
    assert datetime.fromisoformat(specimen["collected_at"]).utcoffset() is not None
    assert isinstance(specimen["weight_mg"], float)


# --- de-identification --------------------------------------------------------------------


def test_date_offset_is_stable_per_patient_and_never_zero():
    offsets = [deid.date_offset(pk, secret="s") for pk in range(1, 2001)]
    assert offsets == [deid.date_offset(pk, secret="s") for pk in range(1, 2001)]
    assert all(-180 <= o <= 180 and o != 0 for o in offsets)
    assert len(set(offsets)) > 300  # spread over the range
    assert offsets != [deid.date_offset(pk, secret="t") for pk in range(1, 2001)]
    assert deid.shift(date(2026, 1, 31), 1) == date(2026, 2, 1)
    assert deid.shift("2026-01-31", 1) == "2026-01-31"


def _dates_of(rows: list[dict]) -> list:
    return [v for row in rows for v in row.values() if isinstance(v, date | datetime)]


def test_date_shift_moves_every_date_of_a_patient_by_the_same_offset(study_cohort):
    first, _second = study_cohort
    offset = deid.date_offset(first.pk, secret=deid.shift_secret())
    all_plain, all_shifted = [], []
    for form in FORMS:
        plain = [
            r
            for r in export_rows(form, patients_qs=_patients())
            if r["subject_code"] == first.subject_code
        ]
        shifted = [
            r
            for r in export_rows(form, patients_qs=_patients(), date_shift=True)
            if r["subject_code"] == first.subject_code
        ]
        assert len(plain) == len(shifted)
        for before, after in zip(plain, shifted, strict=True):
            for name, value in before.items():
                if isinstance(value, date | datetime):
                    assert after[name] == value + timedelta(days=offset), (form.name, name)
                else:
                    assert after[name] == value
        all_plain += plain
        all_shifted += shifted
    # Every interval between two dates of the patient, across tables, is unchanged.
    plain_dates = [
        d if isinstance(d, date) and not isinstance(d, datetime) else d.date()
        for d in _dates_of(all_plain)
    ]
    shifted_dates = [
        d if isinstance(d, date) and not isinstance(d, datetime) else d.date()
        for d in _dates_of(all_shifted)
    ]
    assert len(plain_dates) > 30
    base_plain, base_shifted = plain_dates[0], shifted_dates[0]
    assert [(d - base_plain).days for d in plain_dates] == [
        (d - base_shifted).days for d in shifted_dates
    ]
    assert base_plain != base_shifted


def test_the_analysis_dataset_keeps_its_durations_when_dates_are_shifted(study_cohort):
    rows = dataset.build(patients=_patients())
    shifted = list(deid.analysis_rows_deidentified(rows, date_shift=True))
    assert len(rows) == len(shifted) == 2
    for before, after in zip(rows, shifted, strict=True):
        for name in (
            "os_days",
            "os_event",
            "rfs_days",
            "rfs_event",
            "surgery_days",
            "length_of_stay_days",
            "os_months",
            "cycles_before_surgery",
        ):
            assert after[name] == before[name], name
        dates_before = [(n, v) for n, v in before.items() if isinstance(v, date)]
        dates_after = [(n, after[n]) for n, _v in dates_before]
        assert dates_before
        assert all(a != b for (_, a), (_, b) in zip(dates_before, dates_after, strict=True))
        intervals_before = [(v - dates_before[0][1]).days for _, v in dates_before]
        intervals_after = [(v - dates_after[0][1]).days for _, v in dates_after]
        assert intervals_before == intervals_after
    died = next(r for r in shifted if r["death_on"])
    assert died["os_days"] == (died["death_on"] - died["origin_on"]).days
    assert list(deid.analysis_rows_deidentified(rows, date_shift=False)) == rows


# --- data version -------------------------------------------------------------------------


def test_the_data_version_is_the_same_in_any_order_format_or_shift_and_follows_changes(
    study_cohort, investigator
):
    first, _second = study_cohort
    form = FORMS_BY_NAME["lab_results"]
    stated = version.data_version(patients_qs=_patients(), forms=[form])
    assert stated["tables"] == ["lab_results"]
    assert stated["rows"] == 2
    streamed = version.ContentHash()
    list(
        export_rows(
            form, patients_qs=_patients(), date_shift=True, hasher=streamed, by_patient_id=True
        )
    )
    assert streamed.hexdigest(["lab_results"]) == stated["hash"]
    assert stated["as_of"] is not None

    everything = version.data_version(patients_qs=_patients())
    assert everything["tables"] == [f.name for f in FORMS]
    assert everything["hash"] == version.data_version(patients_qs=_patients())["hash"]

    result = first.lab_panels.get().results.get(analyte="hemoglobin")
    result.value = Decimal("131")
    clinical_save(result, user=investigator, expected_version=result.version, reason="typo")
    changed = version.data_version(patients_qs=_patients(), forms=[form])
    assert changed["hash"] != stated["hash"]
    assert changed["as_of"] >= stated["as_of"]


# --- logged exports -----------------------------------------------------------------------


def test_a_form_export_is_logged_with_its_row_count_and_hashes(study_cohort, statistician):
    import hashlib

    patients = export_patients(user=statistician)
    export = form_export(user=statistician, form_name="cycles", patients_qs=patients, format="csv")
    log = ExportLog.objects.get()
    assert (log.what, log.format, log.user, log.completed_at) == (
        "cycles",
        "csv",
        statistician,
        None,
    )
    body = b"".join(export.chunks)
    log.refresh_from_db()
    assert log.row_count == 1
    assert log.completed_at is not None
    assert log.content_sha256 == hashlib.sha256(body).hexdigest()
    assert (
        log.data_version
        == version.data_version(patients_qs=patients, forms=[FORMS_BY_NAME["cycles"]])["hash"]
    )
    assert log.parameters == {"include_voided": False, "date_shift": False}
    assert export.content_type.startswith("text/csv")

    as_json = form_export(
        user=statistician, form_name="cycles", patients_qs=patients, format="json", date_shift=True
    )
    document = json.loads(b"".join(as_json.chunks))
    assert document["data_version"] == log.data_version  # the same data, shifted or not
    with pytest.raises(ValueError, match="Unknown format"):
        form_export(user=statistician, form_name="cycles", patients_qs=patients, format="xlsx")


def test_the_analysis_dataset_export_reads_back_with_the_csv_module(study_cohort, statistician):
    patients = export_patients(user=statistician)
    export = analysis_dataset_export(user=statistician, patients_qs=patients, format="csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.chunks).decode())))
    built = {r["subject_code"]: r for r in dataset.build(patients=patients)}
    assert [list(r) for r in rows][0] == list(dataset.COLUMNS)
    for row in rows:
        expected = built[row["subject_code"]]
        assert row["os_days"] == ("" if expected["os_days"] is None else str(expected["os_days"]))
        assert row["resected"] == ("1" if expected["resected"] else "0")
    log = ExportLog.objects.get(what="analysis-dataset")
    assert log.row_count == 2
    assert log.data_version == export.headers["X-Data-Version"]


def test_the_export_log_is_for_data_managers_of_the_same_sites(
    study_cohort, statistician, data_manager, coordinator_b
):
    mine = export_logged(user=statistician, what="cycles", format="csv", complete=True)
    outsider = UserFactory(roles=[Role.STATISTICIAN], sites=[])
    hidden = export_logged(user=outsider, what="odm", format="xml", complete=True)
    visible = list(export_log(user=data_manager))  # the role grants analytics.view_exportlog
    assert mine in visible
    assert hidden not in visible
    with pytest.raises(PermissionDenied):
        export_log(user=coordinator_b)
