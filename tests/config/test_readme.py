"""The README is the operator manual: it must keep up with the settings, compose and demo data."""

import re

import pytest

from tests.config import BASE_DIR, settings_variables
from trial import demo

README = (BASE_DIR / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


@pytest.mark.parametrize("name", sorted(settings_variables()))
def test_every_settings_variable_is_in_the_configuration_table(name):
    assert f"| `{name}` |" in _section("Configuration")


def test_every_compose_variable_is_documented():
    compose = (BASE_DIR / "docker-compose.yml").read_text()
    names = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", compose))
    configuration = _section("Configuration")
    missing = sorted(name for name in names if f"| `{name}` |" not in configuration)
    assert not missing, f"docker-compose.yml uses {missing}, not in the README's configuration"


def test_the_demo_logins_match_the_demo_data():
    logins = _section("Quick start")
    assert f"`{demo.DEMO_PASSWORD}`" in logins
    for username, role, sites, _staff in demo.DEMO_USERS:
        row = next(line for line in logins.splitlines() if line.startswith(f"| `{username}` |"))
        assert str(role.label) in row
        assert ("all" if sites == ["*"] else ", ".join(sites)) in row


def test_the_quick_start_is_make_run_and_make_test():
    quick_start = _section("Quick start")
    assert "```sh\nmake run\n```" in quick_start
    assert "```sh\nmake test\n```" in quick_start
    assert "seed_demo --patients 60 --seed 2025" in quick_start
    makefile = (BASE_DIR / "Makefile").read_text()
    assert re.search(r"^DEMO_PATIENTS \?= 60$", makefile, re.M)
    assert re.search(r"^DEMO_SEED \?= 2025$", makefile, re.M)
