"""The survival API (/api/v1/analytics/…): answers on a synthetic cohort that agree with the
statistics run directly on the scoped dataset, site scoping, permissions, every refusal as a
JSON 400 naming the parameter, a fuzzed query string that never gives a 500, and a query count
that does not grow with the number of patients."""

from datetime import date
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.throttling import UserRateThrottle

from analytics import selectors, survival, survival_surgery
from followup.models import Death
from tests.analytics.synthetic import synthetic_outcomes
from tests.factories.trial import UserFactory
from tests.factories.visits import synthetic_cohort
from trial.models import Role

TODAY = date(2026, 11, 24)
SURVIVAL = "/api/v1/analytics/survival/"
COX = "/api/v1/analytics/cox/"
SURGERY = "/api/v1/analytics/surgery-effect/"
# Session, user, permissions, site ids and the dataset's one query per source table: the same
# cap at 5 and at 40 patients.
MAX_QUERIES = 40


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()  # the per-user request counts of the throttle live in the cache
    yield
    cache.clear()


def _cohort(site, count: int, seed: int = 1, median_days: int = 360) -> list[int]:
    """`count` patients at `site` with outcomes. The synthetic cohort operates on every sixth
    patient from the 129th on (enrolled long enough ago): 300 patients give about 29."""
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site])
    ids = synthetic_cohort(site=site, count=count, today=TODAY, investigator=investigator)
    synthetic_outcomes(patient_ids=ids, today=TODAY, seed=seed, median_days=median_days)
    return ids


@pytest.fixture
def cohorts(site_a, site_b) -> dict[str, list[int]]:
    return {"a": _cohort(site_a, 300, seed=1), "b": _cohort(site_b, 60, seed=2)}


def _get(client, url: str, **params):
    response = client.get(url + ("?" + urlencode(params) if params else ""))
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response


def _frame(user, origin="enrollment"):
    return selectors.analysis_frame(user=user, origin=origin)


# --- answers ---------------------------------------------------------------------------------


def test_os_overall_is_km_summary_of_the_scoped_dataset(client_for, statistician, cohorts):
    response = _get(client_for(statistician), SURVIVAL, endpoint="os", at="180,365")
    assert response.status_code == 200, response.json()
    body = response.json()
    expected = survival.km_summary(_frame(statistician), at=(180, 365))
    assert body == {"endpoint": "os", "origin": "enrollment", "group_by": None,
                    "landmark_days": None, **expected}  # fmt: skip
    # Counted independently of the dataset: every patient of both sites, every death.
    assert body["n"] == len(cohorts["a"]) + len(cohorts["b"])
    assert body["events"] == Death.objects.count()
    assert 0 < body["events"] < body["n"]
    assert [p["day"] for p in body["survival_at"]] == [180, 365]
    assert body["timeline"][0]["at_risk"] == body["n"]


def test_group_by_resected_gives_both_groups_and_a_logrank_test(client_for, statistician, cohorts):
    body = _get(client_for(statistician), SURVIVAL, endpoint="os", group_by="resected").json()
    frame = _frame(statistician)
    assert body["group_order"] == ["not resected", "resected"]
    assert body["groups"]["resected"]["n"] == int(frame["resected"].sum())
    assert body["groups"]["not resected"]["n"] == int((~frame["resected"]).sum())
    assert body["logrank"]["df"] == 1
    assert 0 <= body["logrank"]["p"] <= 1


def test_rfs_counts_only_resected_patients(client_for, statistician, cohorts):
    body = _get(client_for(statistician), SURVIVAL, endpoint="rfs").json()
    frame = _frame(statistician)
    assert body["endpoint"] == "rfs"
    assert body["n"] == int(frame["rfs_days"].notna().sum()) == int(frame["resected"].sum())
    assert body["events"] == int(frame["rfs_event"].sum())


def test_landmark_keeps_patients_at_risk_and_counts_time_from_it(client_for, statistician, cohorts):
    body = _get(client_for(statistician), SURVIVAL, endpoint="os", landmark_days="120").json()
    frame = _frame(statistician)
    at_risk = frame[frame["os_days"] > 120]
    assert body["landmark_days"] == 120
    assert body["n"] == len(at_risk)
    assert body["events"] == int(at_risk["os_event"].sum())
    assert body["timeline"][-1]["time"] == int(at_risk["os_days"].max()) - 120


def test_landmark_with_group_by_resected_groups_by_surgery_before_it(
    client_for, statistician, cohorts
):
    frame = _frame(statistician)
    (day,) = {int(d) for d in frame["surgery_days"].dropna()}  # the cohort operates on one day
    client = client_for(statistician)
    body = _get(client, SURVIVAL, endpoint="os", landmark_days=day, group_by="resected").json()
    at_risk = frame[frame["os_days"] > day]
    assert body["groups"]["resected"]["n"] == int(at_risk["resected"].sum()) > 0
    # A day earlier nobody has been operated yet: the operated-later are not "resected".
    response = _get(client, SURVIVAL, endpoint="os", landmark_days=day - 1, group_by="resected")
    assert response.status_code == 400
    assert (
        "only one level among patients with data (not resected)" in (response.json()["group_by"][0])
    )


def test_origin_diagnosis_without_diagnosis_dates_is_a_400(client_for, statistician, cohorts):
    response = _get(client_for(statistician), SURVIVAL, endpoint="os", origin="diagnosis")
    assert response.status_code == 400
    assert "No patients with a duration" in response.json()["endpoint"][0]


def test_origin_first_cycle(client_for, statistician, cohorts):
    body = _get(client_for(statistician), SURVIVAL, endpoint="os", origin="first_cycle").json()
    frame = _frame(statistician, "first_cycle")
    assert body["origin"] == "first_cycle"
    assert body["n"] == int(frame["os_days"].notna().sum())


def test_cox_reports_hazard_ratios_against_named_reference_levels(
    client_for, statistician, cohorts
):
    response = _get(client_for(statistician), COX, endpoint="os", covariates="sex,ecog,liver_mets")
    assert response.status_code == 200, response.json()
    body = response.json()
    expected = survival.cox(_frame(statistician), covariates=["sex", "ecog", "liver_mets"])
    assert body == {"endpoint": "os", "origin": "enrollment", **expected}
    assert body["reference_levels"] == {"sex": "M", "ecog": "0", "liver_mets": "<=3"}
    assert {(c["name"], c["level"]) for c in body["covariates"]} == {
        ("sex", "F"), ("ecog", "1"), ("ecog", "2"), ("liver_mets", ">3")
    }  # fmt: skip
    assert len(body["ph_test"]["covariates"]) == 4


def test_surgery_effect_three_ways(client_for, statistician, cohorts):
    response = _get(client_for(statistician), SURGERY, endpoint="os", landmark_days="60,120")
    assert response.status_code == 200, response.json()
    body = response.json()
    expected = survival_surgery.surgery_effect(_frame(statistician), landmarks=(60, 120))
    assert body == {"endpoint": "os", "origin": "enrollment", **expected}
    assert body["naive"]["biased"] is True
    assert [lm["landmark_day"] for lm in body["landmark"]] == [60, 120]
    assert body["time_varying"]["hr"] > 0


# --- scoping and permissions -----------------------------------------------------------------


def test_an_investigator_sees_only_their_sites_patients(client_for, investigator, cohorts):
    body = _get(client_for(investigator), SURVIVAL, endpoint="os").json()
    assert body["n"] == len(cohorts["a"])
    assert body["events"] == Death.objects.filter(patient_id__in=cohorts["a"]).count()
    by_site = _get(client_for(investigator), SURVIVAL, endpoint="os", group_by="site").json()
    assert by_site.get("site") is None  # one site only: nothing to compare …
    assert "only one level" in by_site["group_by"][0]  # … and said so


def test_group_by_site_for_a_statistician_of_two_sites(client_for, statistician, cohorts):
    body = _get(client_for(statistician), SURVIVAL, endpoint="os", group_by="site").json()
    assert body["groups"]["SITEA"]["n"] == len(cohorts["a"])
    assert body["groups"]["SITEB"]["n"] == len(cohorts["b"])


@pytest.mark.parametrize("role", ["statistician", "investigator", "data_manager"])
@pytest.mark.parametrize("url", [SURVIVAL + "?endpoint=os", COX + "?endpoint=os&covariates=sex"])
def test_analytics_roles_are_allowed(request, client_for, cohorts, role, url):
    response = client_for(request.getfixturevalue(role)).get(url)
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("url", [SURVIVAL, COX, SURGERY])
def test_anonymous_gets_401_and_a_coordinator_403(client, client_for, coordinator, url):
    response = client.get(url + "?endpoint=os")
    assert response.status_code == 401
    assert response["WWW-Authenticate"]
    assert "credentials were not provided" in response.json()["detail"]
    response = client_for(coordinator).get(url + "?endpoint=os")
    # The access matrix (trial/middleware.py) refuses before the view's own permission class.
    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_only_get(client_for, statistician):
    response = client_for(statistician).post(SURVIVAL + "?endpoint=os", {})
    assert response.status_code == 405
    assert "detail" in response.json()


def test_throttled_per_user_with_a_json_answer(client_for, statistician, cohorts, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "rate", "2/min", raising=False)
    client = client_for(statistician)
    assert [client.get(SURVIVAL + "?endpoint=os").status_code for _ in range(2)] == [200, 200]
    response = client.get(SURVIVAL + "?endpoint=os")
    assert response.status_code == 429
    assert "throttled" in response.json()["detail"]
    assert response["Retry-After"]


def test_an_unexpected_error_is_a_logged_json_500(client_for, statistician, cohorts, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(survival, "km_summary", broken)
    response = client_for(statistician).get(SURVIVAL + "?endpoint=os")
    assert response.status_code == 500
    assert response.json() == {
        "detail": "The server could not answer this request; the error has been logged."
    }


# --- bad requests ----------------------------------------------------------------------------

BAD_REQUESTS = [
    (SURVIVAL, {}, "endpoint", "Choose the endpoint: os or rfs."),
    (SURVIVAL, {"endpoint": "pfs"}, "endpoint", "'pfs' is not an endpoint: choose os or rfs."),
    (SURVIVAL, {"endpoint": "os", "group_by": "eye_colour"}, "group_by",
     "Unknown group 'eye_colour' for group_by"),
    (SURVIVAL, {"endpoint": "os", "origin": "birth"}, "origin",
     "'birth' is not an origin for overall survival: choose enrollment, diagnosis, first_cycle."),
    (SURVIVAL, {"endpoint": "os", "at": "180,a year"}, "at",
     "'a year' is not a whole number of days."),
    (SURVIVAL, {"endpoint": "os", "at": "-5"}, "at", "Days must be 0 or more"),
    (SURVIVAL, {"endpoint": "os", "at": ""}, "at", "No days given"),
    (SURVIVAL, {"endpoint": "os", "landmark_days": "soon"}, "landmark_days",
     "'soon' is not a whole number of days."),
    (SURVIVAL, {"endpoint": "os", "landmark_days": "90,180"}, "landmark_days",
     "Give one landmark day here"),
    (SURVIVAL, {"endpoint": "os", "landmark_days": "100000"}, "landmark_days",
     "Nobody is still at risk 100000 days into OS"),
    (SURVIVAL, {"endpoint": "os", "groupby": "sex"}, "groupby", "Unknown parameter 'groupby'"),
    (SURVIVAL, {"endpoint": "rfs", "group_by": "resected"}, "group_by", "only one level"),
    (COX, {"endpoint": "os"}, "covariates", "Choose at least one covariate"),
    (COX, {"endpoint": "os", "covariates": "sex,shoe_size"}, "covariates",
     "Unknown covariate 'shoe_size'"),
    (COX, {"endpoint": "os", "covariates": "age"}, "covariates",
     "Covariate 'age' is constant (60)"),
    (COX, {"endpoint": "os", "origin": "x", "covariates": "sex"}, "origin", "'x' is not an origin"),
    (SURGERY, {"endpoint": "rfs"}, "endpoint", "measured on overall survival only"),
    (SURGERY, {"endpoint": "os", "landmark_days": "90,x"}, "landmark_days",
     "'x' is not a whole number of days."),
    (SURGERY, {}, "endpoint", "Choose the endpoint: os."),
]  # fmt: skip


@pytest.mark.parametrize(("url", "params", "field", "message"), BAD_REQUESTS)
def test_bad_requests_are_400_naming_the_parameter(
    client_for, statistician, cohorts, url, params, field, message
):
    response = _get(client_for(statistician), url, **params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field], body
    assert message in body[field][0], body


def test_a_repeated_parameter_is_refused(client_for, statistician):
    response = client_for(statistician).get(SURVIVAL + "?endpoint=os&endpoint=rfs")
    assert response.status_code == 400
    assert response.json() == {"endpoint": ["Give 'endpoint' once."]}


@pytest.fixture
def no_deaths_site(site_a):
    """Patients at site A alive at their last contact: no events at all."""
    investigator = UserFactory(roles=[Role.INVESTIGATOR], sites=[site_a])
    return synthetic_cohort(site=site_a, count=12, today=TODAY, investigator=investigator)


@pytest.mark.parametrize(
    ("url", "params", "field", "message"),
    [
        (SURVIVAL, {"endpoint": "os"}, "endpoint", "No deaths among the 12 patients"),
        (SURVIVAL, {"endpoint": "os", "group_by": "sex"}, "endpoint", "log-rank test need"),
        (COX, {"endpoint": "os", "covariates": "sex"}, "endpoint", "a Cox model needs"),
        (SURGERY, {"endpoint": "os"}, "endpoint", "comparing survival needs"),
        (SURVIVAL, {"endpoint": "os", "group_by": "ecog"}, "group_by", "No patients with data"),
    ],
)
def test_no_events_or_no_data_is_a_400(
    client_for, investigator, no_deaths_site, url, params, field, message
):
    response = _get(client_for(investigator), url, **params)
    assert response.status_code == 400
    assert message in response.json()[field][0], response.json()


def test_too_few_events_for_cox_is_a_400(client_for, investigator, site_a):
    ids = _cohort(site_a, 20, seed=3, median_days=30)
    deaths = Death.objects.filter(patient_id__in=ids).count()
    assert 0 < deaths < 2 * 5  # sex, ecog 1 and 2, liver_mets, regimen: 5 parameters
    response = _get(
        client_for(investigator), COX, endpoint="os", covariates="sex,ecog,liver_mets,regimen"
    )
    assert response.status_code == 400
    assert "Too few deaths for this model" in response.json()["covariates"][0]


def test_a_user_without_sites_gets_a_400_not_a_500(client_for, cohorts):
    lonely = UserFactory(roles=[Role.STATISTICIAN])
    response = _get(client_for(lonely), SURVIVAL, endpoint="os")
    assert response.status_code == 400
    assert "nothing to analyse" in response.json()["endpoint"][0]


# --- fuzz ------------------------------------------------------------------------------------

NAMES = ["endpoint", "group_by", "origin", "at", "landmark_days", "covariates", "format", "x"]
VALUES = st.one_of(
    st.sampled_from(
        ["os", "rfs", "", "enrollment", "diagnosis", "first_cycle", "0", "1", "90,180",
         "180,365,730", "-1", "1e3", "99999999999999999999", "sex", "age,sex,ecog", "resected",
         "ecog", "site", "r_status", "liver_mets", "ca19_9_response", "best_response",
         "json", "age", ",", "nan", "inf", "regimen,cohort"]
    ),
    st.text(max_size=12),
    st.integers(-10**6, 10**6).map(str),
)  # fmt: skip
QUERIES = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=5)


@pytest.mark.parametrize("url", [SURVIVAL, COX, SURGERY])
def test_fuzzed_query_strings_never_give_a_500(client_for, statistician, site_a, url):
    _cohort(site_a, 40, seed=4)
    client = client_for(statistician)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(QUERIES)
    def check(query):
        cache.clear()
        response = client.get(url + "?" + urlencode(query))
        assert response.status_code in (200, 400), (query, response.content[:300])
        body = response.json()
        if response.status_code == 400:
            assert isinstance(body, dict)
            assert body
            assert all(isinstance(m, list) and all(isinstance(x, str) for x in m)
                       for m in body.values()), body  # fmt: skip

    check()


# --- queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        SURVIVAL + "?endpoint=os&group_by=resected",
        SURVIVAL + "?endpoint=rfs&landmark_days=30",
        COX + "?endpoint=os&covariates=sex,ecog",
        SURGERY + "?endpoint=os&landmark_days=30,60",
    ],
)
def test_query_count_does_not_grow_with_patients(
    client_for, investigator, site_a, query, django_assert_max_num_queries
):
    client = client_for(investigator)
    counts = []
    for count in (5, 35):  # 5, then 40 patients
        _cohort(site_a, count, seed=count)
        with django_assert_max_num_queries(MAX_QUERIES) as captured:
            response = client.get(query)
        assert response.status_code in (200, 400)  # a small cohort may have too few events
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
