"""The access matrix: one `Rule` per URL name, enforced for every request by
`trial.middleware.AccessMiddleware` and documented in docs/access-matrix.md
(`manage.py access_matrix`).

A rule says which Django permissions a GET/HEAD/OPTIONS needs (`read`) and which every other
method needs (`write`, the read permissions unless given), or that the URL is `public`
(anyone, signed in or not) or `login_only` (any signed-in user). `scope` says whether the URL
names a patient or record of one site ("site": a user of another site gets 404 from the view,
through trial.scoping) or not ("none").

What a role may do is derived, never typed twice: a role holds the permissions of
`trial.roles.ROLE_PERMISSIONS`, a rule names permissions, so "role × action × site" follows.
A URL without a rule is refused (403) and reported by the system check `trial.E001`, so a new
endpoint cannot go live unguarded. Django's admin (namespace "admin") is left out on purpose:
it enforces its own model permissions and staff status.

The views keep their own permission decorators and site scoping (defence in depth): this
module decides who may reach a URL at all, the view decides what they see there.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import checks
from django.urls import URLPattern, URLResolver, get_resolver

from trial.models import AuditedModel, Role
from trial.roles import ROLE_PERMISSIONS

__all__ = [
    "EXEMPT_NAMESPACES",
    "NONE",
    "READ_METHODS",
    "RULES",
    "SITE",
    "Rule",
    "UrlEntry",
    "role_allows",
    "rule_for",
    "url_entries",
    "user_allows",
]

Scope = Literal["site", "none"]
SITE: Scope = "site"
NONE: Scope = "none"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Django's admin checks staff status and model permissions itself (and site admins use it).
EXEMPT_NAMESPACES = frozenset({"admin"})


# A requirement is one permission ("app_label.codename"), alternatives of which any one is
# enough ("trial.raise_query|trial.answer_query"), or the view permission of the model whose
# "app_label.model_name" the URL carries in a keyword argument ("view:label").
ANY = "|"
MODEL_VIEW = "view:"
ANY_VIEW = "*.view_*"  # "some model's view permission", for the document (no URL kwargs)


def _check_requirement(requirement: str) -> None:
    for alternative in requirement.split(ANY):
        if alternative.startswith(MODEL_VIEW):
            if not alternative[len(MODEL_VIEW) :].isidentifier():
                raise ValueError(f"{alternative!r} does not name a URL keyword argument.")
        elif alternative.count(".") != 1:
            raise ValueError(f"{alternative!r} is not an 'app_label.codename' permission.")


@dataclass(frozen=True)
class Rule:
    """Who may reach one URL name. Exactly one of `public`, `login_only` or `read` is given.

    `read` and `write` are requirements, all of which must hold (see `ANY` and `MODEL_VIEW`).
    """

    read: tuple[str, ...] = ()
    write: tuple[str, ...] | None = None  # None: the read requirements
    public: bool = False
    login_only: bool = False
    scope: Scope = NONE

    def __post_init__(self) -> None:
        kinds = [bool(self.read), self.public, self.login_only]
        if sum(kinds) != 1:
            raise ValueError("A rule is exactly one of: public, login_only, read permissions.")
        if self.write is not None and not self.read:
            raise ValueError("Write permissions need read permissions.")
        for requirement in (*self.read, *(self.write or ())):
            _check_requirement(requirement)
        if self.scope not in (SITE, NONE):
            raise ValueError(f"Unknown scope {self.scope!r}.")

    def requirements(self, *, write: bool) -> tuple[str, ...]:
        """What a read (GET, HEAD, OPTIONS) or a write (any other method) needs."""
        if write and self.write is not None:
            return self.write
        return self.read

    @property
    def names_a_model(self) -> bool:
        """Whether a requirement depends on the model named in the URL."""
        return any(MODEL_VIEW in r for r in (*self.read, *(self.write or ())))


def _model_view_permission(label: object) -> str | None:
    """The view permission of the clinical model "app_label.model_name" (None: no such model,
    or not a clinical record)."""
    if not isinstance(label, str):
        return None
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    if not issubclass(model, AuditedModel):
        return None
    return f"{model._meta.app_label}.view_{model._meta.model_name}"


def _holds(
    has: Callable[[str], bool], rule: Rule, *, write: bool, kwargs: Mapping[str, object] | None
) -> bool:
    """Whether every requirement of `rule` holds for a holder of the permissions `has` answers
    for. Without `kwargs` (the document), a model's view permission counts as held when the
    holder may view at least one model."""
    for requirement in rule.requirements(write=write):
        met = False
        for alternative in requirement.split(ANY):
            if alternative.startswith(MODEL_VIEW):
                if kwargs is None:
                    met = has(ANY_VIEW)
                else:
                    permission = _model_view_permission(kwargs.get(alternative[len(MODEL_VIEW) :]))
                    # No such record model: nothing to protect; the view answers 404.
                    met = permission is None or has(permission)
            else:
                met = has(alternative)
            if met:
                break
        if not met:
            return False
    return True


def _rule(read: str | Iterable[str], write: str | Iterable[str] | None = None, *, scope=SITE):
    """A rule needing permissions; `read` and `write` take one label or several."""

    def labels(value):
        return (value,) if isinstance(value, str) else tuple(value)

    return Rule(read=labels(read), write=None if write is None else labels(write), scope=scope)


def _add(app: str, model: str) -> tuple[str, ...]:
    return (f"{app}.add_{model}",)


def _change(app: str, model: str) -> tuple[str, ...]:
    return (f"{app}.change_{model}",)


def _add_change(app: str, model: str) -> tuple[str, ...]:
    # Views of this kind create a record or edit the existing one: both may happen.
    return (f"{app}.add_{model}", f"{app}.change_{model}")


def _view(app: str, model: str) -> tuple[str, ...]:
    return (f"{app}.view_{model}",)


PUBLIC = Rule(public=True)
LOGIN_ONLY = Rule(login_only=True)
ANALYTICS = _rule("trial.view_analytics", scope=NONE)

RULES: dict[str, Rule] = {
    # --- the site itself -----------------------------------------------------------------
    "home": LOGIN_ONLY,  # redirects to the patient list, which checks its own rule
    "login": PUBLIC,
    "logout": PUBLIC,
    "set_language": PUBLIC,
    "health": PUBLIC,  # load balancers and the compose health check
    # --- patients ------------------------------------------------------------------------
    "patients:patient-list": _rule(_view("patients", "patient"), scope=NONE),
    "patients:candidate-new": _rule(
        ("patients.add_screening", "patients.add_patientidentity"), scope=NONE
    ),
    "patients:patient-detail": _rule(_view("patients", "patient")),
    "patients:screening-edit": _rule(_change("patients", "screening")),
    "patients:consent-new": _rule(_add("patients", "consent")),
    "patients:consent-edit": _rule(_add_change("patients", "consent")),
    "patients:consent-void": _rule(_change("patients", "consent")),
    "patients:enrollment-edit": _rule(_add_change("patients", "enrollment")),
    "patients:baseline-edit": _rule(_add_change("patients", "baseline")),
    "patients:withdrawal-edit": _rule(_add_change("patients", "withdrawal")),
    "patients:patient-history": _rule(_view("patients", "patient")),
    # --- treatments ----------------------------------------------------------------------
    "treatments:treatment": _rule(_view("treatments", "chemocycle")),
    "treatments:line-new": _rule(_add("treatments", "regimenline")),
    "treatments:line-edit": _rule(_change("treatments", "regimenline")),
    "treatments:line-void": _rule(_change("treatments", "regimenline")),
    "treatments:cycle-new": _rule(("treatments.add_chemocycle", "treatments.add_cycledose")),
    "treatments:cycle-edit": _rule(("treatments.change_chemocycle", "treatments.change_cycledose")),
    "treatments:cycle-void": _rule(_change("treatments", "chemocycle")),
    "treatments:ae-list": _rule(_view("treatments", "adverseevent")),
    "treatments:ae-new": _rule(_add("treatments", "adverseevent")),
    "treatments:ae-edit": _rule(_change("treatments", "adverseevent")),
    "treatments:ae-void": _rule(_change("treatments", "adverseevent")),
    # --- assessments ---------------------------------------------------------------------
    "assessments:lab-list": _rule(_view("assessments", "labpanel")),
    "assessments:lab-new": _rule(_add("assessments", "labpanel")),
    "assessments:lab-edit": _rule(_change("assessments", "labpanel")),
    "assessments:lab-void": _rule(_change("assessments", "labpanel")),
    "assessments:imaging-list": _rule(_view("assessments", "imagingstudy")),
    "assessments:imaging-new": _rule(_add("assessments", "imagingstudy")),
    "assessments:imaging-edit": _rule(_add_change("assessments", "imagingstudy")),
    "assessments:imaging-void": _rule(_change("assessments", "imagingstudy")),
    "assessments:evaluation-list": _rule(_view("assessments", "responseevaluation")),
    "assessments:evaluation-new": _rule(_add("assessments", "responseevaluation")),
    "assessments:evaluation-edit": _rule(_add_change("assessments", "responseevaluation")),
    "assessments:evaluation-void": _rule(_change("assessments", "responseevaluation")),
    # --- surgery (MDT decisions: investigators only, per trial.roles) ---------------------
    "surgery:surgery": _rule(_view("surgery", "operation")),
    "surgery:mdt-list": _rule(_view("surgery", "mdtdecision")),
    "surgery:mdt-new": _rule(_add("surgery", "mdtdecision")),
    "surgery:mdt-edit": _rule(_change("surgery", "mdtdecision")),
    "surgery:mdt-void": _rule(_change("surgery", "mdtdecision")),
    "surgery:operation": _rule(_add_change("surgery", "operation")),
    "surgery:pathology": _rule(_add_change("surgery", "pathology")),
    "surgery:discharge": _rule(_add_change("surgery", "discharge")),
    "surgery:complication-list": _rule(_view("surgery", "complication")),
    "surgery:complication-new": _rule(_add("surgery", "complication")),
    "surgery:complication-edit": _rule(_change("surgery", "complication")),
    "surgery:complication-void": _rule(_change("surgery", "complication")),
    "surgery:postop-labs": _rule(_view("assessments", "labpanel")),
    "surgery:postop-lab-new": _rule(_add("assessments", "labpanel")),
    "surgery:postop-lab-edit": _rule(_change("assessments", "labpanel")),
    # --- follow-up: the page, then new / edit / void of each record kind -----------------
    "followup:followup": _rule(_view("followup", "followupcontact")),
    **{
        f"followup:{kind}-{action}": _rule(
            _add("followup", model) if action == "new" else _change("followup", model)
        )
        for kind, model in (
            ("contact", "followupcontact"),
            ("recurrence", "recurrence"),
            ("death", "death"),
            ("lost", "losttofollowup"),
            ("treatment-end", "treatmentend"),
        )
        for action in ("new", "edit", "void")
    },
    # --- biobank: boxes and specimens belong to a site ------------------------------------
    "biobank:home": _rule(_view("biobank", "specimen"), scope=NONE),
    "biobank:box-detail": _rule(_view("biobank", "specimen")),
    "biobank:specimen-detail": _rule(_view("biobank", "specimen")),
    "biobank:specimen-label": _rule(_view("biobank", "specimen")),
    # POST only; the view also asks add_specimen for an aliquot (coordinators and
    # investigators hold both).
    "biobank:specimen-action": _rule(
        _view("biobank", "specimen"), ("biobank.view_specimen", "biobank.change_specimen")
    ),
    "biobank:patient-specimens": _rule(_view("biobank", "specimen")),
    "biobank:specimen-new": _rule(_add("biobank", "specimen")),
    # --- visits --------------------------------------------------------------------------
    "visits:worklist": _rule(_view("visits", "expectedvisit"), scope=NONE),
    "visits:visit-close": _rule(_add("visits", "visitclosure")),
    "visits:visit-reopen": _rule(_change("visits", "visitclosure")),
    # --- exchange (the retrospective import: data managers) ------------------------------
    "exchange:import": _rule("exchange.run_import", scope=NONE),
    # --- analytics pages (de-identified) --------------------------------------------------
    "analytics:dashboard": ANALYTICS,
    "analytics:stage-patients": ANALYTICS,
    "analytics:survival": ANALYTICS,
    "analytics:survival-figure": ANALYTICS,
    "analytics:surgery-effect": ANALYTICS,
    "analytics:surgery-effect-figure": ANALYTICS,
    "analytics:swimmer": ANALYTICS,
    "analytics:swimmer-figure": ANALYTICS,
    "analytics:waterfall": ANALYTICS,
    "analytics:waterfall-figure": ANALYTICS,
    "analytics:export-log": _rule("analytics.view_exportlog", scope=NONE),
    # --- accounts (trial/urls_accounts.py) ------------------------------------------------
    "accounts:verify": PUBLIC,  # the code step of a login in progress (no session user yet)
    "accounts:two-factor": LOGIN_ONLY,  # enrol a TOTP device
    "accounts:password-change": LOGIN_ONLY,
    "accounts:password-change-done": LOGIN_ONLY,
    "accounts:login-log": _rule("trial.view_login_log", scope=NONE),
    # --- data management under /quality/ (trial/urls_lifecycle, _queries, _audit) ---------
    # A record's page: reading needs the view permission of its form; its actions need
    # source-data verification, signing or locking (the view asks for the one it does).
    "quality:record": _rule(
        ("view:label",),
        ("view:label", "trial.verify_source|trial.sign_record|trial.lock_record"),
    ),
    "quality:casebook": _rule(
        _view("patients", "patient"),
        ("patients.view_patient", "trial.sign_record|trial.lock_record"),
    ),
    "quality:study-lock": _rule("trial.lock_record", scope=NONE),
    # Queries: monitors and data managers raise, close and re-open; coordinators and
    # investigators answer; both read.
    "quality:query-list": _rule("trial.raise_query|trial.answer_query", scope=NONE),
    "quality:query-detail": _rule("trial.raise_query|trial.answer_query"),
    "quality:query-new": _rule("trial.raise_query"),
    "quality:audit-patient": _rule("trial.view_audit"),
    "quality:audit-record": _rule("trial.view_audit"),
    # --- REST API /api/v1/ ---------------------------------------------------------------
    "api-token": PUBLIC,  # checks the password itself (and django-axes counts failures)
    # The OpenAPI description: for any signed-in user or token (SPECTACULAR_SETTINGS
    # SERVE_PERMISSIONS); the Swagger UI is the page for a browser session.
    "api-schema": LOGIN_ONLY,
    "api-docs": LOGIN_ONLY,  # Swagger UI for a browser session
    "analytics_api:survival": ANALYTICS,
    "analytics_api:cox": ANALYTICS,
    "analytics_api:surgery-effect": ANALYTICS,
    "exports_api:analysis-dataset": ANALYTICS,
    "exports_api:form": ANALYTICS,
    "exports_api:codebook": ANALYTICS,
    "exports_api:odm": ANALYTICS,  # audit=true also needs analytics.view_exportlog (view)
    # Records other systems send (exchange/api): POST to the collection creates (add); the
    # item is read (view) and changed or voided with PATCH, PUT, DELETE (change).
    **{
        f"records_api:{form}-{kind}": _rule(
            _view(app, model),
            tuple(f"{app}.{'add' if kind == 'list' else 'change'}_{m}" for m in (model, *extra)),
            scope=NONE if kind == "list" else SITE,
        )
        for form, app, model, extra in (
            ("lab_panels", "assessments", "labpanel", ()),
            ("followup_contacts", "followup", "followupcontact", ()),
            ("adverse_events", "treatments", "adverseevent", ()),
            ("cycles", "treatments", "chemocycle", ("cycledose",)),
            ("recurrences", "followup", "recurrence", ()),
            ("deaths", "followup", "death", ()),
        )
        for kind in ("list", "item")
    },
    # The index lists only the forms the user may read; an unknown form name is a 404.
    "forms_api:list": LOGIN_ONLY,
    "forms_api:unknown": LOGIN_ONLY,
    # One read endpoint per form of the export registry (analytics.exports.forms.FORMS).
    **{
        f"forms_api:{form}": _rule(_view(app, model), scope=NONE)
        for form, app, model in (
            ("patients", "patients", "patient"),
            ("screening", "patients", "screening"),
            ("consent", "patients", "consent"),
            ("enrollment", "patients", "enrollment"),
            ("baseline", "patients", "baseline"),
            ("withdrawal", "patients", "withdrawal"),
            ("regimen_lines", "treatments", "regimenline"),
            ("cycles", "treatments", "chemocycle"),
            ("doses", "treatments", "cycledose"),
            ("adverse_events", "treatments", "adverseevent"),
            ("lab_panels", "assessments", "labpanel"),
            ("lab_results", "assessments", "labresult"),
            ("imaging_studies", "assessments", "imagingstudy"),
            ("target_lesions", "assessments", "targetlesion"),
            ("evaluations", "assessments", "responseevaluation"),
            ("mdt_decisions", "surgery", "mdtdecision"),
            ("mdt_evidence", "surgery", "mdtevidence"),
            ("operations", "surgery", "operation"),
            ("pathology", "surgery", "pathology"),
            ("complications", "surgery", "complication"),
            ("discharges", "surgery", "discharge"),
            ("specimens", "biobank", "specimen"),
            ("custody_events", "biobank", "custodyevent"),
            ("followup_contacts", "followup", "followupcontact"),
            ("recurrences", "followup", "recurrence"),
            ("deaths", "followup", "death"),
            ("losses_to_followup", "followup", "losttofollowup"),
            ("treatment_ends", "followup", "treatmentend"),
            ("expected_visits", "visits", "expectedvisit"),
        )
    },
}


def rule_for(name: str | None) -> Rule | None:
    """The rule of URL name `name` ("app:url-name"), None when there is none."""
    return RULES.get(name) if name else None


def role_allows(
    role: str, rule: Rule, *, write: bool, kwargs: Mapping[str, object] | None = None
) -> bool:
    """Whether a user holding only `role` (a trial.models.Role value) may read or write a URL
    of `rule` (with the URL's `kwargs`, when a requirement depends on them), from
    trial.roles.ROLE_PERMISSIONS. The site is a separate question (the rule's scope)."""
    if rule.public or rule.login_only:
        return True
    held = ROLE_PERMISSIONS[Role(role)]

    def has(permission: str) -> bool:
        if permission == ANY_VIEW:
            return any(p.partition(".")[2].startswith("view_") for p in held)
        return permission in held

    return _holds(has, rule, write=write, kwargs=kwargs)


def anonymous_allows(rule: Rule) -> bool:
    """Whether someone who is not signed in may reach a URL of `rule` (either method)."""
    return rule.public


def user_allows(
    user: AbstractBaseUser | AnonymousUser,
    rule: Rule,
    *,
    write: bool,
    kwargs: Mapping[str, object],
) -> bool:
    """Whether `user` may read or write the URL of `rule` called with `kwargs` (an active
    superuser may do anything)."""
    if rule.public:
        return True
    if not user.is_authenticated:
        return False
    return rule.login_only or _holds(user.has_perm, rule, write=write, kwargs=kwargs)


# --- the URL patterns -----------------------------------------------------------------------


@dataclass(frozen=True)
class UrlEntry:
    """One URL pattern: its name ("ns:name", None when unnamed), its route and the names of
    the keyword arguments its route captures (not the fixed ones given in `path(..., {...})`)."""

    name: str | None
    route: str
    kwargs: tuple[str, ...]
    namespaces: tuple[str, ...] = ()

    @property
    def exempt(self) -> bool:
        return bool(self.namespaces) and self.namespaces[0] in EXEMPT_NAMESPACES


def _captured(pattern) -> tuple[str, ...]:
    converters = getattr(pattern, "converters", None)
    if converters:
        return tuple(converters)
    regex = getattr(pattern, "regex", None)
    return tuple(regex.groupindex) if regex is not None else ()


def _walk(
    patterns, prefix: str, namespaces: tuple[str, ...], kwargs: tuple[str, ...]
) -> Iterator[UrlEntry]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        captured = kwargs + _captured(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = namespaces + ((entry.namespace,) if entry.namespace else ())
            yield from _walk(entry.url_patterns, route, inner, captured)
        elif isinstance(entry, URLPattern):
            name = ":".join((*namespaces, entry.name)) if entry.name else None
            yield UrlEntry(name=name, route="/" + route, kwargs=captured, namespaces=namespaces)


def url_entries(*, include_exempt: bool = False) -> list[UrlEntry]:
    """Every URL pattern of the project in resolver order, one entry per URL name (the first
    pattern of a name that several share), without the admin unless `include_exempt`."""
    seen: set[str] = set()
    entries = []
    for entry in _walk(get_resolver().url_patterns, "", (), ()):
        if entry.exempt and not include_exempt:
            continue
        if entry.name is not None:
            if entry.name in seen:
                continue
            seen.add(entry.name)
        entries.append(entry)
    return entries


# --- system checks --------------------------------------------------------------------------


@checks.register(checks.Tags.urls, checks.Tags.security)
def check_access_rules(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """trial.E001: a URL pattern without a rule (it answers 403 to everyone) or without a name
    (no rule can name it); trial.W001: a rule naming no URL (a renamed or removed URL)."""
    messages: list[checks.CheckMessage] = []
    entries = url_entries()
    for entry in entries:
        if entry.name is None:
            messages.append(
                checks.Error(
                    f"The URL pattern {entry.route!r} has no name, so no access rule can name it.",
                    hint="Name it and add its rule to trial.access.RULES.",
                    obj=entry.route,
                    id="trial.E001",
                )
            )
        elif entry.name not in RULES:
            messages.append(
                checks.Error(
                    f"The URL {entry.name!r} ({entry.route}) has no access rule, so "
                    "trial.middleware.AccessMiddleware refuses it to everyone.",
                    hint="Add its Rule to trial.access.RULES and run manage.py access_matrix.",
                    obj=entry.name,
                    id="trial.E001",
                )
            )
    names = {entry.name for entry in entries}
    for name in sorted(set(RULES) - names):
        messages.append(
            checks.Warning(
                f"The access rule {name!r} names no URL.",
                hint="Remove it from trial.access.RULES or fix its name.",
                obj=name,
                id="trial.W001",
            )
        )
    return messages


# --- the matrix as a document (docs/access-matrix.md, manage.py access_matrix) ---------------

# The columns of the document: each role, in the order of trial.models.Role, then anonymous.
ROLE_COLUMNS: tuple[tuple[str, str], ...] = (
    (Role.COORDINATOR, "coordinator"),
    (Role.INVESTIGATOR, "investigator"),
    (Role.STATISTICIAN, "statistician"),
    (Role.MONITOR, "monitor"),
    (Role.DATA_MANAGER, "data manager"),
    (Role.SITE_ADMIN, "site admin"),
)
ANONYMOUS = "anonymous"

_INTRO = """\
# Access matrix

Generated by `python manage.py access_matrix` from `trial/access.py` (the rules) and
`trial/roles.py` (`ROLE_PERMISSIONS`, what each role holds); do not edit by hand. CI runs
`python manage.py access_matrix --check`, which fails when this file is out of date.

Every request passes `trial.middleware.AccessMiddleware`: the URL name picks its rule; a URL
without a rule is refused to everyone (403) and `manage.py check` reports it (`trial.E001`);
someone not signed in is sent to the login page (pages) or answered 401 (the JSON API and its
schema under `/api/`); a signed-in user without the permissions is answered 403 (JSON for the
API). The views check the same permissions again and scope every patient and record to the
user's sites.

- **R**: may read (GET, HEAD, OPTIONS); **W**: may send any other method (POST). Whether the
  URL offers that method at all is the view's business: a page that only displays answers a
  POST with 405, an action that is POST only answers a GET with 405.
- **\\***: only for the forms (models) whose view permission the role holds.
- **–**: refused (403; for anonymous: the login page, or 401 for the API).
- **scope** `site`: the URL names a patient or a record of one site; a user who may use the
  URL but does not work at that site gets 404, as if it did not exist. `none`: no site in the
  URL (lists and dashboards show only the user's sites).
- Django's admin (`/admin/`) is not in this table: it checks staff status and each model's
  permissions itself.
"""


def _mark(read: bool, write: bool, *, per_form: bool = False) -> str:
    marks = ("R" if read else "") + ("W" if write else "")
    if marks and per_form:
        marks += "*"
    return marks or "–"


def _requirement_text(requirement: str) -> str:
    texts = []
    for alternative in requirement.split(ANY):
        if alternative.startswith(MODEL_VIEW):
            texts.append(f"view permission of the form in `{alternative[len(MODEL_VIEW) :]}`")
        else:
            texts.append(f"`{alternative}`")
    return " or ".join(texts)


def _needs(rule: Rule) -> str:
    if rule.public:
        return "anyone"
    if rule.login_only:
        return "signed in"
    read = " and ".join(_requirement_text(r) for r in rule.read)
    if rule.write is None or rule.write == rule.read:
        return read
    return f"R: {read}; W: " + " and ".join(_requirement_text(r) for r in rule.write)


def matrix_markdown() -> str:
    """The access matrix as Markdown: one row per URL pattern (admin excluded), one column per
    role and for anonymous visitors, with the read/write marks, the scope and the permissions
    the rule needs. URLs without a rule are listed as refused to everyone."""
    header = ["URL", "name", "scope", *(label for _role, label in ROLE_COLUMNS), ANONYMOUS]
    header.append("needs")
    lines = [_INTRO, "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in url_entries():
        rule = rule_for(entry.name)
        route = entry.route.replace("|", "\\|")
        if rule is None:
            cells = ["–"] * (len(ROLE_COLUMNS) + 1)
            row = [f"`{route}`", f"`{entry.name}`", "", *cells, "**no rule: refused**"]
        else:
            cells = [
                _mark(
                    role_allows(role, rule, write=False),
                    role_allows(role, rule, write=True),
                    per_form=rule.names_a_model,
                )
                for role, _label in ROLE_COLUMNS
            ]
            cells.append(_mark(anonymous_allows(rule), anonymous_allows(rule)))
            row = [f"`{route}`", f"`{entry.name}`", rule.scope, *cells, _needs(rule)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
