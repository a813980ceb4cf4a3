"""The hash chain over the audit history (trial/audit.py): every row written through the
application verifies, and an edit made directly in the database is reported as the first broken
link of its table (verify_chain, manage.py verify_audit); seal_history and seal_audit."""

from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import Baseline, Consent, Patient
from tests.factories.patients import PatientFactory, baselined_patient
from tests.trial.test_audit import BUILDERS, MODELS
from trial import audit
from trial.models import Study
from trial.services import clinical_save, clinical_void

# Taken when this module is imported (Django is set up, no test has run): the receiver must be
# connected by trial.apps.TrialConfig.ready, not by a test.
CONNECTED_AT_STARTUP = audit.is_connected()


@pytest.fixture(autouse=True)
def chained():
    """Make sure the receiver is connected for these tests, and leave the signal as it was."""
    was_connected = audit.is_connected()
    audit.connect()
    yield
    if not was_connected:
        audit.disconnect()


def _report(model) -> audit.TableReport:
    return audit.verify_table(model.history.model)


def test_the_receiver_is_connected_when_the_app_starts():
    assert CONNECTED_AT_STARTUP, "trial.apps.TrialConfig.ready() must call trial.audit.connect()"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_saving_and_voiding_every_audited_model_gives_rows_that_verify(model, site_a, coordinator):
    saved = clinical_save(BUILDERS[model._meta.label](site_a), user=coordinator)
    clinical_void(saved, user=coordinator, reason="chain test", expected_version=1)
    rows = list(model.history.filter(id=saved.pk).order_by("history_id"))
    assert len(rows) == 2
    assert all(len(row.row_hash) == 64 for row in rows)
    assert rows[0].row_hash != rows[1].row_hash
    report = _report(model)
    assert report.ok, report.first_broken
    assert report.rows_checked >= 2


@pytest.fixture
def patient(site_a, coordinator):
    """A patient screened, consented, enrolled and baselined through the services, whose
    baseline was then edited (with a reason) and whose consent was voided."""
    patient = baselined_patient(site=site_a, user=coordinator)
    baseline = Baseline.objects.get(patient=patient)
    baseline.ecog = 2
    baseline.weight_kg = Decimal("61.5")
    clinical_save(
        baseline, user=coordinator, expected_version=baseline.version, reason="chart corrected"
    )
    consent = Consent.objects.get(patient=patient)
    clinical_void(consent, user=coordinator, reason="entered in error")
    return patient


def test_a_patients_whole_history_verifies(patient):
    # The study row comes from a data migration without history; post_migrate (trial/apps.py)
    # starts its chain, so seal_audit finds nothing left to populate.
    assert _report(Study).ok
    out = StringIO()
    call_command("seal_audit", "--populate-missing", stdout=out)
    assert "started the history of 0 records" in out.getvalue()
    assert Study.history.exists()
    reports = audit.verify_chain()
    assert [r.label for r in reports if not r.ok] == []
    checked = {r.label: r.rows_checked for r in reports}
    assert checked["patients.Baseline"] == 2
    assert checked["patients.Consent"] >= 2


def test_an_edited_history_row_is_the_first_broken_link(patient):
    first = Baseline.history.filter(patient=patient).earliest("history_id")
    Baseline.history.filter(history_id=first.history_id).update(ecog=4)

    report = _report(Baseline)
    assert not report.ok
    link = report.first_broken
    assert (link.kind, link.history_id, link.record_id) == (
        audit.HASH_MISMATCH,
        first.history_id,
        first.id,
    )
    assert report.problems == 1  # the later row still chains to the stored hash
    assert _report(Consent).ok


def test_editing_the_reason_or_the_user_of_a_row_is_detected(patient, monitor):
    last = Baseline.history.filter(patient=patient).latest("history_id")
    Baseline.history.filter(history_id=last.history_id).update(history_change_reason="typo")
    assert _report(Baseline).first_broken.history_id == last.history_id

    Baseline.history.filter(history_id=last.history_id).update(
        history_change_reason="chart corrected", history_user=monitor
    )
    assert _report(Baseline).first_broken.kind == audit.HASH_MISMATCH


def test_deleting_the_latest_history_row_is_detected(patient):
    rows = list(Baseline.history.filter(patient=patient).order_by("history_id"))
    Baseline.history.filter(history_id=rows[-1].history_id).delete()

    link = _report(Baseline).first_broken
    assert link.kind == audit.HISTORY_DISAGREES
    assert link.history_id == rows[0].history_id
    assert "ecog" in link.detail
    assert "version" in link.detail


def test_deleting_an_earlier_history_row_breaks_the_next_link(patient, coordinator):
    baseline = Baseline.objects.get(patient=patient)
    baseline.ecog = 0
    clinical_save(baseline, user=coordinator, reason="second correction")
    rows = list(Baseline.history.filter(patient=patient).order_by("history_id"))
    assert len(rows) == 3
    Baseline.history.filter(history_id=rows[1].history_id).delete()

    link = _report(Baseline).first_broken
    assert (link.kind, link.history_id) == (audit.HASH_MISMATCH, rows[2].history_id)


def test_a_change_made_without_history_is_detected(patient):
    Baseline.objects.filter(patient=patient).update(ecog=3)
    link = _report(Baseline).first_broken
    assert link.kind == audit.HISTORY_DISAGREES
    assert "ecog" in link.detail


def test_a_removed_hash_and_a_record_without_history_are_reported(patient, site_a):
    last = Baseline.history.filter(patient=patient).latest("history_id")
    Baseline.history.filter(history_id=last.history_id).update(row_hash="")
    assert _report(Baseline).first_broken.kind == audit.MISSING_HASH

    # bulk_create writes no history at all.
    (orphan,) = Patient.objects.bulk_create([PatientFactory.build(site=site_a)])
    link = _report(Patient).first_broken
    assert (link.kind, link.record_id, link.history_id) == (audit.NO_HISTORY, orphan.pk, None)


def test_a_record_deleted_outside_the_application_is_detected(site_a):
    patient = PatientFactory(site=site_a)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Patient._meta.db_table} WHERE id = %s", [patient.pk])
    link = _report(Patient).first_broken
    assert (link.kind, link.record_id) == (audit.DELETED_UNRECORDED, patient.pk)


def test_a_deletion_through_the_orm_keeps_the_chain(site_a):
    patient = PatientFactory(site=site_a)
    pk = patient.pk
    patient.delete()
    assert Patient.history.filter(id=pk).latest("history_id").history_type == "-"
    assert _report(Patient).ok


def test_the_hash_depends_on_the_key(patient, settings):
    assert _report(Baseline).ok
    settings.AUDIT_CHAIN_KEY = "another-key"
    assert _report(Baseline).first_broken.kind == audit.HASH_MISMATCH


def test_seal_history_chains_a_bulk_list(site_a, coordinator):
    patients = Patient.objects.bulk_create([PatientFactory.build(site=site_a) for _ in range(3)])
    created = audit.bulk_history_create(Patient, patients, default_user=coordinator)
    assert all(len(row.row_hash) == 64 for row in created)
    for patient in patients:
        patient.sex = "F"
    Patient.objects.bulk_update(patients, ["sex"])
    # By hand: two rows of each record in one list (an update, then a second one).
    history = Patient.history.model
    rows = []
    for step, sex in enumerate(("F", "M")):
        for patient in patients:
            rows.append(
                history(
                    **{
                        **{f.attname: getattr(patient, f.attname) for f in history.tracked_fields},
                        "sex": sex,
                    },
                    history_type="~",
                    history_date=patient.created_at + timedelta(minutes=step + 1),
                    history_user=coordinator,
                )
            )
    for patient in patients:
        patient.sex = "M"
    Patient.objects.bulk_update(patients, ["sex"])
    audit.seal_history(rows)
    history.objects.bulk_create(rows)
    report = _report(Patient)
    assert report.ok, report.first_broken
    assert report.rows_checked == 9


def test_seal_history_looks_up_previous_hashes_with_one_query_per_model(site_a):
    patients = [PatientFactory(site=site_a) for _ in range(5)]
    history = Patient.history.model
    rows = [
        history(
            **{f.attname: getattr(p, f.attname) for f in history.tracked_fields},
            history_type="~",
            history_date=p.created_at + timedelta(minutes=1),
        )
        for p in patients
    ]
    with CaptureQueriesContext(connection) as queries:
        audit.seal_history(rows)
    assert len(queries) == 1
    history.objects.bulk_create(rows)
    assert _report(Patient).ok


# --- an existing database: seal_audit ---------------------------------------------------------


def _legacy(patient):
    """As before the chain existed: the history rows of `patient`'s baseline have no hash."""
    Baseline.history.filter(patient=patient).update(row_hash="")


def test_seal_audit_seals_legacy_rows_and_relinks_the_rows_written_since(patient, coordinator):
    _legacy(patient)
    # Written after the upgrade but before seal_audit ran: chained to an empty hash.
    baseline = Baseline.objects.get(patient=patient)
    baseline.ecog = 1
    clinical_save(baseline, user=coordinator, reason="after the upgrade")
    assert _report(Baseline).first_broken.kind == audit.MISSING_HASH

    out = StringIO()
    call_command("seal_audit", "--model", "patients.Baseline", stdout=out)
    assert "patients.Baseline: sealed 2, re-linked 1" in out.getvalue()
    report = _report(Baseline)
    assert report.ok, report.first_broken

    out = StringIO()
    call_command("seal_audit", stdout=out)
    assert "sealed 0 rows, re-linked 0" in out.getvalue()


def test_seal_audit_does_not_bless_an_edited_row_or_a_removed_hash(patient, coordinator):
    rows = list(Baseline.history.filter(patient=patient).order_by("history_id"))
    # The hash of the last row removed after its reason was edited: not a legacy row.
    Baseline.history.filter(history_id=rows[-1].history_id).update(
        row_hash="", history_change_reason="nothing to see"
    )
    out = StringIO()
    call_command("seal_audit", "--dry-run", stdout=out)
    assert "left 1 gap rows" in out.getvalue()
    call_command("seal_audit", stdout=StringIO())
    assert _report(Baseline).first_broken.kind == audit.MISSING_HASH

    call_command("seal_audit", "--include-gaps", stdout=StringIO())
    assert _report(Baseline).ok  # the operator chose to seal it: the command said what it did

    Baseline.history.filter(history_id=rows[0].history_id).update(ecog=5)
    out = StringIO()
    call_command("seal_audit", stdout=out)
    assert "invalid left 1" in out.getvalue()
    assert _report(Baseline).first_broken.history_id == rows[0].history_id


# --- manage.py verify_audit ------------------------------------------------------------------


def _run(*argv: str) -> tuple[int, str]:
    """Run a command as `manage.py` does, returning (exit status, output). (run_from_argv
    closes the database connections when done: not the test's own, inside its transaction.)"""
    out = StringIO()
    with (
        redirect_stdout(out),
        redirect_stderr(out),
        mock.patch("django.core.management.base.connections.close_all"),
    ):
        try:
            ManagementUtility(["manage.py", *argv]).execute()
        except SystemExit as exit_:
            return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_verify_audit_exits_0_on_a_sound_trail(patient):
    call_command("seal_audit", "--populate-missing", stdout=StringIO())
    status, output = _run("verify_audit")
    assert status == 0, output
    assert "OK      patients.Baseline: 2 rows, 1 records" in output
    assert "The audit trail verifies" in output


def test_verify_audit_exits_1_and_prints_the_first_broken_link(patient):
    first = Baseline.history.filter(patient=patient).earliest("history_id")
    Baseline.history.filter(history_id=first.history_id).update(weight_kg=Decimal("99"))

    call_command("seal_audit", "--populate-missing", stdout=StringIO())
    status, output = _run("verify_audit")
    assert status == 1
    assert "BROKEN  patients.Baseline" in output
    assert f"history_id={first.history_id} record id={first.id}: hash mismatch" in output
    assert "OK      patients.Consent" in output
    assert "broken in 1 table(s)" in output

    status, output = _run("verify_audit", "--model", "patients.Consent")
    assert (status, "Baseline" in output) == (0, False)
    with pytest.raises(CommandError, match="No audited model"):
        call_command("verify_audit", "--model", "patients.Nothing")


# --- cost ------------------------------------------------------------------------------------


def test_measure_the_extra_queries_of_a_save(patient, coordinator, record_property):
    """Measured, not asserted (reported to the lead): the chain costs one SELECT per history
    row written."""
    baseline = Baseline.objects.get(patient=patient)

    def count(ecog: int) -> int:
        baseline.ecog = ecog
        with CaptureQueriesContext(connection) as queries:
            clinical_save(baseline, user=coordinator, reason="measure")
        return len(queries)

    with_chain = count(3)
    audit.disconnect()
    try:
        without_chain = count(4)
    finally:
        audit.connect()
    record_property("queries_per_save_with_chain", with_chain)
    record_property("queries_per_save_without_chain", without_chain)
    print(f"clinical_save of a baseline: {without_chain} queries, {with_chain} with the chain")
    assert with_chain >= without_chain
