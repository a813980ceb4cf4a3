"""The study dashboard's reads: the protocol funnel, the key rates, enrollment over time and
the per-site work (overdue visits, draft forms).

Everything about patients comes from the analysis dataset (`analytics.selectors.analysis_rows`,
the same rows as the API and the exports), completed by one query for what the dataset does not
carry (the patient's id for links, its status, a referral to the MDT without a decision yet,
the start of follow-up). The per-site counts are one query each. So the dashboard runs a fixed
number of queries whatever the number of patients (tests/analytics/test_dashboard.py).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import CharField, Count, Exists, F, OuterRef, QuerySet, Value
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.selectors import analysis_rows
from assessments.models import ResponseEvaluation
from followup.models import FollowUpContact, TreatmentEnd
from patients.models import Patient
from trial.models import ClinicalModel, Cohort, FormStatus, Site
from trial.query_selectors import AgeCounts, query_age_counts
from trial.scoping import scope_to_user_sites, sites_for
from visits.models import ExpectedVisit, VisitStatus

Z95 = 1.959963984540054
OPEN_VISITS = (VisitStatus.UPCOMING, VisitStatus.DUE, VisitStatus.OVERDUE)
MORTALITY_DAYS = 90


# ---------------------------------------------------------------------------------------------
# What the dataset does not carry: one query


@dataclass(frozen=True)
class PatientFacts:
    """Per enrolled patient, beside its analysis row: the id (for links), site, status, and
    whether it was referred to the MDT or entered follow-up."""

    pk: int
    subject_code: str
    site: str
    status: str
    referred: bool
    followed: bool


def patient_facts(*, user: AbstractBaseUser | AnonymousUser) -> dict[str, PatientFacts]:
    """The facts of the patients at the user's sites, by subject code. One query.

    `referred`: a response evaluation decided "refer to the MDT" (an MDT decision is in the
    dataset). `followed`: an end of treatment or a follow-up contact is recorded."""
    patients = scope_to_user_sites(Patient.objects.active(), user).filter(enrollment__isnull=False)
    referred = ResponseEvaluation.objects.active().filter(
        patient=OuterRef("pk"), decision=ResponseEvaluation.Decision.REFER_MDT
    )
    ended = TreatmentEnd.objects.active().filter(patient=OuterRef("pk"))
    contacted = FollowUpContact.objects.active().filter(patient=OuterRef("pk"))
    rows = patients.annotate(
        referred=Exists(referred),
        ended=Exists(ended),
        contacted=Exists(contacted),
        site_code=F("site__code"),
    ).values_list("pk", "subject_code", "site_code", "status", "referred", "ended", "contacted")
    return {
        code: PatientFacts(pk, code, site, status, bool(ref), bool(end or contact))
        for pk, code, site, status, ref, end, contact in rows
    }


# ---------------------------------------------------------------------------------------------
# The protocol funnel


@dataclass(frozen=True)
class StageSpec:
    key: str
    label: str
    definition: str
    test: Callable[[Mapping, PatientFacts | None], bool]
    outcome: bool = False  # deceased / withdrawn / lost: where patients ended, not a step


def _status(status: str) -> Callable[[Mapping, PatientFacts | None], bool]:
    return lambda row, facts: facts is not None and facts.status == status


STAGES: tuple[StageSpec, ...] = (
    StageSpec(
        "enrolled",
        gettext_lazy("Enrolled"),
        gettext_lazy("Every enrolled patient."),
        lambda row, facts: True,
    ),
    StageSpec(
        "chemotherapy",
        gettext_lazy("On chemotherapy"),
        gettext_lazy("At least one chemotherapy cycle recorded."),
        lambda row, facts: row.get("first_cycle_on") is not None,
    ),
    StageSpec(
        "evaluated",
        gettext_lazy("Evaluated"),
        gettext_lazy("At least one response evaluation recorded."),
        lambda row, facts: row.get("progression_at_first") is not None,
    ),
    StageSpec(
        "mdt",
        gettext_lazy("Referred to the MDT"),
        gettext_lazy(
            "An evaluation referred the patient to the MDT, or an MDT decision is recorded."
        ),
        lambda row, facts: row.get("mdt_decision") is not None
        or (facts is not None and facts.referred),
    ),
    StageSpec(
        "resected",
        gettext_lazy("Resected"),
        gettext_lazy("An operation is recorded."),
        lambda row, facts: bool(row.get("resected")),
    ),
    StageSpec(
        "follow_up",
        gettext_lazy("In follow-up"),
        gettext_lazy("The end of treatment or a follow-up contact is recorded."),
        lambda row, facts: facts is not None and facts.followed,
    ),
    StageSpec(
        "deceased",
        gettext_lazy("Deceased"),
        gettext_lazy("Status: deceased."),
        _status(Patient.Status.DECEASED),
        outcome=True,
    ),
    StageSpec(
        "withdrawn",
        gettext_lazy("Withdrawn"),
        gettext_lazy("Status: withdrawn from the study."),
        _status(Patient.Status.WITHDRAWN),
        outcome=True,
    ),
    StageSpec(
        "lost",
        gettext_lazy("Lost to follow-up"),
        gettext_lazy("Status: lost to follow-up."),
        _status(Patient.Status.LOST),
        outcome=True,
    ),
)
STAGES_BY_KEY = {stage.key: stage for stage in STAGES}


@dataclass(frozen=True)
class Stage:
    key: str
    label: str
    definition: str
    count: int
    outcome: bool
    share: float  # of the enrolled, 0..1

    @property
    def percent(self) -> int:
        return round(self.share * 100)


def stage_codes(rows: Iterable[Mapping], facts: Mapping[str, PatientFacts], key: str) -> list[str]:
    """The subject codes of the patients in funnel stage `key` (KeyError for an unknown one)."""
    spec = STAGES_BY_KEY[key]
    return [row["subject_code"] for row in rows if spec.test(row, facts.get(row["subject_code"]))]


def funnel(rows: list[Mapping], facts: Mapping[str, PatientFacts]) -> list[Stage]:
    """The funnel stages with their counts; the first six are steps patients reach (each
    counted once reached), the last three where they ended."""
    total = len(rows)
    stages = []
    for spec in STAGES:
        count = len(stage_codes(rows, facts, spec.key))
        stages.append(
            Stage(
                spec.key,
                str(spec.label),
                str(spec.definition),
                count,
                spec.outcome,
                count / total if total else 0.0,
            )
        )
    return stages


# ---------------------------------------------------------------------------------------------
# Rates


@dataclass(frozen=True)
class Rate:
    key: str
    label: str
    numerator: int
    denominator: int
    definition: str
    note: str = ""
    stage: str = ""  # the funnel list behind the denominator

    @property
    def percent(self) -> float | None:
        return None if not self.denominator else 100 * self.numerator / self.denominator

    @property
    def ci(self) -> tuple[float, float] | None:
        """Wilson score 95% interval, in percent."""
        return wilson(self.numerator, self.denominator)


def wilson(k: int, n: int) -> tuple[float, float] | None:
    """The Wilson score 95% confidence interval of k/n in percent (None when n is 0)."""
    if not n:
        return None
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half) * 100, min(1.0, centre + half) * 100


def rates(rows: list[Mapping]) -> list[Rate]:
    """Response, resection, R0 and 90-day mortality rates from the analysis rows."""
    evaluated = [r for r in rows if r.get("progression_at_first") is not None]
    responders = [r for r in evaluated if r.get("best_response") in ("CR", "PR")]
    resected = [r for r in rows if r.get("resected")]
    margins = [r for r in resected if r.get("r_status")]
    r0 = [r for r in margins if r["r_status"] == "R0"]
    assessable = [r for r in resected if _mortality_assessable(r)]
    deaths_90 = [r for r in assessable if r.get("mortality_90d")]

    pending_margin = len(resected) - len(margins)
    pending_90 = len(resected) - len(assessable)
    return [
        Rate(
            "response",
            _("Response rate"),
            len(responders),
            len(evaluated),
            _("Best RECIST 1.1 response CR or PR, among the patients evaluated at least once."),
            stage="evaluated",
        ),
        Rate(
            "resection",
            _("Resection rate"),
            len(resected),
            len(rows),
            _("Patients operated, among all enrolled patients."),
            stage="enrolled",
        ),
        Rate(
            "r0",
            _("R0 resection rate"),
            len(r0),
            len(margins),
            _("R0 margins (pancreas and liver), among the resected with a pathology report."),
            note=(
                _("%(count)d resected without a pathology margin yet, not counted.")
                % {"count": pending_margin}
                if pending_margin
                else ""
            ),
            stage="resected",
        ),
        Rate(
            "mortality_90d",
            _("90-day mortality"),
            len(deaths_90),
            len(assessable),
            _(
                "Deaths within 90 days of the operation, among the resected who died or were "
                "followed for 90 days."
            ),
            note=(
                _("%(count)d resected followed for less than 90 days, not counted yet.")
                % {"count": pending_90}
                if pending_90
                else ""
            ),
            stage="resected",
        ),
    ]


def _mortality_assessable(row: Mapping) -> bool:
    operated, alive = row.get("surgery_on"), row.get("last_known_alive")
    if row.get("mortality_90d"):
        return True
    return operated is not None and alive is not None and (alive - operated).days >= MORTALITY_DAYS


# ---------------------------------------------------------------------------------------------
# Enrollment over time


@dataclass(frozen=True)
class EnrollmentMonth:
    month: date  # the first of the month
    counts: dict[str, int]  # new enrollments by cohort
    cumulative: dict[str, int]  # by cohort, plus "total"


def _month(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def enrollment_by_month(
    rows: Iterable[Mapping], *, today: date | None = None
) -> list[EnrollmentMonth]:
    """New and cumulative enrollments per calendar month and cohort, from the first month with
    an enrollment to the month of `today` (or the last enrollment); months without one are
    included with zeros."""
    counts: dict[date, Counter] = defaultdict(Counter)
    for row in rows:
        if row.get("enrolled_on"):
            counts[_month(row["enrolled_on"])][row.get("cohort") or ""] += 1
    if not counts:
        return []
    cohorts = [c for c in Cohort.values if any(c in months for months in counts.values())]
    cohorts += sorted({c for m in counts.values() for c in m} - set(cohorts))
    month, last = min(counts), max(counts)
    if today is not None and _month(today) > last:
        last = _month(today)
    running: Counter = Counter()
    result = []
    while month <= last:
        new = {cohort: counts[month][cohort] for cohort in cohorts}
        running.update(new)
        cumulative = {cohort: running[cohort] for cohort in cohorts}
        cumulative["total"] = sum(running.values())
        result.append(EnrollmentMonth(month, new, cumulative))
        month = _next_month(month)
    return result


COHORT_STYLE = {
    # Okabe-Ito blue and vermillion; each line also has its own dash pattern.
    Cohort.RETROSPECTIVE: ("#0072B2", "6 3"),
    Cohort.PROSPECTIVE: ("#D55E00", ""),
    "total": ("#1b2430", "2 3"),
}


def _cohort_label(cohort: str) -> str:
    if cohort == "total":
        return _("All")
    try:
        return str(Cohort(cohort).label)
    except ValueError:
        return cohort or _("No cohort")


def enrollment_svg(months: list[EnrollmentMonth]) -> SafeString:
    """Cumulative enrollment by cohort as an inline SVG (no JavaScript): one line per cohort
    and one for everybody, each with its own colour and dash pattern and labelled at its end,
    with a <title> and a <desc> that say in words what it shows."""
    if not months:
        return mark_safe("")
    series = list(months[-1].cumulative)
    end_labels = {
        name: "%s (%d)" % (_cohort_label(name), months[-1].cumulative.get(name, 0))
        for name in series
    }
    width, height = 600, 300
    left, top, bottom = 40, 14, 44
    right = 16 + max(_text_width(label) for label in end_labels.values())
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(1, months[-1].cumulative["total"])
    step = _nice_step(peak)
    y_max = step * math.ceil(peak / step)
    n = len(months)

    def x(i: float) -> float:
        return left + plot_w * (i / max(n, 1))

    def y(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    parts = []
    for tick in range(0, y_max + 1, step):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#e3e7ec" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="#5b6675">{tick}</text>'
        )
    every = max(1, math.ceil(n / 6))
    for i, item in enumerate(months):
        if i % every == 0:
            parts.append(
                f'<text x="{x(i + 0.5):.1f}" y="{top + plot_h + 16}" font-size="12" '
                f'text-anchor="middle" fill="#5b6675">{item.month:%Y-%m}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#5b6675" stroke-width="1"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" '
        f'text-anchor="middle" fill="#5b6675">{escape(_("Month of enrollment"))}</text>'
    )
    label_y: list[float] = []
    for name in series:
        colour, dash = COHORT_STYLE.get(name, ("#4f8a80", "4 2 1 2"))
        points = [f"{x(0):.1f},{y(0):.1f}"]
        for i, item in enumerate(months):
            value = item.cumulative.get(name, 0)
            points.append(f"{x(i):.1f},{y(value):.1f}")
            points.append(f"{x(i + 1):.1f},{y(value):.1f}")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        end_value = months[-1].cumulative.get(name, 0)
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
            f'stroke-width="{2.5 if name == "total" else 2}"{dash_attr}>'
            f"<title>{escape(_cohort_label(name))}: {end_value}</title></polyline>"
        )
        ly = y(end_value) + 4
        for other in label_y:  # keep end labels apart
            if abs(ly - other) < 13:
                ly = other + 13
        label_y.append(ly)
        parts.append(
            f'<text x="{left + plot_w + 6}" y="{ly:.1f}" font-size="12" fill="{colour}">'
            f"{escape(end_labels[name])}</text>"
        )
    summary = ", ".join(
        "%s %d" % (_cohort_label(name), months[-1].cumulative.get(name, 0)) for name in series
    )
    title = _("Cumulative enrollment by cohort")
    desc = _("Patients enrolled from %(start)s to %(end)s: %(summary)s.") % {
        "start": f"{months[0].month:%Y-%m}",
        "end": f"{months[-1].month:%Y-%m}",
        "summary": summary,
    }
    svg = (
        f'<svg class="enrollment-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" '
        f'role="img" aria-labelledby="enrollment-title enrollment-desc" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="inherit">'
        f'<title id="enrollment-title">{escape(title)}</title>'
        f'<desc id="enrollment-desc">{escape(desc)}</desc>'
        f"{''.join(parts)}</svg>"
    )
    return mark_safe(svg)  # noqa: S308 - every text above is escaped


def _text_width(text: str, size: int = 12) -> float:
    """Roughly how wide `text` is at `size` px: CJK characters are about one em, others
    about 0.6 em."""
    return sum(size * (1.0 if ord(char) >= 0x2E80 else 0.6) for char in text)


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if peak / step <= 6:
            return step
    return 10 ** math.ceil(math.log10(peak / 6))


# ---------------------------------------------------------------------------------------------
# Per site: overdue visits and draft forms


def _patient_path(model) -> str | None:
    """How a clinical model reaches its patient ("patient", "operation__patient"), or None."""
    names = {f.name for f in model._meta.get_fields()}
    if "patient" in names:
        return "patient"
    if "operation" in names:
        return "operation__patient"
    return None


def clinical_forms() -> list[tuple[type[ClinicalModel], str]]:
    """Every concrete CRF model with its path to the patient."""
    result = []
    for model in apps.get_models():
        if issubclass(model, ClinicalModel) and not model._meta.abstract:
            path = _patient_path(model)
            if path is not None:
                result.append((model, path))
    return result


def draft_counts(*, site_ids: Iterable[int]) -> dict[int, Counter]:
    """Active forms still in draft, per site id and form (model label). One query: a UNION
    ALL of one grouped count per CRF model."""
    site_ids = list(site_ids)
    queries: list[QuerySet] = []
    for model, path in clinical_forms():
        queries.append(
            model.objects.filter(
                voided_at__isnull=True,
                status=FormStatus.DRAFT,
                **{f"{path}__site_id__in": site_ids},
            )
            .values(site_key=F(f"{path}__site_id"))
            .annotate(n=Count("pk"), form=Value(model._meta.label, output_field=CharField()))
            .values_list("site_key", "n", "form")
            .order_by()
        )
    result: dict[int, Counter] = defaultdict(Counter)
    if not queries or not site_ids:
        return result
    union = queries[0].union(*queries[1:], all=True) if len(queries) > 1 else queries[0]
    for site_id, count, label in union:
        result[site_id][label] += count
    return result


@dataclass
class SiteWork:
    site: Site
    enrolled: int = 0
    overdue_visits: int = 0
    drafts: Counter = field(default_factory=Counter)

    @property
    def draft_total(self) -> int:
        return sum(self.drafts.values())

    @property
    def draft_forms(self) -> list[tuple[str, int]]:
        """(form name, count), the most frequent first."""
        names = {m._meta.label: str(m._meta.verbose_name_plural) for m, _p in clinical_forms()}
        return sorted(
            ((names.get(label, label), n) for label, n in self.drafts.items()),
            key=lambda item: (-item[1], item[0]),
        )


def site_work(
    *, user: AbstractBaseUser | AnonymousUser, rows: Iterable[Mapping], today: date
) -> list[SiteWork]:
    """Per site of the user: enrolled patients, overdue visits (window closed before `today`,
    visit still open) and forms left in draft. Three queries."""
    sites = list(sites_for(user))
    work = {site.pk: SiteWork(site) for site in sites}
    by_code = {site.code: site.pk for site in sites}
    for row in rows:
        if row.get("site") in by_code:
            work[by_code[row["site"]]].enrolled += 1
    overdue = (
        ExpectedVisit.objects.filter(
            site_id__in=list(work), status__in=OPEN_VISITS, window_end__lt=today
        )
        .values_list("site_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for site_id, count in overdue:
        work[site_id].overdue_visits = count
    for site_id, forms in draft_counts(site_ids=list(work)).items():
        if site_id in work:
            work[site_id].drafts = forms
    return list(work.values())


# ---------------------------------------------------------------------------------------------
# The page


@dataclass(frozen=True)
class Dashboard:
    total: int
    funnel: list[Stage]
    rates: list[Rate]
    months: list[EnrollmentMonth]
    enrollment_svg: SafeString
    cohorts: list[tuple[str, int]]
    sites: list[SiteWork]
    today: date
    queries: AgeCounts  # unresolved data queries of the user's sites by age (one query)


def study_dashboard(*, user: AbstractBaseUser | AnonymousUser, today: date) -> Dashboard:
    """Everything the study dashboard shows, for the patients at the user's sites."""
    rows = analysis_rows(user=user)
    facts = patient_facts(user=user)
    months = enrollment_by_month(rows, today=today)
    cohort_counts = Counter(row.get("cohort") or "" for row in rows)
    return Dashboard(
        total=len(rows),
        funnel=funnel(rows, facts),
        rates=rates(rows),
        months=months,
        enrollment_svg=enrollment_svg(months),
        cohorts=[(_cohort_label(c), n) for c, n in sorted(cohort_counts.items())],
        sites=site_work(user=user, rows=rows, today=today),
        today=today,
        queries=query_age_counts(user=user, today=today),
    )


@dataclass(frozen=True)
class StageMember:
    pk: int | None
    subject_code: str
    site: str
    cohort: str
    enrolled_on: date | None
    status: str


def stage_members(*, user: AbstractBaseUser | AnonymousUser, key: str) -> list[StageMember]:
    """The patients behind funnel stage `key` at the user's sites, by subject code
    (KeyError for an unknown stage)."""
    spec = STAGES_BY_KEY[key]
    rows = analysis_rows(user=user)
    facts = patient_facts(user=user)
    statuses = dict(Patient.Status.choices)
    members = []
    for row in rows:
        fact = facts.get(row["subject_code"])
        if not spec.test(row, fact):
            continue
        members.append(
            StageMember(
                pk=fact.pk if fact else None,
                subject_code=row["subject_code"],
                site=row.get("site") or "",
                cohort=_cohort_label(row.get("cohort") or ""),
                enrolled_on=row.get("enrolled_on"),
                status=str(statuses.get(fact.status, fact.status)) if fact else "",
            )
        )
    return members
