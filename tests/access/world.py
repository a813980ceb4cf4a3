"""The world of the access-matrix test: two sites, one patient at each with one record of
every kind a URL takes the id of, a user of each role at the first site, and the keyword
arguments of every URL for either site.

The rows come from the per-app model factories (tests/factories), all tied to the one patient
of their site, so that `/patients/<patient>/treatment/cycle/<cycle>/` names a cycle of that
patient. A new URL keyword argument fails the test until `KWARGS` (or `DEFAULT_KWARGS`) says
which object it names.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.apps import apps
from django.db import connection

from tests.factories.biobank import CustodyEventFactory, SpecimenFactory, box_at
from tests.factories.followup import (
    DeathFactory,
    FollowUpContactFactory,
    LostToFollowUpFactory,
    RecurrenceFactory,
    TreatmentEndFactory,
)
from tests.factories.imaging import (
    ImagingStudyFactory,
    ResponseEvaluationFactory,
    TargetLesionFactory,
)
from tests.factories.labs import LabPanelFactory, LabResultFactory
from tests.factories.patients import (
    BaselineFactory,
    ConsentFactory,
    EnrollmentFactory,
    PatientFactory,
    PatientIdentityFactory,
    ScreeningFactory,
)
from tests.factories.surgery import (
    ComplicationFactory,
    DischargeFactory,
    MdtDecisionFactory,
    OperationFactory,
    PathologyFactory,
)
from tests.factories.treatments import (
    AdverseEventFactory,
    ChemoCycleFactory,
    CycleDoseFactory,
    RegimenLineFactory,
)
from tests.factories.trial import SiteFactory, UserFactory
from tests.factories.visits import ExpectedVisitFactory, VisitClosureFactory
from trial.models import Casebook, Cohort, Role
from trial.queries import query_raise

# The roles in the order of the document, then the anonymous visitor.
ROLES: tuple[str, ...] = tuple(Role.values)
ANONYMOUS = "anonymous"
VISITORS: tuple[str, ...] = (*ROLES, ANONYMOUS)
OWN, OTHER = "own", "other"


@dataclass
class SiteWorld:
    """One site's patient and records, by the names the kwargs mapping uses."""

    site: object
    patient: object
    records: dict[str, object] = field(default_factory=dict)

    def __getattr__(self, name: str):
        try:
            return self.__dict__["records"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass
class World:
    sites: dict[str, SiteWorld]  # OWN and OTHER
    users: dict[str, object]  # by role; every user works at the OWN site only


def _site_world(site, *, builder) -> SiteWorld:
    patient = PatientFactory(site=site, status="enrolled", cohort=Cohort.PROSPECTIVE)
    PatientIdentityFactory(patient=patient, site=site)
    Casebook.objects.create(patient=patient)
    r: dict[str, object] = {}
    ScreeningFactory(patient=patient)
    r["consent"] = ConsentFactory(patient=patient)
    EnrollmentFactory(patient=patient)
    BaselineFactory(patient=patient)
    r["line"] = RegimenLineFactory(patient=patient)
    r["cycle"] = ChemoCycleFactory(line=r["line"], patient=patient)
    CycleDoseFactory(cycle=r["cycle"])
    r["event"] = AdverseEventFactory(patient=patient)
    r["panel"] = LabPanelFactory(patient=patient)
    LabResultFactory(panel=r["panel"])
    r["imaging"] = ImagingStudyFactory(patient=patient)
    TargetLesionFactory(study=r["imaging"])
    r["evaluation"] = ResponseEvaluationFactory(patient=patient)
    r["decision"] = MdtDecisionFactory(patient=patient, investigator=builder)
    apps.get_model("surgery.MdtEvidence").objects.create(
        decision=r["decision"], evaluation=r["evaluation"]
    )
    r["operation"] = OperationFactory(patient=patient, mdt_decision=r["decision"])
    PathologyFactory(operation=r["operation"])
    r["complication"] = ComplicationFactory(operation=r["operation"])
    DischargeFactory(operation=r["operation"])
    r["postop_panel"] = LabPanelFactory(
        patient=patient,
        context="postop",
        postop_day=3,
        sampled_on=r["operation"].operated_on + timedelta(days=3),
    )
    r["box"] = box_at(site)
    r["specimen"] = SpecimenFactory(
        operation=r["operation"], patient=patient, code=f"{site.code}-0001-T01"
    )
    CustodyEventFactory(specimen=r["specimen"])
    r["contact"] = FollowUpContactFactory(patient=patient)
    r["recurrence"] = RecurrenceFactory(patient=patient)
    r["death"] = DeathFactory(patient=patient, died_on=date(2026, 10, 1))
    r["lost"] = LostToFollowUpFactory(patient=patient)
    r["treatment_end"] = TreatmentEndFactory(patient=patient)
    r["visit"] = ExpectedVisitFactory(patient=patient, code="C04")
    ExpectedVisitFactory(patient=patient, code="C03")
    r["closure"] = VisitClosureFactory(patient=patient, code="C03")
    r["query"] = query_raise(r["event"], user=builder, field="", text="Please check the grade.")
    return SiteWorld(site=site, patient=patient, records=r)


def build_world() -> World:
    """Two sites with a patient each; one user per role at the first site."""
    own, other = SiteFactory(code="ACCA"), SiteFactory(code="ACCB")
    builder = UserFactory(username="access-builder", is_superuser=True, sites=[own, other])
    users = {
        role: UserFactory(
            username=f"access-{role}", roles=[role], sites=[own], is_staff=role == "site_admin"
        )
        for role in ROLES
    }
    return World(
        sites={OWN: _site_world(own, builder=builder), OTHER: _site_world(other, builder=builder)},
        users=users,
    )


# --- the keyword arguments of every URL -------------------------------------------------------

Value = Callable[[SiteWorld], object]


def _pk(name: str) -> Value:
    return lambda w: getattr(w, name).pk


def _label(name: str) -> Value:
    return lambda w: getattr(w, name)._meta.label_lower


# By keyword name, for every URL that takes it.
DEFAULT_KWARGS: dict[str, Value] = {
    "patient_id": lambda w: w.patient.pk,
    "patient_pk": lambda w: w.patient.pk,
    "consent_id": _pk("consent"),
    "line_id": _pk("line"),
    "cycle_id": _pk("cycle"),
    "event_id": _pk("event"),
    "study_id": _pk("imaging"),
    "evaluation_id": _pk("evaluation"),
    "decision_id": _pk("decision"),
    "complication_id": _pk("complication"),
    "box_id": _pk("box"),
    "specimen_id": _pk("specimen"),
    "closure_id": _pk("closure"),
}

_FOLLOWUP = {
    "contact": "contact",
    "recurrence": "recurrence",
    "death": "death",
    "lost": "lost",
    "treatment-end": "treatment_end",
}
_RECORDS_API = {
    "lab_panels": "panel",
    "followup_contacts": "contact",
    "adverse_events": "event",
    "cycles": "cycle",
    "recurrences": "recurrence",
    "deaths": "death",
}

# By (URL name, keyword name), where the keyword means something particular to the URL.
KWARGS: dict[tuple[str, str], Value] = {
    ("assessments:lab-edit", "panel_id"): _pk("panel"),
    ("assessments:lab-void", "panel_id"): _pk("panel"),
    ("surgery:postop-lab-edit", "panel_id"): _pk("postop_panel"),
    ("surgery:postop-lab-new", "day"): lambda w: 5,
    ("biobank:specimen-action", "action"): lambda w: "store",
    ("visits:visit-close", "code"): lambda w: w.visit.code,
    **{
        (f"analytics:{page}-figure", "fmt"): lambda w: "svg"
        for page in ("survival", "surgery-effect", "swimmer", "waterfall")
    },
    ("exports_api:form", "form"): lambda w: "patients",
    ("forms_api:unknown", "form"): lambda w: "no-such-form",
    **{
        (f"followup:{kind}-{action}", "pk"): _pk(record)
        for kind, record in _FOLLOWUP.items()
        for action in ("edit", "void")
    },
    ("quality:record", "label"): _label("event"),
    ("quality:record", "pk"): _pk("event"),
    ("quality:query-new", "label"): _label("event"),
    ("quality:query-new", "pk"): _pk("event"),
    ("quality:audit-record", "label"): _label("event"),
    ("quality:audit-record", "pk"): _pk("event"),
    ("quality:query-detail", "pk"): _pk("query"),
    **{(f"records_api:{form}-item", "id"): _pk(record) for form, record in _RECORDS_API.items()},
}

# The query string of a GET, where a URL needs one to answer.
QUERIES: dict[str, dict[str, str]] = {
    "analytics:stage-patients": {"stage": "enrolled"},
    "analytics:surgery-effect-figure": {"landmark": "90"},
    "analytics_api:survival": {"endpoint": "os"},
    "analytics_api:cox": {"endpoint": "os", "covariates": "age"},
    "analytics_api:surgery-effect": {"endpoint": "os"},
}

# What an allowed user gets where it is not a 2xx/3xx/405. An unknown form is the point of
# forms_api:unknown. The survival models that need more than one patient a site answer 400
# ("too few patients") here: the request reached the analysis, past every access check (a
# refusal is 401/403/404 or the login page, never 400).
EXPECTED_OK: dict[str, set[int]] = {
    "forms_api:unknown": {404},
    "analytics:surgery-effect-figure": {200, 400},
    "analytics_api:cox": {200, 400},
    "analytics_api:surgery-effect": {200, 400},
}


def url_kwargs(name: str, kwarg_names, world: SiteWorld) -> dict[str, object]:
    """The keyword arguments of URL `name` for the records of `world`; KeyError names the
    keyword that has no mapping."""
    values = {}
    for kwarg in kwarg_names:
        value = KWARGS.get((name, kwarg)) or DEFAULT_KWARGS.get(kwarg)
        if value is None:
            raise KeyError(f"{name}: no value for the URL keyword {kwarg!r}")
        values[kwarg] = value(world)
    return values


def unmapped(name: str, kwarg_names) -> list[str]:
    return [k for k in kwarg_names if (name, k) not in KWARGS and k not in DEFAULT_KWARGS]


# --- "no row changed" ----------------------------------------------------------------------

PROJECT_APPS = (
    "trial",
    "patients",
    "treatments",
    "assessments",
    "surgery",
    "biobank",
    "followup",
    "visits",
    "exchange",
    "analytics",
)


def _snapshot_sql() -> str:
    quote = connection.ops.quote_name
    parts = []
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS or not model._meta.managed:
            continue
        table = quote(model._meta.db_table)
        if model.__name__.startswith("Historical") and hasattr(model, "history_id"):
            parts.append(f"(SELECT MAX({quote('history_id')}) FROM {table})")
        parts.append(f"(SELECT COUNT(*) FROM {table})")
    return "SELECT " + ", ".join(parts)


def data_snapshot() -> tuple:
    """Row counts of every table of the project's apps and the highest history id of every
    history table, in one query: a write of any kind moves one of them."""
    with connection.cursor() as cursor:
        cursor.execute(_snapshot_sql())
        return tuple(cursor.fetchone())
