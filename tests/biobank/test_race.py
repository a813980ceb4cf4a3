"""Two people store two different specimens into the same free position at the same moment:
the database's unique constraint lets exactly one in; the other gets the clear conflict."""

import contextlib
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone

from biobank import services
from biobank.models import CustodyEvent, Specimen
from tests.factories.biobank import box_at, collected, operated_patient


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_storage_into_one_position_stores_exactly_one(site_a, coordinator, monkeypatch):
    today = timezone.localdate()
    patient = operated_patient(site=site_a, user=coordinator, today=today)
    first = collected(patient, user=coordinator, today=today)
    second = collected(patient, user=coordinator, today=today, kind="adjacent")
    box = box_at(site_a, name="RACE")

    start = threading.Barrier(2, timeout=10)
    # Each writer pauses right after finding the position free, so that both have passed the
    # check before either saves: only the database can then tell them apart.
    checked = threading.Barrier(2, timeout=5)
    real_occupant = services._occupant
    local = threading.local()

    def occupant_then_pause(*args):
        found = real_occupant(*args)
        if not getattr(local, "paused", False):
            local.paused = True
            with contextlib.suppress(threading.BrokenBarrierError):
                checked.wait()
        return found

    monkeypatch.setattr(services, "_occupant", occupant_then_pause)
    outcomes: dict[str, object] = {}

    def attempt(specimen_id: int) -> None:
        try:
            specimen = Specimen.objects.get(pk=specimen_id)
            start.wait()
            services.specimen_store(specimen=specimen, box=box, row=5, column=5, user=coordinator)
            outcomes[specimen.code] = "stored"
        except ValidationError as error:
            outcomes[specimen.code] = error
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcomes[str(specimen_id)] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(s.pk,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    winners = [code for code, outcome in outcomes.items() if outcome == "stored"]
    losers = {code: o for code, o in outcomes.items() if isinstance(o, ValidationError)}
    assert len(winners) == 1, outcomes
    assert len(losers) == 1, outcomes
    ((loser_code, error),) = losers.items()
    assert error.message_dict["position"] == [
        f"Position E5 of box RACE is already taken by specimen {winners[0]}."
    ]
    held = Specimen.objects.filter(box=box, row=5, column=5)
    assert [s.code for s in held] == winners
    loser = Specimen.objects.get(code=loser_code)
    assert (loser.state, loser.box_id) == ("collected", None)
    assert not CustodyEvent.objects.filter(specimen=loser, kind="stored").exists()
