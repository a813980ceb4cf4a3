"""The access matrix, checked against the running application: every URL pattern (the admin
aside) × every role and an anonymous visitor × a record of the user's own site and of another
site → the answer trial.access predicts, and every refused write leaves the data as it was.

Generated from the URL resolver, so a new endpoint fails here until trial/access.py has its
rule and tests/access/world.py knows what its URL keywords name. The counts are printed in
pytest's summary ("access matrix: … checks, 0 failures").
"""

import time

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from tests.access.stats import COUNTS, FAILURES
from tests.access.world import (
    ANONYMOUS,
    EXPECTED_OK,
    OTHER,
    OWN,
    QUERIES,
    VISITORS,
    build_world,
    data_snapshot,
    unmapped,
    url_kwargs,
)
from trial import access
from trial.middleware import is_api

ENTRIES = access.url_entries()
OK, LOGIN = "ok", "login page"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, access_middleware):
    """The world and a logged-in client per role (and an anonymous one), built once for the
    module inside a transaction rolled back at its end; each test rolls back its own writes."""
    with django_db_blocker.unblock(), transaction.atomic():
        started = time.perf_counter()
        built = build_world()
        COUNTS["world_ms"] = int((time.perf_counter() - started) * 1000)
        clients = {}
        for role, user in built.users.items():
            clients[role] = Client()
            clients[role].force_login(user)
        clients[ANONYMOUS] = Client()
        yield built, clients
        transaction.set_rollback(True)


def expected_answer(
    rule: access.Rule, visitor: str, *, write: bool, site: str, api: bool, kwargs: dict
) -> str | int:
    """What the matrix says `visitor` gets: OK, LOGIN, or a status code."""
    if visitor == ANONYMOUS:
        if access.anonymous_allows(rule):
            return OK
        return 401 if api else LOGIN
    if not access.role_allows(visitor, rule, write=write, kwargs=kwargs):
        return 403
    if site == OTHER and rule.scope == access.SITE:
        return 404
    return OK


def _matches(response, expected: str | int, name: str, rule: access.Rule) -> bool:
    status = response.status_code
    location = response.get("Location", "")
    to_login = status == 302 and location.startswith(reverse("login"))
    if expected == OK:
        if name in EXPECTED_OK:
            return status in EXPECTED_OK[name]
        # A signed-in user sent to the login page was refused; a public page (the code step
        # of a login that is not under way) may send anyone there.
        redirect = 300 <= status < 400 and (rule.public or not to_login)
        return 200 <= status < 300 or redirect or status == 405
    if expected == LOGIN:
        return to_login
    return status == expected


def _read(response) -> None:
    """Finish a streamed answer (exports), so that it runs to its end. (The test client closes
    every other answer itself; closing one again would fire request_finished, whose
    close_old_connections would drop the connection the module's transaction runs on.)"""
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)


def test_every_url_has_a_rule_and_its_keywords_a_value():
    problems = [
        f"{entry.name or entry.route}: no rule in trial.access.RULES"
        for entry in ENTRIES
        if access.rule_for(entry.name) is None
    ]
    problems += [
        f"{entry.name}: no value for {missing} in tests/access/world.py"
        for entry in ENTRIES
        if entry.name and (missing := unmapped(entry.name, entry.kwargs))
    ]
    assert not problems, "\n".join(problems)


def test_the_admin_is_left_to_its_own_checks():
    assert all(not entry.exempt for entry in ENTRIES)
    assert any(entry.exempt for entry in access.url_entries(include_exempt=True))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name or e.route)
def test_url_answers_as_the_matrix_says(entry, world, db):
    built, clients = world
    rule = access.rule_for(entry.name)
    assert rule is not None, f"{entry.name or entry.route} has no rule in trial/access.py"
    missing = unmapped(entry.name, entry.kwargs)
    assert not missing, f"tests/access/world.py has no value for {missing} of {entry.name}"
    failures: list[str] = []
    COUNTS["urls"] += 1
    COUNTS["visitors"] = len(VISITORS)

    # GET, as every visitor, at the own site and (for URLs that name a site's record) another.
    sites = (OWN, OTHER) if rule.scope == access.SITE else (OWN,)
    own_status: dict[str, int] = {}
    for site in sites:
        kwargs = url_kwargs(entry.name, entry.kwargs, built.sites[site])
        url = reverse(entry.name, kwargs=kwargs)
        query = QUERIES.get(entry.name, {})
        api = is_api(url, entry.name)
        for visitor in VISITORS:
            expected = expected_answer(
                rule, visitor, write=False, site=site, api=api, kwargs=kwargs
            )
            response = clients[visitor].get(url, query)
            _read(response)
            COUNTS["get"] += 1
            COUNTS["get_other"] += site == OTHER
            if site == OWN:
                own_status[visitor] = response.status_code
            elif expected == 404 and own_status.get(visitor) == 405:
                # No GET here at all (POST only): the method is refused before any lookup.
                expected = 405
            if not _matches(response, expected, entry.name, rule):
                failures.append(
                    f"{visitor} GET {url} ({site} site): expected {expected}, "
                    f"got {response.status_code} {response.get('Location', '')}"
                )

    # POST with an empty body, as every visitor the matrix refuses a write: refused, and not
    # one row of the project's tables written.
    kwargs = url_kwargs(entry.name, entry.kwargs, built.sites[OWN])
    url = reverse(entry.name, kwargs=kwargs)
    api = is_api(url, entry.name)
    refused = [
        visitor
        for visitor in VISITORS
        if (
            not access.anonymous_allows(rule)
            if visitor == ANONYMOUS
            else not access.role_allows(visitor, rule, write=True, kwargs=kwargs)
        )
    ]
    before = data_snapshot()
    for visitor in refused:
        expected = expected_answer(rule, visitor, write=True, site=OWN, api=api, kwargs=kwargs)
        response = clients[visitor].post(url)
        _read(response)
        COUNTS["post"] += 1
        if not _matches(response, expected, entry.name, rule):
            failures.append(
                f"{visitor} POST {url}: expected {expected}, got {response.status_code}"
            )
    if refused and data_snapshot() != before:
        failures.append(f"POST {url} by {', '.join(refused)} changed the data")
    FAILURES.extend(failures)
    assert not failures, "\n".join(failures)
