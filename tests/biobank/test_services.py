"""The biobank services: every bad-input rule with its message and nothing saved, codes,
aliquots, custody events and the destruction flags of a withdrawn biobank consent."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from biobank import selectors, services
from biobank.models import CustodyEvent, Specimen
from patients.models import Consent
from patients.services import consent_save
from surgery.models import Operation
from tests.factories.biobank import TODAY, at, box_at, collected, operated_patient


@pytest.fixture
def patient(site_a, coordinator):
    return operated_patient(site=site_a, user=coordinator)


@pytest.fixture
def box(site_a):
    return box_at(site_a, name="BOX-1")


def _new(patient, **fields) -> Specimen:
    operation = Operation.objects.get(patient=patient)
    values = {
        "patient": patient,
        "operation": operation,
        "kind": Specimen.Kind.TUMOUR,
        "origin": Specimen.Origin.PANCREAS,
        "weight_mg": Decimal("100"),
        "collected_at": at(operation.operated_on),
        "preservation": Specimen.Preservation.FRESH_FROZEN,
        **fields,
    }
    return Specimen(**values)


def _refused(match: str, call, **kwargs):
    before = (Specimen.objects.count(), CustodyEvent.objects.count())
    with pytest.raises(ValidationError, match=match) as info:
        call(**kwargs)
    assert (Specimen.objects.count(), CustodyEvent.objects.count()) == before
    return info.value


def test_collect_assigns_codes_per_kind_and_writes_the_collected_event(patient, coordinator):
    first = collected(patient, user=coordinator)
    second = collected(patient, user=coordinator)
    adjacent = collected(patient, user=coordinator, kind=Specimen.Kind.ADJACENT)
    discarded = collected(
        patient, user=coordinator, kind=Specimen.Kind.DISCARDED, weight_mg=Decimal("500")
    )
    code = patient.subject_code
    assert [first.code, second.code, adjacent.code, discarded.code] == [
        f"{code}-T01",
        f"{code}-T02",
        f"{code}-A01",
        f"{code}-D01",
    ]
    assert first.state == Specimen.State.COLLECTED
    assert list(first.events.values_list("kind", "by")) == [("collected", coordinator.pk)]


@pytest.mark.parametrize("weight", [Decimal("0"), Decimal("-5")])
def test_a_weight_of_zero_or_less_is_refused(patient, coordinator, weight):
    error = _refused(
        "must be more than 0 mg",
        services.specimen_collect,
        specimen=_new(patient, weight_mg=weight),
        user=coordinator,
        confirm_weight=True,
        today=TODAY,
    )
    assert f"entered: {weight} mg" in error.message_dict["weight_mg"][0]


@pytest.mark.parametrize("weight", [Decimal("9.9"), Decimal("2000.1"), Decimal("5000")])
def test_an_unusual_weight_needs_confirmation(patient, coordinator, weight):
    error = _refused(
        "outside the usual 10–2000 mg",
        services.specimen_collect,
        specimen=_new(patient, weight_mg=weight),
        user=coordinator,
        today=TODAY,
    )
    assert f"{weight} mg" in error.message_dict["weight_mg"][0]
    saved = services.specimen_collect(
        specimen=_new(patient, weight_mg=weight), user=coordinator, confirm_weight=True, today=TODAY
    )
    assert saved.weight_mg == weight


@given(st.decimals(min_value=Decimal("0.1"), max_value=Decimal("99999.9"), places=1))
def test_weight_warning_exactly_outside_the_usual_range(weight):
    assert bool(services.weight_warning(weight)) == (weight < 10 or weight > 2000)


def test_no_biobank_consent_no_specimen(patient, coordinator):
    consent_save(
        consent=Consent(
            patient=patient,
            basis=Consent.Basis.SIGNED,
            consented_on=TODAY - timedelta(days=2),
            consent_version="v1.3",
            study_consent=True,
            biobank_consent=False,
        ),
        user=coordinator,
        today=TODAY,
    )
    _refused(
        f"Patient {patient.subject_code} has not consented to the biobank",
        services.specimen_collect,
        specimen=_new(patient),
        user=coordinator,
        today=TODAY,
    )


def test_collection_before_the_operation_or_days_after_is_refused(patient, coordinator):
    operated_on = Operation.objects.get(patient=patient).operated_on
    error = _refused(
        r"is before the operation",
        services.specimen_collect,
        specimen=_new(patient, collected_at=at(operated_on - timedelta(days=1))),
        user=coordinator,
        today=TODAY,
    )
    assert "collected_at" in error.message_dict
    _refused(
        r"more than 1 day after the operation",
        services.specimen_collect,
        specimen=_new(patient, collected_at=at(operated_on + timedelta(days=2))),
        user=coordinator,
        today=TODAY,
    )
    _refused(
        r"is in the future",
        services.specimen_collect,
        specimen=_new(patient, collected_at=at(TODAY + timedelta(days=1))),
        user=coordinator,
        today=TODAY,
    )
    ok = services.specimen_collect(
        specimen=_new(patient, collected_at=at(operated_on + timedelta(days=1))),
        user=coordinator,
        today=TODAY,
    )
    assert ok.pk


def test_another_patients_operation_is_refused(patient, site_a, coordinator):
    other = operated_patient(site=site_a, user=coordinator)
    error = _refused(
        "Choose the index operation",
        services.specimen_collect,
        specimen=_new(patient, operation=Operation.objects.get(patient=other)),
        user=coordinator,
        today=TODAY,
    )
    assert "operation" in error.message_dict


def test_store_and_move_keep_position_and_events(patient, coordinator, box):
    specimen = collected(patient, user=coordinator)
    stored = services.specimen_store(
        specimen=specimen, box=box, row=2, column=7, user=coordinator, at=at(TODAY), today=TODAY
    )
    assert (stored.state, stored.box, stored.position) == ("stored", box, "B7")
    moved = services.specimen_move(
        specimen=stored, box=box, row=9, column=9, user=coordinator, at=at(TODAY), today=TODAY
    )
    assert moved.position == "I9"
    events = list(moved.events.order_by("id").values_list("kind", "row", "column"))
    assert events == [("collected", None, None), ("stored", 2, 7), ("moved", 9, 9)]


def test_two_specimens_in_one_position_are_refused_naming_the_occupant(patient, coordinator, box):
    first = collected(patient, user=coordinator)
    second = collected(patient, user=coordinator)
    services.specimen_store(specimen=first, box=box, row=1, column=1, user=coordinator)
    events = CustodyEvent.objects.count()
    with pytest.raises(ValidationError) as info:
        services.specimen_store(specimen=second, box=box, row=1, column=1, user=coordinator)
    assert info.value.message_dict["position"] == [
        f"Position A1 of box BOX-1 is already taken by specimen {first.code}."
    ]
    second.refresh_from_db()
    assert (second.state, second.box_id) == ("collected", None)
    assert CustodyEvent.objects.count() == events


def test_the_database_refuses_a_position_clash_the_checks_missed(
    patient, coordinator, box, monkeypatch
):
    """With the checks out of the way (as in a race), the unique constraint still refuses."""
    first = collected(patient, user=coordinator)
    second = collected(patient, user=coordinator)
    services.specimen_store(specimen=first, box=box, row=3, column=3, user=coordinator)
    real = services._occupant
    calls = []

    def blind_first_time(*args):
        calls.append(args)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(services, "_occupant", blind_first_time)
    monkeypatch.setattr(Specimen, "validate_constraints", lambda self, exclude=None: None)
    with pytest.raises(
        ValidationError, match=f"C3 of box BOX-1 is already taken by specimen {first.code}"
    ):
        services.specimen_store(specimen=second, box=box, row=3, column=3, user=coordinator)
    assert len(calls) == 2  # the clash was found by the database, then named
    assert Specimen.objects.filter(box=box, row=3, column=3).get() == first


def test_a_position_outside_the_grid_or_another_sites_box_is_refused(
    patient, coordinator, box, site_b
):
    specimen = collected(patient, user=coordinator)
    _refused(
        r"Position J1 is outside box BOX-1 \(9 rows × 9 columns\)",
        services.specimen_store,
        specimen=specimen,
        box=box,
        row=10,
        column=1,
        user=coordinator,
    )
    _refused(
        "belongs to another site",
        services.specimen_store,
        specimen=specimen,
        box=box_at(site_b),
        row=1,
        column=1,
        user=coordinator,
    )


def test_aliquots_get_child_codes_and_may_not_outweigh_the_parent(patient, coordinator):
    parent = collected(patient, user=coordinator, weight_mg=Decimal("100"))
    children = services.specimen_aliquot(
        parent=parent, count=3, weight_mg_each=Decimal("30"), user=coordinator
    )
    assert [c.code for c in children] == [f"{parent.code}-{n}" for n in (1, 2, 3)]
    assert {(c.parent_id, c.operation_id, c.kind) for c in children} == {
        (parent.pk, parent.operation_id, parent.kind)
    }
    assert parent.events.filter(kind="aliquoted").count() == 1
    error = _refused(
        r"1 aliquots of 11 mg \(101.0 mg with earlier aliquots\) weigh more than specimen "
        + parent.code
        + r" \(100.0 mg\)",
        services.specimen_aliquot,
        parent=parent,
        count=1,
        weight_mg_each=Decimal("11"),
        user=coordinator,
    )
    assert "weight_mg_each" in error.message_dict
    more = services.specimen_aliquot(
        parent=parent, count=1, weight_mg_each=Decimal("10"), user=coordinator
    )
    assert more[0].code == f"{parent.code}-4"


def test_thaw_ship_and_destroy_free_the_position(patient, coordinator, box):
    a, b, c = (collected(patient, user=coordinator) for _ in range(3))
    for column, specimen in enumerate((a, b, c), start=1):
        services.specimen_store(specimen=specimen, box=box, row=1, column=column, user=coordinator)
    a = services.specimen_thaw(specimen=a, user=coordinator)
    b = services.specimen_ship(specimen=b, destination="Central lab", user=coordinator)
    c = services.specimen_destroy(specimen=c, reason="Damaged tube", user=coordinator)
    assert [(s.state, s.box_id) for s in (a, b, c)] == [
        ("thawed", None),
        ("shipped", None),
        ("destroyed", None),
    ]
    assert b.events.get(kind="shipped").destination == "Central lab"
    _refused(
        "is shipped: it cannot be destroyed",
        services.specimen_destroy,
        specimen=b,
        reason="x",
        user=coordinator,
    )
    _refused("Give the reason", services.specimen_destroy, specimen=a, reason=" ", user=coordinator)


def test_withdrawn_biobank_consent_flags_specimens_until_destroyed(patient, coordinator, box):
    stored = collected(patient, user=coordinator)
    services.specimen_store(specimen=stored, box=box, row=1, column=1, user=coordinator)
    aliquot = services.specimen_aliquot(
        parent=stored, count=1, weight_mg_each=Decimal("20"), user=coordinator
    )[0]
    shipped = collected(patient, user=coordinator)
    services.specimen_ship(specimen=shipped, destination="Lab", user=coordinator)
    consent_save(
        consent=Consent(
            patient=patient,
            basis=Consent.Basis.SIGNED,
            consented_on=TODAY - timedelta(days=1),
            consent_version="v1.3",
            study_consent=True,
            biobank_consent=False,
        ),
        user=coordinator,
        today=TODAY,
    )
    worklist = list(selectors.destruction_worklist(user=coordinator))
    assert {s.code for s in worklist} == {stored.code, aliquot.code}
    assert all(s.flagged_on == TODAY - timedelta(days=1) for s in worklist)
    _refused(
        "flagged for destruction",
        services.specimen_aliquot,
        parent=stored,
        count=1,
        weight_mg_each=Decimal("1"),
        user=coordinator,
    )
    services.specimen_destroy(specimen=stored, reason="Consent withdrawn", user=coordinator)
    assert [s.code for s in selectors.destruction_worklist(user=coordinator)] == [aliquot.code]
    stored.refresh_from_db()
    assert stored.box_id is None
    services.specimen_destroy(specimen=aliquot, reason="Consent withdrawn", user=coordinator)
    assert list(selectors.destruction_worklist(user=coordinator)) == []


def test_code128_table_and_checksum():
    from biobank.labels import PATTERNS, code128_bars, code128_values

    assert len(PATTERNS) == 107
    assert len(set(PATTERNS)) == 107
    assert all(sum(map(int, p)) == 11 for p in PATTERNS[:106])
    assert sum(map(int, PATTERNS[106])) == 13
    # Start B, "P" 48, "J" 42, "J" 42, checksum (104 + 48 + 2·42 + 3·42) mod 103 = 53, stop.
    assert code128_values("PJJ") == [104, 48, 42, 42, 53, 106]
    with pytest.raises(ValueError, match="cannot encode"):
        code128_values("Ω")
    width = sum(int(w) for v in code128_values("CJFH-0001-T01") for w in PATTERNS[v])
    bars = code128_bars("CJFH-0001-T01")
    assert bars[0][0] == 10
    assert bars[-1][0] + bars[-1][1] == 10 + width


def _consent(patient, user, *, on, biobank: bool) -> None:
    consent_save(
        consent=Consent(
            patient=patient,
            basis=Consent.Basis.SIGNED,
            consented_on=on,
            consent_version="v1.3",
            study_consent=True,
            biobank_consent=biobank,
        ),
        user=user,
        today=TODAY,
    )


def test_a_new_biobank_consent_lifts_the_flags_of_specimens_not_destroyed(patient, coordinator):
    kept, destroyed = collected(patient, user=coordinator), collected(patient, user=coordinator)
    _consent(patient, coordinator, on=TODAY - timedelta(days=2), biobank=False)
    services.specimen_destroy(specimen=destroyed, reason="Consent withdrawn", user=coordinator)
    _consent(patient, coordinator, on=TODAY - timedelta(days=1), biobank=True)
    kept.refresh_from_db()
    destroyed.refresh_from_db()
    assert (kept.flagged_for_destruction, kept.flagged_on) == (False, None)
    assert list(kept.events.values_list("kind", flat=True)) == ["collected", "flagged", "unflagged"]
    assert destroyed.state == "destroyed"
    assert selectors.destruction_worklist(user=coordinator) == []
    assert kept.history.first().history_change_reason == services.UNFLAGGED_REASON
