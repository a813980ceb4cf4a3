"""The Dockerfile and .dockerignore, read as text (no Docker engine here)."""

import json
import re

import pytest
import yaml

from tests.config import BASE_DIR


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (BASE_DIR / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            pairs.append((keyword.upper(), " ".join(arguments.split())))
    return pairs


def first(instructions, keyword: str) -> tuple[int, str]:
    return next((i, args) for i, (kw, args) in enumerate(instructions) if kw == keyword)


def test_the_image_is_python_3_11_slim(instructions):
    assert instructions[0] == ("FROM", "python:3.11-slim")


def test_dependencies_come_from_the_pinned_requirements(instructions):
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    assert any(re.search(r"pip install .*-r requirements\.txt", run) for run in runs)


def test_the_app_runs_as_an_unprivileged_user(instructions):
    users = [(i, args) for i, (keyword, args) in enumerate(instructions) if keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    index, user = users[-1]
    assert user.split(":")[0] not in {"root", "0"}
    install, _ = first(instructions, "RUN")
    assert index > install
    assert first(instructions, "CMD")[0] > index


def test_the_image_defaults_to_production_settings(instructions):
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in env


def test_no_secret_is_baked_into_the_image(instructions):
    for keyword, args in instructions:
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"SECRET_KEY|PASSWORD|DATABASE_URL|REDIS_URL", args), args


def test_the_default_command_is_the_compose_web_command(instructions):
    _, cmd = first(instructions, "CMD")
    web = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]["web"]
    assert [" ".join(word.split()) for word in json.loads(cmd)] == [
        " ".join(str(word).split()) for word in web["command"]
    ]


def test_secrets_and_local_state_stay_out_of_the_build_context():
    ignored = {
        line.strip()
        for line in (BASE_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", "var"} <= ignored
