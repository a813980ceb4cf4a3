"""trial.derived: refreshers run after every change, batch refreshers once per patient at the
end of a deferred bulk job."""

from types import SimpleNamespace

import pytest

from trial import derived


@pytest.fixture
def calls(monkeypatch):
    log: list = []
    monkeypatch.setattr(derived, "_REFRESHERS", {})
    derived.register_refresher(
        derived.Refresher(
            key="eager",
            order=1,
            refresh=lambda *, patient, user, source: log.append(("eager", patient.pk, source)),
        )
    )
    derived.register_refresher(
        derived.Refresher(
            key="batched",
            order=2,
            refresh=lambda *, patient, user, source: log.append(("single", patient.pk, source)),
            batch=lambda ids: log.append(("batch", tuple(ids))),
        )
    )
    return log


def _changed(pk: int, source: str = "treatments.cycle") -> None:
    derived.patient_records_changed(patient=SimpleNamespace(pk=pk), user=None, source=source)


def test_every_refresher_runs_after_each_change_by_default(calls):
    _changed(1)
    _changed(1, "followup.contact")
    assert calls == [
        ("eager", 1, "treatments.cycle"),
        ("single", 1, "treatments.cycle"),
        ("eager", 1, "followup.contact"),
        ("single", 1, "followup.contact"),
    ]


def test_a_deferred_job_runs_batch_refreshers_once_per_patient_at_the_end(calls):
    with derived.refreshes_deferred():
        _changed(2)
        _changed(1)
        _changed(2, "surgery.operation")
        with derived.refreshes_deferred():  # nested: the outer block refreshes
            _changed(3)
        assert ("batch", (1, 2, 3)) not in calls
    # Refreshers without a batch form still ran at once; the batch one ran once, at the end.
    assert [c for c in calls if c[0] == "eager"] == [
        ("eager", 2, "treatments.cycle"),
        ("eager", 1, "treatments.cycle"),
        ("eager", 2, "surgery.operation"),
        ("eager", 3, "treatments.cycle"),
    ]
    assert [c for c in calls if c[0] != "eager"] == [("batch", (1, 2, 3))]
    _changed(4)  # after the block, back to refreshing at once
    assert calls[-1] == ("single", 4, "treatments.cycle")
