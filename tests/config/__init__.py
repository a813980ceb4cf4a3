"""Helpers for the deployment tests: the variables settings read, compose interpolation, and
running Django in a child process with a chosen settings module and environment.

Settings modules read the environment once, at import, so anything that depends on a
different environment (production's refusals, `check --deploy`) runs in a subprocess.
"""

import ast
import os
import re
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
SETTINGS_DIR = BASE_DIR / "config" / "settings"
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_list"}


@cache
def settings_variables() -> dict[str, set[str]]:
    """Every environment variable config/settings reads through the env helpers.

    Maps the variable's name to the settings files that read it, found by parsing the source,
    so a setting added later is picked up without touching the tests.
    """
    found: dict[str, set[str]] = {}
    for path in sorted(SETTINGS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ENV_HELPERS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.setdefault(node.args[0].value, set()).add(path.name)
    return found


class MissingVariable(LookupError):
    """A `${NAME:?message}` (or `${NAME?message}`) whose variable is not set."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: object, env: dict[str, str]) -> str:
    """Resolve `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`,
    `${NAME?error}` and `$$` the way docker compose does (no nesting, which the file avoids).
    """

    def resolve(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        is_set = name in env
        usable = bool(env.get(name)) if op and op.startswith(":") else is_set
        if op in (":-", "-"):
            return env[name] if usable else arg
        if op in (":?", "?"):
            if not usable:
                raise MissingVariable(name, arg)
            return env[name]
        return env.get(name, "")

    return _REFERENCE.sub(resolve, str(value))


def service_environment(service: dict) -> dict[str, str | None]:
    """A service's `environment`, in mapping form whether the file uses a mapping or a list."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.split("=", 1) for item in environment)
        return {pair[0]: (pair[1] if len(pair) == 2 else None) for pair in pairs}
    return {key: None if value is None else str(value) for key, value in environment.items()}


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_environment(settings_module: str, **variables: str) -> dict[str, str]:
    """This process's environment without any settings variable, plus `variables`.

    The developer's own DATABASE_URL, REDIS_URL, SECRET_KEY … never leak into the child, so
    each test states exactly what the child sees.
    """
    reserved = set(settings_variables()) | {"DJANGO_SETTINGS_MODULE"}
    env = {key: value for key, value in os.environ.items() if key not in reserved}
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env.update(variables)
    return env


def run_django(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `python <args>` from the project directory with `env`; capture text output."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
