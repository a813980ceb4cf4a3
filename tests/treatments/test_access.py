"""Who reaches the treatment pages: another site's patient is a 404 on every URL of the app (GET
and POST, nothing written); read-only roles see the pages but get 403 on every entry page."""

from datetime import timedelta

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone

import treatments.urls
from tests.factories.patients import baselined_patient
from tests.factories.treatments import cycle_given, line_started
from treatments import services
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, RegimenLine

DAY = timedelta(days=1)
MODELS = (RegimenLine, ChemoCycle, CycleDose, AdverseEvent)
READ_PAGES = {"treatment", "ae-list"}


def _snapshot() -> dict:
    state = {}
    for model in MODELS:
        state[model.__name__] = sorted(model._base_manager.values_list("pk", "version"))
        state[f"{model.__name__} history"] = model.history.count()
    return state


@pytest.fixture
def today():
    return timezone.localdate()


def _treated(site, user, today):
    """A patient with a line, two cycles and an adverse event (the second line is empty)."""
    patient = baselined_patient(site=site, user=user, today=today - 70 * DAY)
    line = line_started(patient, user=user, started_on=today - 75 * DAY, today=today)
    cycle_given(line, user=user, given_on=line.started_on, today=today)
    cycle_given(line, user=user, given_on=line.started_on + 28 * DAY, today=today)
    services.adverse_event_save(
        event=AdverseEvent(
            patient=patient,
            term="Fatigue",
            grade=2,
            onset_on=line.started_on + 3 * DAY,
            serious=False,
            attribution="probable",
            action_taken="none",
            outcome="recovering",
        ),
        user=user,
        today=today,
    )
    return patient


def _urls(patient) -> dict[str, str]:
    """Every URL of the treatments app for `patient`, found from the URL patterns."""
    ids = {
        "patient_id": patient.pk,
        "line_id": RegimenLine.objects.filter(patient=patient).latest("line_number").pk,
        "cycle_id": ChemoCycle.objects.filter(patient=patient).latest("given_on").pk,
        "event_id": AdverseEvent.objects.filter(patient=patient).first().pk,
    }
    urls = {}
    for pattern in treatments.urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        converters = pattern.pattern.converters
        unknown = set(converters) - set(ids)
        assert not unknown, f"add ids for {pattern.name}: {unknown}"
        urls[pattern.name] = reverse(
            f"treatments:{pattern.name}", kwargs={k: ids[k] for k in converters}
        )
    return urls


def _valid_post(name: str, patient, today) -> dict:
    """Data each page would save for `patient` (so a 404/403 is the access rule, not bad data)."""
    line = RegimenLine.objects.filter(patient=patient).latest("line_number")
    cycle = ChemoCycle.objects.filter(patient=patient).latest("given_on")
    event = AdverseEvent.objects.filter(patient=patient).first()
    reason = {"change_reason": "probe", "save_complete": "1"}
    if name == "line-new":
        return {
            "regimen": "mFOLFIRINOX",
            "started_on": today.isoformat(),
            "switch_reason": "progression",
            "save_complete": "1",
        }
    if name == "line-edit":
        return {
            "regimen": line.regimen,
            "started_on": line.started_on.isoformat(),
            "version": str(line.version),
            **reason,
        }
    if name in {"cycle-new", "cycle-edit"}:
        doses = list(CycleDose.objects.filter(cycle=cycle).order_by("id"))
        data = {
            "given_on": (cycle.given_on + 28 * DAY).isoformat(),
            "delay_days": "0",
            **reason,
        }
        if name == "cycle-edit":
            data.update(given_on=cycle.given_on.isoformat(), version=str(cycle.version), gcsf="on")
        for index, dose in enumerate(doses):
            data.update(
                {
                    f"doses-{index}-planned_mg_m2": str(dose.planned_mg_m2),
                    f"doses-{index}-given_mg": str(dose.given_mg),
                    f"doses-{index}-planned_days": str(dose.planned_days),
                    f"doses-{index}-given_days": str(dose.given_days),
                }
            )
            if name == "cycle-edit":
                data[f"doses-{index}-version"] = str(dose.version)
        return data
    if name in {"ae-new", "ae-edit"}:
        data = {
            "term": "Nausea",
            "grade": "1",
            "serious": "False",
            "onset_on": (today - 10 * DAY).isoformat(),
            "attribution": "possible",
            "action_taken": "none",
            "outcome": "recovering",
            **reason,
        }
        if name == "ae-edit":
            data["version"] = str(event.version)
        return data
    if name == "line-void":
        return {"void_reason": "probe", "version": str(line.version)}
    if name == "cycle-void":
        return {"void_reason": "probe", "version": str(cycle.version)}
    if name == "ae-void":
        return {"void_reason": "probe", "version": str(event.version)}
    return {}  # a read-only page


@pytest.fixture
def patient_b(site_b, coordinator_b, today):
    return _treated(site_b, coordinator_b, today)


def test_another_sites_patient_is_a_404_on_every_url(
    client_for, coordinator, site_a, patient_b, today
):
    _treated(site_a, coordinator, today)  # the coordinator's own patient, to be sure
    urls = _urls(patient_b)
    assert set(urls) >= {
        "treatment",
        "line-new",
        "line-edit",
        "line-void",
        "cycle-new",
        "cycle-edit",
        "cycle-void",
        "ae-list",
        "ae-new",
        "ae-edit",
        "ae-void",
    }
    client = client_for(coordinator)
    before = _snapshot()
    for name, url in urls.items():
        assert client.get(url).status_code == 404, name
        assert client.post(url, _valid_post(name, patient_b, today)).status_code == 404, name
    assert _snapshot() == before


def test_records_of_another_patient_are_a_404_under_an_own_patient(
    client_for, coordinator, site_a, patient_b, today
):
    own = _treated(site_a, coordinator, today)
    own_id, foreign = own.pk, _urls(patient_b)
    client = client_for(coordinator)
    for name, url in foreign.items():
        mixed = url.replace(f"/patients/{patient_b.pk}/", f"/patients/{own_id}/", 1)
        if name in {"treatment", "line-new", "ae-list", "ae-new"}:
            continue  # no record id in the URL
        assert client.get(mixed).status_code == 404, name


def test_the_patients_own_site_reaches_every_page(client_for, coordinator_b, patient_b, today):
    """The counterpart: the same probes from the patient's own site work, so the 404s above
    are the scoping, and each POST would have written."""
    client = client_for(coordinator_b)
    for name, url in _urls(patient_b).items():
        assert client.get(url).status_code == 200, name
    for name in ("cycle-edit", "ae-new", "ae-edit", "cycle-new", "line-new", "cycle-void"):
        url = _urls(patient_b)[name]
        before = _snapshot()
        response = client.post(url, _valid_post(name, patient_b, today))
        assert response.status_code == 302, (
            name,
            response.context and response.context["form"].errors,
        )
        assert _snapshot() != before, name


@pytest.mark.parametrize("role_user", ["statistician", "data_manager", "monitor"])
def test_read_only_roles_read_but_get_403_on_entry_pages(
    request, client_for, coordinator, site_a, today, role_user
):
    patient = _treated(site_a, coordinator, today)
    client = client_for(request.getfixturevalue(role_user))
    before = _snapshot()
    for name, url in _urls(patient).items():
        if name in READ_PAGES:
            page = client.get(url)
            assert page.status_code == 200, name
            html = page.content.decode()
            assert "/treatment/line/new/" not in html  # no buttons the user cannot use
            assert "/adverse-events/new/" not in html
            assert "/void/" not in html
            continue
        assert client.get(url).status_code == 403, name
        assert client.post(url, _valid_post(name, patient, today)).status_code == 403, name
    assert _snapshot() == before
    card = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Chemotherapy" in card


def test_the_site_admin_sees_no_clinical_treatment_data(
    client_for, coordinator, site_admin, site_a, today
):
    patient = _treated(site_a, coordinator, today)
    client = client_for(site_admin)
    for name, url in _urls(patient).items():
        assert client.get(url).status_code == 403, name


def test_an_investigator_may_enter_cycles(client_for, coordinator, investigator, site_a, today):
    patient = _treated(site_a, coordinator, today)
    client = client_for(investigator)
    url = _urls(patient)["cycle-new"]
    response = client.post(url, _valid_post("cycle-new", patient, today))
    assert response.status_code == 302
    assert ChemoCycle.objects.filter(patient=patient).latest("given_on").created_by == investigator
