"""The retrospective-cohort import: all or nothing, ordinary audited patients, PHI apart."""

from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics import dataset
from exchange.models import ImportRun, RetrospectiveAbstract
from exchange.services import audit_reason, import_file
from followup.models import Death, FollowUpContact, Recurrence
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Screening,
)
from surgery.models import Operation
from tests.exchange.files import (
    FULL,
    GOOD_ROWS,
    MINIMAL_DEAD,
    REPORTED_DEATH,
    csv_bytes,
    xlsx_bytes,
)
from treatments.models import ChemoCycle, RegimenLine
from trial.models import Cohort, Site

TODAY = date(2026, 6, 1)
WAIVER = "2024-KY-213"


def run(content: bytes, user, name: str = "cohort.csv", **options):
    options.setdefault("waiver_reference", WAIVER)
    return import_file(content=content, file_name=name, user=user, today=TODAY, **options)


def _by_code(code: str) -> Patient:
    return Patient.objects.get(subject_code=code)


def _first_reason(instance) -> str:
    return instance.history.earliest("history_date", "history_id").history_change_reason


@pytest.fixture
def imported(data_manager, site_a):
    result = run(csv_bytes(GOOD_ROWS), data_manager)
    assert result.ok, result.issues
    return result


def test_a_good_file_creates_ordinary_audited_retrospective_patients(imported, site_a):
    assert imported.created == 3
    assert imported.run.status == ImportRun.Status.IMPORTED
    full = _by_code("SITEA-0101")
    assert full.cohort == Cohort.RETROSPECTIVE
    assert full.status == Patient.Status.ENROLLED
    assert full.site == site_a
    assert full.sex == "F"
    consent = Consent.objects.get(patient=full)
    assert consent.basis == Consent.Basis.WAIVER
    assert consent.waiver_reference == WAIVER
    enrollment = Enrollment.objects.get(patient=full)
    assert (enrollment.enrolled_on, enrollment.diagnosed_on) == (
        date(2023, 2, 1),
        date(2023, 1, 20),
    )
    screening = Screening.objects.get(patient=full)
    assert screening.age_at_screening == 61
    assert screening.confirmation == "cytology"
    baseline = Baseline.objects.get(patient=full)
    assert (baseline.ecog, baseline.liver_met_count, str(baseline.ca19_9_u_ml)) == (1, 2, "1250.5")
    line = RegimenLine.objects.get(patient=full)
    assert (line.regimen, line.started_on, line.line_number) == (
        "mFOLFIRINOX",
        date(2023, 2, 10),
        1,
    )
    assert not ChemoCycle.objects.filter(patient=full).exists()  # never invented
    operation = Operation.objects.get(patient=full)
    assert operation.mdt_document_missing
    assert operation.liver_wedge
    assert operation.liver_lesions_resected == 2
    recurrence = Recurrence.objects.get(patient=full)
    assert recurrence.kind == Recurrence.Kind.RECURRENCE
    assert recurrence.sites == [
        "liver",
        "peritoneum",
    ]
    contact = FollowUpContact.objects.get(patient=full)
    assert contact.contacted_on == date(2024, 6, 1)
    assert contact.vital_status == "alive"

    reason = audit_reason("cohort.csv", 2)
    assert reason == "retrospective import, cohort.csv, row 2"
    records = [
        full,
        full.identity,
        screening,
        consent,
        enrollment,
        baseline,
        line,
        operation,
        recurrence,
        contact,
        full.retrospective_abstract,
    ]
    assert {type(r).__name__: _first_reason(r) for r in records} == {
        type(r).__name__: reason for r in records
    }
    assert all(r.history.earliest().history_user == imported.run.user for r in records)


def test_values_the_crfs_cannot_hold_go_to_the_abstract(imported):
    dead = _by_code("SITEA-0102")
    assert dead.status == Patient.Status.DECEASED
    assert dead.died_on == date(2023, 9, 10)
    assert not Baseline.objects.filter(patient=dead).exists()
    assert not RegimenLine.objects.filter(patient=dead).exists()  # no first-cycle date
    death = Death.objects.get(patient=dead)
    assert (death.cause, death.source) == ("progression", "hospital")
    abstract = dead.retrospective_abstract
    assert (abstract.cycles_count, abstract.best_response, abstract.regimen) == (6, "SD", "AG")
    assert abstract.unknown_columns == ["ecog"]
    assert abstract.ecog is None
    assert abstract.age_years == 67
    assert abstract.date_of_birth_estimated
    assert abstract.identity_placeholder
    assert abstract.source_row == 3
    assert dead.identity.hospital_record_number == "SITEA-0102"
    assert dead.identity.full_name == "Retrospective import"
    assert dead.screening.age_at_screening == 67

    reported = _by_code("SITEA-0103")
    assert not Operation.objects.filter(patient=reported).exists()
    abstract = reported.retrospective_abstract
    assert (abstract.surgery_on, abstract.pancreatic_procedure, abstract.r_status) == (
        date(2023, 4, 2),
        "dps",
        "R1",
    )
    contact = FollowUpContact.objects.get(patient=reported)
    assert contact.vital_status == "dead"  # the call after the death reported it
    assert Death.objects.get(patient=reported).cause == "unknown"
    assert abstract.death_cause == ""  # not collected, unlike "unknown"


def test_imported_patients_are_in_the_analysis_dataset(imported, site_a):
    rows = {r["subject_code"]: r for r in dataset.build(patients=Patient.objects.all())}
    assert set(rows) == {"SITEA-0101", "SITEA-0102", "SITEA-0103"}
    assert rows["SITEA-0102"]["os_days"] == (date(2023, 9, 10) - date(2023, 1, 10)).days
    assert rows["SITEA-0102"]["os_event"] == 1
    assert rows["SITEA-0101"]["os_days"] == (date(2024, 6, 1) - date(2023, 2, 1)).days
    assert rows["SITEA-0101"]["os_event"] == 0
    assert rows["SITEA-0101"]["rfs_event"] == 1
    assert rows["SITEA-0101"]["resected"]
    assert rows["SITEA-0103"]["os_days"] == (date(2023, 11, 20) - date(2022, 11, 5)).days
    assert {r["cohort"] for r in rows.values()} == {"retrospective"}


def test_the_analysis_dataset_falls_back_to_the_abstract_where_the_crfs_are_empty(imported):
    rows = {r["subject_code"]: r for r in dataset.build(patients=Patient.objects.all())}
    minimal = rows["SITEA-0102"]  # regimen, cycle count and best response only abstracted
    assert (minimal["regimen"], minimal["cycles_before_surgery"]) == ("AG", 6)
    assert minimal["best_response"] == "SD"
    assert minimal["ecog"] is None  # "unknown" stays missing
    assert not minimal["resected"]
    reported = rows["SITEA-0103"]  # a partly abstracted operation: in the abstract only
    assert not Operation.objects.filter(patient__subject_code="SITEA-0103").exists()
    assert reported["resected"] is True
    assert reported["surgery_on"] == date(2023, 4, 2)
    assert reported["surgery_days"] == (date(2023, 4, 2) - date(2022, 11, 5)).days
    assert reported["r_status"] == "R1"
    # No recurrence recorded: RFS ends with the death.
    assert (reported["rfs_days"], reported["rfs_event"]) == (
        (date(2023, 11, 20) - date(2023, 4, 2)).days,
        1,
    )
    assert reported["mortality_90d"] is False
    full = rows["SITEA-0101"]  # everything in the CRFs: the CRF values stand
    assert full["resected"]
    assert full["rfs_event"] == 1


def test_subject_numbers_continue_after_the_imported_codes(imported, site_a):
    from patients.services import subject_code_next

    assert subject_code_next(site=Site.objects.get(pk=site_a.pk)) == "SITEA-0104"


def test_phi_goes_only_to_the_identity(imported):
    full = _by_code("SITEA-0101")
    assert (full.identity.full_name, full.identity.hospital_record_number) == ("王芳", "H0012345")
    assert full.identity.date_of_birth == date(1961, 4, 2)
    phi = {"王芳", "H0012345", "1961-04-02", str(date(1961, 4, 2))}
    abstract = RetrospectiveAbstract.objects.values().get(patient=full)
    assert not phi & {str(v) for v in abstract.values()}
    for model in (Screening, Consent, Enrollment, Baseline, FollowUpContact):
        for row in model.objects.filter(patient=full).values():
            assert not phi & {str(v) for v in row.values()}, model
    row = next(
        r
        for r in dataset.build(patients=Patient.objects.all())
        if r["subject_code"] == "SITEA-0101"
    )
    assert not phi & {str(v) for v in row.values()}
    assert PatientIdentity.objects.count() == 3


def test_one_bad_row_imports_nothing_and_the_report_names_row_and_column(data_manager, site_a):
    bad = {
        **MINIMAL_DEAD,
        "death_date": "2022-12-01",
        "sex": "X",
        "last_contact_date": "2023-13-01",
    }
    result = run(csv_bytes([FULL, bad, REPORTED_DEATH]), data_manager)
    assert not result.ok
    assert Patient.objects.count() == 0
    assert Consent.history.count() == 0
    assert RetrospectiveAbstract.objects.count() == 0
    found = {(i.row, i.column) for i in result.issues}
    assert {(3, "death_date"), (3, "sex"), (3, "last_contact_date")} <= found
    assert {i.row for i in result.issues} == {3}
    messages = {i.column: i.message for i in result.issues}
    assert "before the enrollment" in messages["death_date"]
    assert "Unknown code X" in messages["sex"]
    assert "2023-13-01 is not a calendar date" in messages["last_contact_date"]
    assert result.run.status == ImportRun.Status.REJECTED
    assert {"row": 3, "column": "sex", "value": "X"}.items() <= result.run.report[0].items() or any(
        r["column"] == "sex" and r["value"] == "X" for r in result.run.report
    )


def test_service_errors_are_mapped_to_their_column_and_roll_everything_back(data_manager, site_a):
    # The baseline 40 days before the enrollment is refused by patients.services.baseline_save.
    late = {**FULL, "baseline_date": "2022-12-20"}
    result = run(csv_bytes([MINIMAL_DEAD, late]), data_manager)
    assert [(i.row, i.column) for i in result.issues] == [(3, "baseline_date")]
    assert "within 28 days before" in result.issues[0].message
    assert Patient.objects.count() == 0
    assert Enrollment.history.count() == 0


def test_duplicate_subject_codes_are_refused(imported, data_manager):
    again = run(csv_bytes(GOOD_ROWS), data_manager, name="again.csv")
    assert not again.ok
    assert {(i.row, i.column) for i in again.issues} == {
        (2, "subject_code"),
        (3, "subject_code"),
        (4, "subject_code"),
    }
    assert "already exists" in again.issues[0].message
    assert Patient.objects.count() == 3

    twice = run(
        csv_bytes(
            [
                {**REPORTED_DEATH, "subject_code": "SITEA-0200"},
                {**MINIMAL_DEAD, "subject_code": "SITEA-0200"},
            ]
        ),
        data_manager,
    )
    assert [(i.row, i.column) for i in twice.issues] == [(3, "subject_code")]
    assert "also on row 2" in twice.issues[0].message

    clash = run(csv_bytes([{**FULL, "subject_code": "SITEA-0201"}]), data_manager)
    assert [(i.row, i.column, i.value) for i in clash.issues] == [
        (2, "hospital_record_number", "H0012345")
    ]
    assert "already registered at this site as SITEA-0101" in clash.issues[0].message


def test_update_saves_changed_values_with_history(imported, data_manager):
    changed = {
        **FULL,
        "ecog": "2",
        "last_contact_date": "2024-09-01",
        "vital_status": "dead",
        "death_date": "2024-10-02",
        "cycles": "10",
    }
    result = run(csv_bytes([changed]), data_manager, name="fix.csv", update=True)
    assert result.ok, result.issues
    assert (result.created, result.updated) == (0, 1)
    full = _by_code("SITEA-0101")
    baseline = Baseline.objects.get(patient=full)
    assert baseline.ecog == 2
    assert baseline.version == 2
    latest = baseline.history.latest("history_date", "history_id")
    assert latest.history_change_reason == "retrospective import, fix.csv, row 2"
    assert baseline.history.earliest("history_date", "history_id").ecog == 1
    contact = FollowUpContact.objects.active().get(patient=full)
    assert contact.contacted_on == date(2024, 9, 1)
    assert contact.version == 2
    assert full.status == Patient.Status.DECEASED
    assert Death.objects.get(patient=full).died_on == date(2024, 10, 2)
    assert full.retrospective_abstract.cycles_count == 10
    assert Patient.objects.count() == 3


def test_update_refuses_a_patient_not_created_by_the_import(data_manager, site_a, coordinator):
    from tests.factories.patients import enrolled_patient

    patient = enrolled_patient(site=site_a, user=coordinator)
    result = run(
        csv_bytes([{**FULL, "subject_code": patient.subject_code}]), data_manager, update=True
    )
    assert not result.ok
    assert "not created by the retrospective import" in result.issues[0].message


def test_an_xlsx_workbook_imports_like_the_csv(data_manager, site_a):
    rows = [
        {**row, "enrollment_date": date.fromisoformat(row["enrollment_date"])} for row in GOOD_ROWS
    ]
    result = run(xlsx_bytes(rows), data_manager, name="cohort.xlsx")
    assert result.ok, result.issues
    assert Patient.objects.filter(cohort=Cohort.RETROSPECTIVE).count() == 3


def test_a_csv_with_a_byte_order_mark_is_read(data_manager, site_a):
    result = run(csv_bytes([MINIMAL_DEAD], bom=True), data_manager)
    assert result.ok, result.issues


def test_a_dry_run_writes_nothing_but_reports_service_errors(data_manager, site_a):
    result = run(csv_bytes(GOOD_ROWS), data_manager, dry_run=True)
    assert result.ok
    assert result.run.status == ImportRun.Status.VALID
    assert result.created == 3
    assert Patient.objects.count() == 0
    assert Patient.history.count() == 0

    late = {**FULL, "baseline_date": "2022-12-20"}
    result = run(csv_bytes([late]), data_manager, dry_run=True)
    assert [(i.row, i.column) for i in result.issues] == [(2, "baseline_date")]
    assert Patient.objects.count() == 0


def test_a_missing_waiver_reference_is_reported(data_manager, site_a):
    result = run(csv_bytes([MINIMAL_DEAD]), data_manager, waiver_reference="")
    assert [(i.row, i.column) for i in result.issues] == [(2, "waiver_reference")]


def test_codes_of_another_site_or_format_are_refused(data_manager, site_a, site_b, coordinator):
    result = run(
        csv_bytes([{**MINIMAL_DEAD, "subject_code": "SITEB-0001"}]), data_manager, site=site_a
    )
    assert "not a subject code of site SITEA" in result.issues[0].message
    result = run(csv_bytes([{**MINIMAL_DEAD, "subject_code": "SITEB-0001"}]), coordinator)
    assert "You do not work at site SITEB" in result.issues[0].message
    result = run(csv_bytes([{**MINIMAL_DEAD, "subject_code": "NOPE-1"}]), data_manager)
    assert result.issues[0].column == "subject_code"


def test_the_header_is_checked_before_any_row(data_manager, site_a):
    header = ["subject_code", "sex", "age", "enrollment_date", "vital_status", "ecog_baseline"]
    result = run(csv_bytes([MINIMAL_DEAD], header=header), data_manager)
    messages = " ".join(i.message for i in result.issues)
    assert "Unknown column ecog_baseline" in messages
    assert "required column last_contact_date is missing" in messages


def test_the_command_imports_and_exits_non_zero_on_errors(tmp_path, data_manager, site_a, capsys):
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([MINIMAL_DEAD]))
    call_command(
        "import_retrospective",
        str(good),
        "--site",
        "SITEA",
        "--user",
        "dm",
        "--waiver-reference",
        WAIVER,
    )
    assert "patients created: 1, updated: 0" in capsys.readouterr().out
    assert _by_code("SITEA-0102").retrospective_abstract.created_by == data_manager

    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([{**FULL, "sex": "?"}]))
    with pytest.raises(CommandError) as error:
        call_command("import_retrospective", str(bad), "--waiver-reference", WAIVER)
    assert error.value.returncode == 1
    assert "row 2\tsex\t'?'" in capsys.readouterr().out
    assert not Patient.objects.filter(subject_code="SITEA-0101").exists()
