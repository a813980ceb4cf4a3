"""Shared helpers of `bench/load.py` and `bench/faults.py`: a throw-away loopback stack and
simulated coordinators that use the pages the way a browser does.

Why a stack of its own: other people's tests use the machine's PostgreSQL (5432) and Redis
(6379), and these scripts stop and restart servers on purpose. So everything here is started
from scratch on 127.0.0.1 in a temporary directory (PostgreSQL on 5499, Redis on 6399,
gunicorn on 8499 unless told otherwise) and stopped again, even when a run fails.

What is here:

- `Stack`: initdb + pg_ctl, redis-server, `manage.py migrate`, gunicorn (config.wsgi) and
  Celery workers; stop/start of each for the fault scenarios; `close()` stops them all.
- `prepare_cohort`: sites, coordinators with passwords and e-mail, enrolled patients with a
  baseline (through the real services, `tests.factories.patients.baselined_patient`), one
  lab panel per patient to edit, and pairs of coordinators sharing a panel (the conflicts).
- `run_load`: N coordinator threads (stdlib `http.client`, no extra package) that log in
  through the login page (CSRF), then loop: new lab panel, new follow-up contact, an edit of
  their own panel with the version from the form, and now and then an edit of the pair's
  shared panel at the same moment as the partner (exactly one may win).
- `verify`: every acknowledged save (302 after POST) is in the database with its history row
  attributed to the user; no two acknowledged edits of one record share a version; no row
  without history; no panel without results; the audit chain verifies.
- `SlowFileEmailBackend` and `python -m bench.loopback worker …`: a Celery worker of the
  project's app (`config.celery.app`, what `celery -A config worker` starts) whose mail
  backend is Django's file backend, made slow so a test can kill the worker mid-send.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "loopback-load-2026"  # of the throw-away coordinators only
CONFLICT_TEXT = "after you opened it"  # trial.services.StaleRecordError's message
# The analytes every posted panel fills (normal values: no extreme to confirm).
PANEL_VALUES = {"wbc": "5.2", "hemoglobin": "128", "platelets": "210", "alt": "31", "ast": "27"}


# --- the stack ------------------------------------------------------------------------------


def _wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Stack:
    """Throw-away PostgreSQL, Redis, gunicorn and Celery workers on 127.0.0.1.

    Every process started here is remembered by its id (gunicorn and workers in their own
    process group) and stopped by `close()`; the temporary directory is removed with them.
    """

    def __init__(
        self,
        *,
        pg_port: int = 5499,
        redis_port: int = 6399,
        web_port: int = 8499,
        keep: bool = False,
    ) -> None:
        for port in (pg_port, redis_port, web_port):
            if _port_open(port):
                raise RuntimeError(f"127.0.0.1:{port} is in use: pick other ports.")
        self.pg_port, self.redis_port, self.web_port = pg_port, redis_port, web_port
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="plm-loopback-"))
        self.tmp.chmod(0o755)  # the postgres user must reach its data directory
        self.pgdata = self.tmp / "pgdata"
        self.mail_root = self.tmp / "mail"
        self.mail_root.mkdir()
        self.gunicorn: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.database_url = f"postgres://postgres@127.0.0.1:{pg_port}/plm_load"
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"

    # environment -----------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every process of the stack (and of the calling script)."""
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.local",
            DEBUG="false",
            SECRET_KEY="loopback-" + "k" * 60,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(REPO),
            SITE_URL=f"http://127.0.0.1:{self.web_port}",
        )
        env.update(extra)
        return env

    def _as_postgres(self, *cmd: str) -> list[str]:
        if os.geteuid() == 0:  # initdb refuses root
            return ["runuser", "-u", "postgres", "--", *cmd]
        return list(cmd)

    # PostgreSQL --------------------------------------------------------------------------------

    def pg_init(self) -> None:
        self.pgdata.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.pgdata, "postgres", "postgres")
        subprocess.run(
            self._as_postgres(
                str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust"
            ),
            check=True,
            capture_output=True,
        )
        self.pg_start()
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U"]
            + ["postgres", "plm_load"],
            check=True,
            capture_output=True,
        )

    def pg_start(self) -> None:
        options = f"-p {self.pg_port} -k {self.pgdata} -c listen_addresses=127.0.0.1"
        subprocess.run(
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-o", options, "-w")
            + ["-l", str(self.pgdata / "server.log"), "start"],
            check=True,
            capture_output=True,
        )

    def pg_stop(self, mode: str = "fast") -> None:
        subprocess.run(
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", mode)
            + ["-w", "stop"],
            check=False,
            capture_output=True,
        )

    # Redis ------------------------------------------------------------------------------------

    def redis_start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--daemonize", "yes"]
            + ["--dir", str(self.tmp), "--pidfile", str(self.tmp / "redis.pid")]
            + ["--logfile", str(self.tmp / "redis.log")],
            check=True,
            capture_output=True,
        )
        _wait_for(lambda: _port_open(self.redis_port), 10, "redis-server")

    def redis_stop(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"],
            check=False,
            capture_output=True,
        )
        _wait_for(lambda: not _port_open(self.redis_port), 10, "redis-server shutdown")

    def redis_flush(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "flushall"], check=True, capture_output=True
        )

    # Django -----------------------------------------------------------------------------------

    def migrate(self) -> None:
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO,
            env=self.env(),
            check=True,
        )

    def gunicorn_start(self, workers: int) -> None:
        # Django's error log (tracebacks while a server is down) goes to a file, not the screen.
        out = open(self.tmp / "gunicorn.out", "ab")  # noqa: SIM115 - closed below
        self.gunicorn = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "gunicorn"), "config.wsgi:application"]
            + ["--workers", str(workers), "--bind", f"127.0.0.1:{self.web_port}"]
            # --preload: Django is imported once, before the workers fork, so every worker is
            # ready when the port opens (without it each worker imports on its own, 10-15 s).
            + ["--preload", "--timeout", "30", "--graceful-timeout", "5"]
            + ["--error-logfile", str(self.tmp / "gunicorn.log")],
            cwd=REPO,
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        _wait_for(lambda: _port_open(self.web_port), 120, "gunicorn")
        for _ in range(2 * workers):  # first requests fill the URL and template caches
            Client(self.web_port, 60).request("GET", "/accounts/login/")

    def worker_start(
        self, name: str, *, mail_dir: Path, mail_delay: float, visibility_timeout: int = 0
    ) -> subprocess.Popen:
        """A Celery worker of config.celery.app (1 prefork child) whose mail goes to files in
        `mail_dir`, each message `mail_delay` seconds late; `visibility_timeout` (seconds, 0:
        the project's setting) is the broker option that decides when an unacknowledged task
        of a vanished worker is handed out again."""
        mail_dir.mkdir(parents=True, exist_ok=True)
        env = self.env(
            BENCH_MAIL_DIR=str(mail_dir),
            BENCH_MAIL_DELAY=str(mail_delay),
            BENCH_VISIBILITY_TIMEOUT=str(visibility_timeout),
            LOG_LEVEL="INFO",
        )
        log = open(self.tmp / f"worker-{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [str(PYTHON), "-m", "bench.loopback", "worker", name],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers[name] = proc
        return proc

    def worker_log(self, name: str) -> str:
        path = self.tmp / f"worker-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_children(self, name: str) -> list[int]:
        """Pids of the worker's pool processes (its direct children)."""
        pid = self.workers[name].pid
        path = Path(f"/proc/{pid}/task/{pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    @staticmethod
    def _stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 10) -> None:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def worker_kill(self, name: str) -> None:
        """SIGKILL to the worker's whole process group (main process and pool)."""
        self._stop_group(self.workers[name], signal.SIGKILL)

    def worker_stop(self, name: str) -> None:
        self._stop_group(self.workers[name])

    def close(self) -> None:
        """Stop everything this stack started, then remove its directory."""
        for proc in [*self.workers.values(), self.gunicorn]:
            if proc is not None:
                try:
                    self._stop_group(proc)
                except Exception as exc:  # noqa: BLE001 - keep cleaning up
                    print(f"cleanup: {exc}", file=sys.stderr)
        pidfile = self.tmp / "redis.pid"  # redis-server removes it when it shuts down
        if pidfile.exists():
            try:
                self.redis_stop()
            except Exception as exc:  # noqa: BLE001 - then by its pid
                print(f"cleanup: {exc}", file=sys.stderr)
            if pidfile.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pidfile.read_text()), signal.SIGKILL)
        if (self.pgdata / "postmaster.pid").exists():
            self.pg_stop("fast")
        if self.keep:
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def setup_django(stack: Stack) -> None:
    """Point this process at the stack (same environment as its servers) and set Django up."""
    os.environ.update(stack.env())
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


# --- the cohort -----------------------------------------------------------------------------


@dataclass
class Coordinator:
    username: str
    user_id: int
    site_code: str
    patients: list[int]
    panels: dict[int, int]  # own patient id -> the panel they edit


@dataclass
class Pair:
    """Two coordinators of one site who edit the same panel at the same moment."""

    first: int  # index in Cohort.coordinators
    second: int
    patient_id: int
    panel_id: int


@dataclass
class Cohort:
    coordinators: list[Coordinator]
    pairs: list[Pair]
    today: date


def prepare_cohort(*, coordinators: int, patients_each: int, sites: int = 2) -> Cohort:
    """Sites, coordinators (password PASSWORD, e-mail address) and their enrolled, baselined
    patients, each with one lab panel; coordinators 2k and 2k+1 share a site and a patient
    whose panel they both edit. Everything through the real services (audit rows included)."""
    from django.utils import timezone

    from assessments.models import LabPanel
    from tests.factories.labs import record_panel
    from tests.factories.patients import baselined_patient
    from tests.factories.trial import SiteFactory, UserFactory
    from trial.models import Role

    today = timezone.localdate()
    site_rows = [SiteFactory(code=f"LD{n + 1}", name=f"Load site {n + 1}") for n in range(sites)]
    result: list[Coordinator] = []
    users = []
    for index in range(coordinators):
        site = site_rows[(index // 2) % sites]
        user = UserFactory(
            username=f"load{index + 1:02d}",
            email=f"load{index + 1:02d}@example.org",
            password=PASSWORD,
            roles=[Role.COORDINATOR],
            sites=[site],
        )
        users.append(user)
        own, panels = [], {}
        for _ in range(patients_each):
            patient = baselined_patient(site=site, user=user, today=today)
            panel = record_panel(
                patient, user, today, context=LabPanel.Context.OTHER, today=today, platelets=200
            )
            own.append(patient.pk)
            panels[patient.pk] = panel.pk
        result.append(Coordinator(user.username, user.pk, site.code, own, panels))
    pairs = []
    for first in range(0, coordinators - 1, 2):
        user = users[first]
        site = site_rows[(first // 2) % sites]
        patient = baselined_patient(site=site, user=user, today=today)
        panel = record_panel(
            patient, user, today, context=LabPanel.Context.OTHER, today=today, platelets=200
        )
        pairs.append(Pair(first, first + 1, patient.pk, panel.pk))
    return Cohort(result, pairs, today)


# --- a browser without a browser ------------------------------------------------------------


class _FormParser(HTMLParser):
    """The POST forms of a page: every input, select and textarea with its current value."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: tuple[str, list] | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs_list: list) -> None:
        attrs = {k: (v if v is not None else "") for k, v in attrs_list}
        if tag == "form":
            self._form = {
                "method": attrs.get("method", "get").lower(),
                "action": attrs.get("action", ""),
                "fields": [],  # (name, value) as a browser would submit them
                "names": set(),
            }
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text").lower()
            self._form["names"].add(name)
            if kind in {"submit", "button", "image", "reset", "file"} or "disabled" in attrs:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in attrs:
                    self._form["fields"].append((name, attrs.get("value", "on")))
                return
            self._form["fields"].append((name, attrs.get("value", "")))
        elif tag == "select" and name:
            self._form["names"].add(name)
            self._select = (name, [])
        elif tag == "option" and self._select is not None:
            self._select[1].append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea" and name:
            self._form["names"].add(name)
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None and self._form is not None:
            name, options = self._select
            chosen = [value for value, selected in options if selected] or [
                value for value, _ in options[:1]
            ]
            self._form["fields"].extend((name, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form["fields"].append((self._textarea, "".join(self._text).lstrip("\n")))
            self._textarea = None


def page_form(body: str) -> dict[str, list[str]]:
    """The values the page's main POST form would submit (the POST form with a CSRF token and
    the most fields: not the language switch or the logout button)."""
    parser = _FormParser()
    parser.feed(body)
    forms = [
        f for f in parser.forms if f["method"] == "post" and "csrfmiddlewaretoken" in f["names"]
    ]
    if not forms:
        raise ValueError("no POST form on the page")
    chosen = max(forms, key=lambda f: len(f["names"]))
    values: dict[str, list[str]] = defaultdict(list)
    for name, value in chosen["fields"]:
        values[name].append(value)
    values["__names__"] = sorted(chosen["names"])
    return dict(values)


@dataclass
class Response:
    status: int
    body: str
    location: str
    seconds: float


class Client:
    """One user's browser: cookies kept, one connection per request (gunicorn's sync workers
    close it anyway), no redirect followed (a 302 after a POST is the acknowledgement)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, data: dict | None = None) -> Response:
        headers = {"Host": f"127.0.0.1:{self.port}", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urlencode(data, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", errors="replace")
            for raw in resp.headers.get_all("Set-Cookie") or []:
                jar = SimpleCookie()
                jar.load(raw)
                for key, morsel in jar.items():
                    self.cookies[key] = morsel.value
            location = urlsplit(resp.headers.get("Location", "")).path
            return Response(resp.status, text, location, time.monotonic() - started)
        finally:
            conn.close()

    def csrf(self) -> str:
        return self.cookies.get("csrftoken", "")


# --- the load -------------------------------------------------------------------------------


@dataclass
class Sample:
    """One HTTP request: what, when (seconds since the run started), result."""

    kind: str
    user: str
    start: float
    end: float
    status: int  # 0: no answer (timeout, connection refused or reset)
    error: str = ""


@dataclass
class Save:
    """One POST of a form and how it ended: ack (302), conflict, invalid (200 with errors),
    error (5xx or no answer)."""

    kind: str  # new_panel, new_contact, edit_panel, conflict
    user: str
    user_id: int
    token: str
    patient_id: int
    panel_id: int | None
    expected_version: int | None
    outcome: str
    start: float
    end: float
    round_key: str = ""
    detail: str = ""


@dataclass
class LoadLog:
    started_at: datetime
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    saves: list[Save] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample | None = None, save: Save | None = None) -> None:
        with self.lock:
            if sample is not None:
                self.samples.append(sample)
            if save is not None:
                self.saves.append(save)


def _snippet(body: str) -> str:
    errors = re.findall(r'class="[^"]*error[^"]*"[^>]*>(.*?)<', body, flags=re.S)
    text = " | ".join(html.unescape(e).strip() for e in errors if e.strip())
    return (text or re.sub(r"\s+", " ", body[:200]))[:300]


class _Coordinator(threading.Thread):
    def __init__(
        self,
        *,
        index: int,
        cohort: Cohort,
        port: int,
        timeout: float,
        t0: float,
        deadline: float,
        log: LoadLog,
        barriers: dict[int, tuple[threading.Barrier, Pair]],
    ) -> None:
        super().__init__(name=f"coordinator-{index}", daemon=True)
        self.me = cohort.coordinators[index]
        self.today = cohort.today.isoformat()
        self.client = Client(port, timeout)
        self.t0, self.deadline, self.log = t0, deadline, log
        self.pair = barriers.get(index)
        self.seq = 0

    def _call(self, kind: str, method: str, path: str, data: dict | None = None):
        start = time.monotonic() - self.t0
        try:
            resp = self.client.request(method, path, data)
        except (OSError, http.client.HTTPException) as exc:
            end = time.monotonic() - self.t0
            self.log.add(Sample(kind, self.me.username, start, end, 0, type(exc).__name__))
            return None, start
        end = time.monotonic() - self.t0
        self.log.add(Sample(kind, self.me.username, start, end, resp.status))
        return resp, start

    def _token(self, kind: str) -> str:
        self.seq += 1
        return f"{kind}:{self.me.username}:{self.seq}:{time.time_ns()}"

    def _login(self) -> bool:
        while time.monotonic() < self.deadline:
            page, _ = self._call("login GET", "GET", "/accounts/login/")
            if page is not None and page.status == 200:
                data = {
                    "csrfmiddlewaretoken": self.client.csrf(),
                    "username": self.me.username,
                    "password": PASSWORD,
                }
                resp, _ = self._call("login POST", "POST", "/accounts/login/", data)
                if resp is not None and resp.status == 302:
                    return True
            time.sleep(0.5)
        return False

    def _post(
        self,
        kind: str,
        form_path: str,
        changes: dict,
        *,
        patient_id: int,
        panel_id: int | None = None,
        round_key: str = "",
        barrier: threading.Barrier | None = None,
    ) -> None:
        """GET the form, fill it like a user (keeping the hidden version), POST it."""
        page, _ = self._call(f"{kind} GET", "GET", form_path)
        ok = page is not None and page.status == 200
        values: dict = {}
        if ok:
            values = page_form(page.body)
            values.pop("__names__")
            values.update({k: [v] for k, v in changes.items()})
            values["csrfmiddlewaretoken"] = [self.client.csrf()]
            values["save_complete"] = ["1"]
        if barrier is not None:  # both partners have read the same version: now both save
            barrier.wait()
        if not ok:
            time.sleep(0.5)  # a user reads the error page before trying again
            return
        version = values.get("version", [""])[0]
        expected = int(version) if version.isdigit() else None
        resp, start = self._call(f"{kind} POST", "POST", form_path, values)
        end = time.monotonic() - self.t0
        if resp is None:
            outcome, detail = "error", "no answer"
        elif resp.status == 302:
            outcome, detail = "ack", resp.location
        elif resp.status == 200 and CONFLICT_TEXT in html.unescape(resp.body):
            outcome, detail = "conflict", ""
        elif resp.status == 200:
            outcome, detail = "invalid", _snippet(resp.body)
        else:
            outcome, detail = "error", f"HTTP {resp.status}"
        if outcome == "error":
            time.sleep(0.5)
        self.log.add(
            save=Save(
                kind,
                self.me.username,
                self.me.user_id,
                changes.get("notes", ""),
                patient_id,
                panel_id,
                expected,
                outcome,
                start,
                end,
                round_key,
                detail,
            )
        )

    def run(self) -> None:
        if not self._login():
            return
        rounds = 0
        loop = 0
        try:
            while time.monotonic() < self.deadline:
                patient = self.me.patients[loop % len(self.me.patients)]
                base = f"/patients/{patient}"
                self._post(
                    "new_panel",
                    f"{base}/labs/new/",
                    {
                        "sampled_on": self.today,
                        "context": "other",
                        "notes": self._token("panel"),
                        **PANEL_VALUES,
                        "platelets": str(150 + loop % 100),
                    },
                    patient_id=patient,
                )
                self._post(
                    "new_contact",
                    f"{base}/followup/contacts/new/",
                    {
                        "contacted_on": self.today,
                        "mode": "phone",
                        "reached": "on",
                        "vital_status": "alive",
                        "ecog": "1",
                        "recurrence": "False",
                        "notes": self._token("contact"),
                    },
                    patient_id=patient,
                )
                if loop % 3 == 2:
                    panel = self.me.panels[patient]
                    self._post(
                        "edit_panel",
                        f"{base}/labs/{panel}/",
                        {
                            "platelets": str(100 + (self.seq % 200)),
                            "notes": self._token("edit"),
                            "change_reason": "Load test: corrected value",
                        },
                        patient_id=patient,
                        panel_id=panel,
                    )
                if loop % 4 == 3 and self.pair is not None:
                    barrier, pair = self.pair
                    rounds += 1
                    try:
                        self._post(
                            "conflict",
                            f"/patients/{pair.patient_id}/labs/{pair.panel_id}/",
                            {
                                "platelets": str(100 + (self.seq % 200)),
                                "notes": self._token("both"),
                                "change_reason": "Load test: same record, same moment",
                            },
                            patient_id=pair.patient_id,
                            panel_id=pair.panel_id,
                            round_key=f"{pair.panel_id}:{rounds}",
                            barrier=barrier,
                        )
                    except threading.BrokenBarrierError:
                        self.pair = None  # the partner stopped: no more shared rounds
                loop += 1
        finally:
            if self.pair is not None:
                self.pair[0].abort()


def run_load(
    cohort: Cohort,
    *,
    port: int,
    seconds: float,
    timeout: float = 30.0,
    events: list[tuple[float, callable]] | None = None,
) -> LoadLog:
    """All coordinators of `cohort` at once for `seconds` (after their login); `events` are
    (seconds after the start, callable) run from this thread during the load: the faults."""
    log = LoadLog(started_at=datetime.now(UTC))
    barriers: dict[int, tuple[threading.Barrier, Pair]] = {}
    for pair in cohort.pairs:
        barrier = threading.Barrier(2, timeout=timeout + 10)
        barriers[pair.first] = (barrier, pair)
        barriers[pair.second] = (barrier, pair)
    t0 = time.monotonic()
    deadline = t0 + seconds
    threads = [
        _Coordinator(
            index=i,
            cohort=cohort,
            port=port,
            timeout=timeout,
            t0=t0,
            deadline=deadline,
            log=log,
            barriers=barriers,
        )
        for i in range(len(cohort.coordinators))
    ]
    for thread in threads:
        thread.start()
    for at, action in sorted(events or [], key=lambda e: e[0]):
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        action()
    for thread in threads:
        thread.join(timeout=seconds + 3 * timeout + 60)
    log.seconds = time.monotonic() - t0
    return log


# --- statistics -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_rows(samples: list[Sample]) -> list[dict]:
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
    rows = []
    for kind in sorted(by_kind):
        items = by_kind[kind]
        ms = [(s.end - s.start) * 1000 for s in items if s.status]
        rows.append(
            {
                "kind": kind,
                "requests": len(items),
                "p50": percentile(ms, 50),
                "p95": percentile(ms, 95),
                "p99": percentile(ms, 99),
                "max": max(ms) if ms else float("nan"),
                "5xx": sum(1 for s in items if s.status >= 500),
                "no answer": sum(1 for s in items if s.status == 0),
            }
        )
    return rows


def latency_table(samples: list[Sample]) -> str:
    lines = [
        "| request | n | p50 ms | p95 ms | p99 ms | max ms | 5xx | no answer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in latency_rows(samples):
        lines.append(
            "| {kind} | {requests} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {max:.0f} | {5xx} | "
            "{no answer} |".format(**row)
        )
    return "\n".join(lines)


def outcome_counts(saves: list[Save]) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for save in saves:
        counts[save.kind][save.outcome] += 1
    return counts


# --- verification ---------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def verify(
    log: LoadLog, cohort: Cohort, *, exact_versions: bool = True, require_conflicts: bool = True
) -> list[Check]:
    """Count the rows against what the coordinators were told (see the module's doc).

    `exact_versions`: every shared or own panel's version is 1 + its acknowledged edits (no
    edit saved without an answer). False under faults, where a save may commit and its answer
    be lost; then the version may only be higher. `require_conflicts`: at least one round of
    simultaneous edits must have happened (False under faults, where rounds may be cut short).
    """
    from django.db import connections

    from assessments.models import LabPanel, LabResult
    from followup.models import FollowUpContact

    connections.close_all()  # the server may have restarted under this process's connection
    checks: list[Check] = []
    acked = [s for s in log.saves if s.outcome == "ack"]

    # 1. every acknowledged new record is there once, with a "+" history row by its user
    missing, unattributed, partial = [], [], []
    for model, kind in ((LabPanel, "new_panel"), (FollowUpContact, "new_contact")):
        saves = [s for s in acked if s.kind == kind]
        found = {
            row["notes"]: row
            for row in model.objects.filter(notes__in=[s.token for s in saves]).values(
                "pk", "notes", "created_by_id"
            )
        }
        history = set(
            model.history.filter(
                id__in=[r["pk"] for r in found.values()], history_type="+"
            ).values_list("id", "history_user_id")
        )
        for save in saves:
            row = found.get(save.token)
            if row is None:
                missing.append(save.token)
            elif (row["pk"], save.user_id) not in history:
                unattributed.append(save.token)
        if model is LabPanel:
            ids = [r["pk"] for r in found.values()]
            with_results = Counter(
                LabResult.objects.active()
                .filter(panel_id__in=ids)
                .values_list("panel_id", flat=True)
            )
            partial += [pk for pk in ids if with_results[pk] != len(PANEL_VALUES)]
    # ... and no panel anywhere in the database lacks results (a half-saved form)
    from django.db.models import Count, Q

    empty = list(
        LabPanel.objects.active()
        .annotate(n=Count("results", filter=Q(results__voided_at__isnull=True)))
        .filter(n=0)
        .values_list("pk", flat=True)
    )
    checks.append(
        Check(
            "no lab panel in the database without results (nothing half-saved)",
            not empty,
            f"{LabPanel.objects.active().count()} panels, {len(empty)} without results"
            + (f": {empty[:5]}" if empty else ""),
        )
    )
    new_count = sum(1 for s in acked if s.kind in {"new_panel", "new_contact"})
    checks.append(
        Check(
            "acknowledged new records in the database",
            not missing,
            f"{new_count - len(missing)}/{new_count} found"
            + (f"; missing e.g. {missing[:3]}" if missing else ""),
        )
    )
    checks.append(
        Check(
            "their creation is in the history, attributed to the user who saved",
            not unattributed,
            f"{new_count - len(missing) - len(unattributed)}/{new_count - len(missing)}"
            + (f"; not attributed e.g. {unattributed[:3]}" if unattributed else ""),
        )
    )
    checks.append(
        Check(
            "every posted panel has all its results",
            not partial,
            f"{len(partial)} panel(s) without their {len(PANEL_VALUES)} results"
            + (f": {partial[:5]}" if partial else ""),
        )
    )

    # 2. edits: each acknowledged edit is a "~" history row of its user at version + 1,
    #    and no two acknowledged edits of one panel started from the same version
    edits = [s for s in acked if s.kind in {"edit_panel", "conflict"}]
    history = set(
        LabPanel.history.filter(id__in={s.panel_id for s in edits}, history_type="~").values_list(
            "id", "notes", "history_user_id", "version"
        )
    )
    lost = [
        s.token
        for s in edits
        if (s.panel_id, s.token, s.user_id, (s.expected_version or 0) + 1) not in history
    ]
    checks.append(
        Check(
            "acknowledged edits in the history (user, version + 1)",
            not lost,
            f"{len(edits) - len(lost)}/{len(edits)}"
            + (f"; missing e.g. {lost[:3]}" if lost else ""),
        )
    )
    by_panel: dict[int, list[int]] = defaultdict(list)
    for save in edits:
        by_panel[save.panel_id].append(save.expected_version)
    shared = [p for p, versions in by_panel.items() if len(versions) != len(set(versions))]
    checks.append(
        Check(
            "no two acknowledged edits of one record share a version (no lost update)",
            not shared,
            f"{len(by_panel)} panels edited, {len(edits)} acknowledged edits"
            + (f"; shared versions on panels {shared[:5]}" if shared else ""),
        )
    )
    versions = dict(LabPanel.objects.filter(pk__in=by_panel).values_list("pk", "version"))
    wrong = [
        (pk, versions[pk], 1 + len(v))
        for pk, v in by_panel.items()
        if (versions[pk] != 1 + len(v) if exact_versions else versions[pk] < 1 + len(v))
    ]
    checks.append(
        Check(
            "each edited panel's version = 1 + its acknowledged edits"
            if exact_versions
            else "each edited panel's version >= 1 + its acknowledged edits",
            not wrong,
            f"{len(by_panel) - len(wrong)}/{len(by_panel)}"
            + (f"; (panel, version, expected) {wrong[:5]}" if wrong else ""),
        )
    )

    # 3. simultaneous edits of one record: exactly one of the two wins per round
    rounds: dict[str, list[Save]] = defaultdict(list)
    for save in log.saves:
        if save.kind == "conflict":
            rounds[save.round_key].append(save)
    complete = {k: v for k, v in rounds.items() if len(v) == 2}
    one_winner = [
        k
        for k, v in complete.items()
        if sorted(s.outcome for s in v) == ["ack", "conflict"]
        and v[0].expected_version == v[1].expected_version
    ]
    both_won = [k for k, v in complete.items() if [s.outcome for s in v] == ["ack", "ack"]]
    other = len(complete) - len(one_winner) - len(both_won)
    checks.append(
        Check(
            "same record, same version, same moment: exactly one wins, the other sees "
            "'changed by … after you opened it'",
            (bool(complete) or not require_conflicts) and not both_won and other == 0,
            f"{len(one_winner)}/{len(complete)} rounds with one winner; both saved: "
            f"{len(both_won)}; other endings: {other}",
        )
    )

    # 4. no row without history, and every row agrees with its latest history row
    orphans = {
        model.__name__: model.objects.exclude(pk__in=model.history.values("id")).count()
        for model in (LabPanel, LabResult, FollowUpContact)
    }
    checks.append(
        Check(
            "no row without history",
            not any(orphans.values()),
            ", ".join(f"{name} {n}" for name, n in orphans.items()),
        )
    )
    from trial import audit

    kinds: Counter = Counter()
    rows = 0
    for model in audit.history_models(
        ["assessments.LabPanel", "assessments.LabResult", "followup.FollowUpContact"]
    ):
        report = audit.verify_table(model)
        rows += report.rows_checked
        kinds.update(report.problem_kinds)
    connected = audit.is_connected()
    if not connected:
        # trial.apps does not connect the chain's receiver (yet): rows carry no hash, which
        # says nothing about the load; everything else verify_audit checks still counts.
        kinds.pop(audit.MISSING_HASH, None)
    checks.append(
        Check(
            "audit history agrees with every record (trial.audit.verify_table, as verify_audit)",
            not kinds,
            f"{rows} history rows; problems: {dict(kinds) or 'none'}"
            + (
                ""
                if connected
                else "; hash chain NOT checked: trial.audit.connect() is not "
                "called at start-up in this tree, so rows have no hash"
            ),
        )
    )
    return checks


# --- reporting ------------------------------------------------------------------------------


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pg = subprocess.run(
        [str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    redis = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split(" sha=")[0]
    return (
        f"{os.cpu_count()} cores ({cpu or platform.processor()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, {pg}, {redis}"
    )


LOAD_MD_HEAD = """# Load and fault tests (loopback only)

Written by `bench/load.py` (section "Load test") and `bench/faults.py` (section "Fault tests");
each run replaces its own section. Both start a throw-away PostgreSQL 15, Redis, gunicorn and
Celery workers on 127.0.0.1 (see the scripts' docstrings) and never touch the machine's
servers. Latencies are end to end from the simulated browsers, queueing included (20 users on
2 × cores gunicorn sync workers).

"""


def update_section(path: Path, marker: str, text: str) -> None:
    """Replace the section between `<!-- marker:begin -->` and `<!-- marker:end -->` in
    `path` (append it when absent), so each script keeps the latest result of its own."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = path.read_text() if path.exists() else LOAD_MD_HEAD
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.write_text(new)


# --- the Celery worker with a slow file mail backend ----------------------------------------


class SlowFileEmailBackend(FileEmailBackend):
    """Django's file backend (EMAIL_FILE_PATH), each message BENCH_MAIL_DELAY seconds late:
    the wait comes BEFORE the file is written, as with a slow SMTP server, so a worker killed
    while waiting has sent nothing."""

    def send_messages(self, email_messages):
        delay = float(os.environ.get("BENCH_MAIL_DELAY", "0") or 0)
        sent = 0
        for message in email_messages:
            if delay:
                time.sleep(delay)
            sent += super().send_messages([message])
        return sent


def mails_by_recipient(mail_dir: Path) -> Counter:
    """How many messages each address got, from the files of the file backend."""
    counts: Counter = Counter()
    for path in sorted(mail_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("To: "):
                counts[line[4:].strip()] += 1
    return counts


def _worker_main(name: str) -> None:
    """`python -m bench.loopback worker NAME`: config.celery.app's worker, one pool process,
    with SlowFileEmailBackend writing to BENCH_MAIL_DIR (and BENCH_VISIBILITY_TIMEOUT, when
    not 0, as the broker's visibility timeout)."""
    import django

    django.setup()
    from django.conf import settings

    settings.EMAIL_BACKEND = "bench.loopback.SlowFileEmailBackend"
    settings.EMAIL_FILE_PATH = os.environ["BENCH_MAIL_DIR"]
    from config.celery import app

    visibility = int(os.environ.get("BENCH_VISIBILITY_TIMEOUT", "0") or 0)
    if visibility:
        app.conf.broker_transport_options = {"visibility_timeout": visibility}
    app.worker_main(
        ["worker", "--pool", "prefork", "--concurrency", "1", "--hostname", f"{name}@loopback"]
        + ["--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    )


def dump(obj) -> str:
    return json.dumps(obj, default=str, indent=1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2])
    else:
        sys.exit("usage: python -m bench.loopback worker NAME  (started by bench/faults.py)")
