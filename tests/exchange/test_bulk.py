"""The bulk path of the import (exchange.bulk) against the per-row path through the services:
the same file imported both ways must leave the same patients, records, casebooks, calendar
and audit history (ids and timestamps aside), and the same report for bad rows."""

from datetime import date

import pytest
from django.apps import apps
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.import_retrospective import SITE_CODE, generate_rows
from exchange.models import ImportRun
from exchange.services import import_file
from patients.models import Patient
from tests.exchange.files import FULL, GOOD_ROWS, MINIMAL_DEAD, REPORTED_DEATH, csv_bytes
from tests.factories.trial import SiteFactory
from treatments.models import RegimenLine
from trial import audit
from trial.models import (
    AuditedModel,
    Casebook,
    DataQuery,
    QueryMessage,
    SiteMembership,
    Study,
)

TODAY = date(2026, 6, 1)
WAIVER = "2024-KY-213"
# Columns that differ between any two imports: keys, the run, the chain hash (and every
# timestamp: see _compared).
SKIP = {"id", "history_id", "object_id", "row_hash", "import_run", "query"}


class _Undo(Exception):
    pass


def _models() -> list[type[models.Model]]:
    """Every audited model (the imported records among them), the casebook, the calendar and
    the system queries of the automatic checks."""
    found = [m for m in apps.get_models() if issubclass(m, AuditedModel)]
    return [*found, Casebook, apps.get_model("visits", "ExpectedVisit"), DataQuery, QueryMessage]


def _compared(model_field: models.Field) -> bool:
    return model_field.name not in SKIP and not isinstance(model_field, models.DateTimeField)


def _value(instance: models.Model, model_field: models.Field, codes: dict[int, str]):
    value = getattr(instance, model_field.attname)
    target = getattr(model_field, "related_model", None)
    if target is Patient or model_field.name == "patient":
        return codes.get(value, value)
    return value


def _snapshot() -> dict:
    """Everything the import wrote, by model: the rows and the history rows, as comparable
    tuples (patients by subject code instead of id), in the order of their ids."""
    codes = dict(Patient.objects.values_list("pk", "subject_code"))
    snapshot: dict = {}
    for model in _models():
        tables = [model]
        if hasattr(model, "history"):
            tables.append(model.history.model)
        for table in tables:
            order = "history_id" if table is not model else "pk"
            fields = [f for f in table._meta.concrete_fields if _compared(f)]
            rows = [
                tuple((f.name, _value(row, f, codes)) for f in fields)
                for row in table._base_manager.order_by(order)
            ]
            if rows:
                snapshot[table._meta.label] = rows
    return snapshot


def _own_queries(queries: CaptureQueriesContext) -> int:
    """The statements of the import, without the automatic checks' system queries, which
    trial.queries raises one by one, each in a savepoint of its own."""
    sql = [q["sql"].lower() for q in queries.captured_queries]
    return sum(
        1 for q in sql if "dataquery" not in q and "querymessage" not in q and "savepoint" not in q
    )


def _import_and_snapshot(content: bytes, user, *, bulk: bool) -> tuple[dict, list, int]:
    """Import `content` one way, snapshot the database, and undo the import."""
    outcome: dict = {}
    try:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as queries:
                result = import_file(
                    content=content,
                    file_name="cohort.csv",
                    user=user,
                    today=TODAY,
                    waiver_reference=WAIVER,
                    bulk=bulk,
                )
            outcome["issues"] = [i.as_dict() for i in result.issues]
            outcome["queries"] = _own_queries(queries)
            outcome["snapshot"] = _snapshot() if result.ok else {}
            raise _Undo
    except _Undo:
        pass
    return outcome["snapshot"], outcome["issues"], outcome["queries"]


@pytest.fixture
def bench_site(site_a, data_manager):
    site = SiteFactory(code=SITE_CODE, name="Bench J", study=site_a.study)
    SiteMembership.objects.create(user=data_manager, site=site)
    return site


def _rows() -> list[dict]:
    # The test files' patients and a generated mix (partial and complete abstractions, dead
    # and alive, with and without operation and recurrence).
    return [*GOOD_ROWS, *generate_rows(40, seed=11)]


def test_the_bulk_path_leaves_every_record_and_history_row_as_the_per_row_path(
    data_manager, site_a, bench_site
):
    content = csv_bytes(_rows())
    per_row, issues, slow = _import_and_snapshot(content, data_manager, bulk=False)
    assert issues == []
    bulk, issues, fast = _import_and_snapshot(content, data_manager, bulk=True)
    assert issues == []
    assert set(bulk) == set(per_row)
    for label in per_row:
        assert len(bulk[label]) == len(per_row[label]), label
        for mine, theirs in zip(bulk[label], per_row[label], strict=True):
            assert dict(mine) == dict(theirs), label
    # What the comparison covers: every CRF the file can fill, their history and the calendar.
    for label in (
        "patients.Patient",
        "patients.HistoricalPatient",
        "trial.Casebook",
        "surgery.HistoricalOperation",
        "followup.HistoricalDeath",
        "treatments.HistoricalRegimenLine",
        "visits.ExpectedVisit",
    ):
        assert per_row.get(label), label
    assert fast * 10 < slow


def test_bulk_history_rows_are_sealed_into_the_chain(data_manager, site_a):
    result = import_file(
        content=csv_bytes(GOOD_ROWS),
        file_name="cohort.csv",
        user=data_manager,
        today=TODAY,
        waiver_reference=WAIVER,
    )
    assert result.ok, result.issues
    # The tables the import writes (not the checks' system queries: trial.queries).
    tables = [m.history.model for m in _models() if issubclass(m, AuditedModel | Casebook)]
    rows = [row for table in tables for row in table.objects.all()]
    assert rows
    assert all(row.row_hash for row in rows)
    assert all(report.ok for report in audit.verify_chain(tables)), audit.verify_chain(tables)


def test_queries_do_not_grow_with_the_rows(data_manager, site_a, bench_site):
    """The import's own queries are a fixed number whatever the rows (the automatic checks'
    system queries, raised one by one by trial.queries for each finding, are left out)."""
    counts = []
    for n, seed in ((10, 1), (60, 2)):
        rows = generate_rows(n, seed=seed, start=len(counts) * 1000 + 1)
        with CaptureQueriesContext(connection) as queries:
            result = import_file(
                content=csv_bytes(rows),
                file_name="cohort.csv",
                user=data_manager,
                today=TODAY,
                waiver_reference=WAIVER,
            )
        assert result.ok, result.issues
        counts.append(_own_queries(queries))
    # SQLite splits a bulk insert into batches by its parameter limit: a few more statements.
    assert counts[1] < counts[0] + 40, counts


# Rows the parser accepts but a service refuses: the report must be the same both ways.
BAD_ROWS = [
    {**FULL, "subject_code": "SITEA-0301", "baseline_date": "2022-12-20"},  # baseline window
    {  # 17 at the enrollment by the date of birth: not eligible
        **MINIMAL_DEAD,
        "subject_code": "SITEA-0302",
        "age": "",
        "date_of_birth": "2005-06-01",
    },
    {  # liver lesions ablated without an ablation
        **FULL,
        "subject_code": "SITEA-0303",
        "name": "",
        "hospital_record_number": "H0099",
        "liver_lesions_ablated": "3",
    },
    {**REPORTED_DEATH, "subject_code": "SITEA-0304", "death_cause": "other"},
]


@pytest.mark.parametrize("bad", BAD_ROWS, ids=lambda row: row["subject_code"])
def test_a_row_a_service_refuses_gets_the_same_report_both_ways(data_manager, site_a, bad):
    content = csv_bytes([MINIMAL_DEAD, bad])
    _snapshot_slow, slow, _ = _import_and_snapshot(content, data_manager, bulk=False)
    _snapshot_fast, fast, _ = _import_and_snapshot(content, data_manager, bulk=True)
    assert slow, "the per-row path accepted the row: the case tests nothing"
    assert fast == slow
    assert {issue["row"] for issue in fast} == {3}


def test_a_record_number_taken_by_the_subject_code_is_reported(data_manager, site_a):
    from tests.factories.patients import enrolled_patient

    patient = enrolled_patient(site=site_a, user=data_manager)
    identity = patient.identity
    identity.hospital_record_number = "SITEA-0102"  # what the import would use for MINIMAL_DEAD
    identity.save()
    content = csv_bytes([MINIMAL_DEAD])
    _snap, slow, _ = _import_and_snapshot(content, data_manager, bulk=False)
    _snap, fast, _ = _import_and_snapshot(content, data_manager, bulk=True)
    assert slow
    assert fast == slow


def test_the_import_is_refused_while_the_study_is_locked(data_manager, site_a):
    Study.objects.filter(pk=site_a.study_id).update(locked_at=timezone.now())
    result = import_file(
        content=csv_bytes(GOOD_ROWS),
        file_name="cohort.csv",
        user=data_manager,
        today=TODAY,
        waiver_reference=WAIVER,
    )
    assert not result.ok
    assert "locked" in result.issues[0].message
    assert result.run.status == ImportRun.Status.REJECTED
    assert not Patient.objects.exists()


def test_imported_patients_have_a_casebook_moved_by_every_save(data_manager, site_a):
    result = import_file(
        content=csv_bytes(GOOD_ROWS),
        file_name="cohort.csv",
        user=data_manager,
        today=TODAY,
        waiver_reference=WAIVER,
    )
    assert result.ok, result.issues
    recorded = [
        m
        for m in _models()
        if issubclass(m, AuditedModel) and "patient" in {f.name for f in m._meta.concrete_fields}
    ]
    for patient in Patient.objects.all():
        saves = patient.history.count() + sum(
            model.history.filter(patient=patient).count() for model in recorded
        )
        # The casebook is created by the second save (the identity's) with version 1.
        assert patient.casebook.version == saves - 1 >= 1


def test_a_database_refusal_falls_back_to_the_per_row_path(data_manager, site_a, monkeypatch):
    from django.db import IntegrityError

    from exchange import bulk

    def refuse(plans):
        Patient.objects.bulk_create([plans[0].patient])  # undone with the savepoint
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(bulk, "insert", refuse)
    result = import_file(
        content=csv_bytes(GOOD_ROWS),
        file_name="cohort.csv",
        user=data_manager,
        today=TODAY,
        waiver_reference=WAIVER,
    )
    assert result.ok, result.issues
    assert result.created == 3
    assert Patient.objects.count() == 3
    assert Patient.history.filter(history_type="+").count() == 3


@pytest.fixture
def chained():
    """The audit chain's receiver, connected as trial.apps will (trial.audit.connect)."""
    connected = audit.is_connected()
    if not connected:
        audit.connect()
    yield
    if not connected:
        audit.disconnect()


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "per-row"])
def test_both_paths_leave_the_audit_chain_whole(data_manager, site_a, chained, bulk):
    # The per-row path sets the reason of the enrollment and the first line after their
    # services saved them: the row's hash must be computed again.
    result = import_file(
        content=csv_bytes(GOOD_ROWS),
        file_name="cohort.csv",
        user=data_manager,
        today=TODAY,
        waiver_reference=WAIVER,
        bulk=bulk,
    )
    assert result.ok, result.issues
    tables = [m.history.model for m in _models() if issubclass(m, AuditedModel | Casebook)]
    reports = audit.verify_chain(tables)
    assert [r.label for r in reports if not r.ok] == []
    assert (
        RegimenLine.history.get().history_change_reason == "retrospective import, cohort.csv, row 2"
    )
