"""The pure rules of the surgery app as tables: ISGPS / Clavien-Dindo, the CCI and the
postoperative lab days with their windows."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgery import cci, isgps, postop


def _errors(kind, grade="", cd="II", amylase=None):
    return isgps.complication_errors(
        kind=kind, isgps_grade=grade, clavien_dindo=cd, drain_amylase_u_l=amylase
    )


@pytest.mark.parametrize(
    ("kind", "grade", "cd", "amylase", "field", "message"),
    [
        ("popf", "BL", "I", 900, None, None),
        ("popf", "B", "II", 2000, None, None),
        ("popf", "C", "IVa", 5000, None, None),
        ("popf", "A", "I", 900, "isgps_grade", "Grade A no longer exists"),
        ("popf", "", "II", 900, "isgps_grade", "Give the ISGPS grade"),
        ("popf", "B", "II", 405, "drain_amylase_u_l", "405 U/L is not above 405 U/L"),
        ("popf", "BL", "I", 300, "drain_amylase_u_l", "300 U/L is not above 405 U/L"),
        ("popf", "B", "II", None, "drain_amylase_u_l", "Give the drain amylase"),
        ("popf", "B", "I", 2000, "clavien_dindo", "at least Clavien-Dindo II"),
        ("popf", "C", "I", 2000, "clavien_dindo", "at least Clavien-Dindo II"),
        ("dge", "A", "I", None, None, None),
        ("dge", "C", "IIIa", None, None, None),
        ("dge", "BL", "I", None, "isgps_grade", "not an ISGPS grade"),
        ("dge", "", "I", None, "isgps_grade", "Give the ISGPS grade"),
        ("dge", "B", "II", 900, "drain_amylase_u_l", "pancreatic fistula only"),
        ("pph", "B", "II", None, None, None),
        ("pph", "", "II", None, "isgps_grade", "Give the ISGPS grade"),
        ("ssi", "", "I", None, None, None),
        ("ssi", "B", "I", None, "isgps_grade", "leave it empty"),
        ("bile_leak", "", "IIIa", 700, "drain_amylase_u_l", "pancreatic fistula only"),
        ("other", "", "VI", None, "clavien_dindo", "not a Clavien-Dindo grade"),
    ],
)
def test_isgps_and_clavien_dindo(kind, grade, cd, amylase, field, message):
    errors = _errors(kind, grade, cd, amylase)
    if field is None:
        assert errors == {}
    else:
        assert any(message in m for m in errors[field]), errors


@pytest.mark.parametrize(
    ("grades", "expected"),
    [
        ([], 0.0),
        (["I"], 8.7),
        (["II"], 20.9),
        (["I", "II"], 22.6),
        (["IIIa"], 26.2),
        (["IIIb"], 33.7),
        (["IVa"], 42.4),
        (["IVb"], 46.2),
        (["II", "II", "IIIa"], 39.5),
        (["I", "V"], 100.0),
        (["IVb"] * 6, 100.0),
    ],
)
def test_cci_published_examples(grades, expected):
    assert cci.cci(grades) == expected


def test_cci_refuses_an_unknown_grade():
    with pytest.raises(ValueError, match="not a Clavien-Dindo grade"):
        cci.cci(["III"])


@given(st.lists(st.sampled_from(["I", "II", "IIIa", "IIIb", "IVa", "IVb"]), max_size=12))
def test_cci_is_bounded_and_grows_with_each_complication(grades):
    value = cci.cci(grades)
    assert 0 <= value <= 100
    assert cci.cci([*grades, "I"]) >= value


def test_max_grade():
    assert cci.max_grade(["II", "IIIa", "I"]) == "IIIa"
    assert cci.max_grade([]) is None


@pytest.mark.parametrize(
    ("pod", "day", "in_window"),
    [
        (0, 1, True),
        (1, 1, True),
        (2, 1, True),  # on the edge of days 1 and 3: the earlier
        (3, 3, True),
        (4, 3, True),
        (5, 5, True),
        (6, 5, True),
        (7, 7, True),
        (8, 7, True),
        (9, 7, False),
        (18, 7, False),
        (19, 30, False),
        (26, 30, False),
        (27, 30, True),
        (30, 30, True),
        (33, 30, True),
        (34, 30, False),
        (90, 30, False),
    ],
)
def test_postoperative_day_snaps_to_the_protocol_day(pod, day, in_window):
    assert postop.snap(pod) == postop.Snap(pod, day, in_window)


@pytest.mark.parametrize(
    ("pod", "day", "in_window"),
    [(2, 3, True), (4, 5, True), (1, 3, False), (10, 7, False), (28, 30, True), (26, 30, False)],
)
def test_a_chosen_day_is_checked_against_its_own_window(pod, day, in_window):
    assert postop.snap(pod, day=day).in_window is in_window


def test_windows():
    assert [postop.window(d) for d in postop.PROTOCOL_DAYS] == [
        (0, 2),
        (2, 4),
        (4, 6),
        (6, 8),
        (27, 33),
    ]
