"""The investigators' analysis pages: the study dashboard, the patients behind each funnel
stage, Kaplan-Meier survival, the surgery effect without immortal-time bias, the swimmer and
the waterfall plots, and every figure's SVG / PNG (300 dpi) / PDF download.

Every page reads the analysis dataset of the user's sites (`analytics.selectors`), the same
rows as the API and the exports, and needs `trial.view_analytics`. Texts, figures included,
are in the request's language (LocaleMiddleware activates it; matplotlib figures are built
inside the request). A SurvivalError (no events, one group only, ...) is shown as a message
on the page, never a server error; a download that cannot be drawn answers 400 with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import wraps

import pandas as pd
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from analytics import dashboard, figures_data, plots, selectors
from analytics.exports.log import export_log
from analytics.forms import (
    ENDPOINTS,
    ORIGIN_CHOICES,
    SurgeryEffectForm,
    SurvivalForm,
    WaterfallKindForm,
)
from analytics.survival import DAYS_PER_MONTH, GROUPINGS, SurvivalError, km_summary
from analytics.survival_surgery import DEFAULT_LANDMARKS
from analytics.survival_surgery import surgery_effect as surgery_effect_analysis

VIEW_ANALYTICS = "trial.view_analytics"
SURVIVAL_MONTHS = (6, 12, 24)
DEFAULT_LANDMARKS_TEXT = ",".join(str(day) for day in DEFAULT_LANDMARKS)
SURVIVAL_AT = tuple(round(m * DAYS_PER_MONTH) for m in SURVIVAL_MONTHS)  # 183, 365, 730


def analytics_view(view: Callable) -> Callable:
    """Logged in (else the login page), with trial.view_analytics (else 403), GET only."""

    @wraps(view)
    @login_required
    @permission_required(VIEW_ANALYTICS, raise_exception=True)
    @require_GET
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return view(request, *args, **kwargs)

    return wrapped


# ---------------------------------------------------------------------------------------------
# Figures: inline SVG and downloads

_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def inline_svg(data: bytes, *, prefix: str, title: str, description: str = "") -> SafeString:
    """A rendered SVG figure ready to sit in a page: without its XML prolog, its ids prefixed
    (several figures on one page must not share clip-path or glyph ids), scalable, and
    announced to screen readers by a <title> and a <desc>."""
    svg = _PROLOG.sub("", data.decode("utf-8"), count=1)
    ids = set(_ID.findall(svg))
    svg = _REFERENCE.sub(
        lambda m: m.group(0).replace(m.group(2), f"{prefix}-{m.group(2)}")
        if m.group(2) in ids
        else m.group(0),
        svg,
    )
    head, rest = svg.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    labelled_by = f"{prefix}-title {prefix}-desc" if description else f"{prefix}-title"
    accessible = (
        f'{head} class="figure-svg" role="img" aria-labelledby="{labelled_by}">'
        f'<title id="{prefix}-title">{escape(title)}</title>'
        + (f'<desc id="{prefix}-desc">{escape(description)}</desc>' if description else "")
    )
    return mark_safe(accessible + rest)  # noqa: S308 - matplotlib's output, texts escaped


def figure_response(fig, fmt: str, filename: str) -> HttpResponse:
    """The figure as a download in `fmt` (svg, png at 300 dpi, pdf)."""
    response = HttpResponse(plots.render(fig, fmt), content_type=plots.content_type(fmt))
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


def _check_format(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt not in plots.FORMATS:
        raise Http404(_("No such figure format."))
    return fmt


def _downloads(name: str, query: str = "") -> list[tuple[str, str]]:
    """[(label, url)] of a figure's SVG, PNG and PDF downloads."""
    labels = {"svg": "SVG", "png": _("PNG (300 dpi)"), "pdf": "PDF"}
    suffix = f"?{query}" if query else ""
    return [(labels[fmt], reverse(name, args=[fmt]) + suffix) for fmt in plots.FORMATS]


def _today_text() -> str:
    return timezone.localdate().isoformat()


# ---------------------------------------------------------------------------------------------
# Dashboard


@analytics_view
def study_dashboard(request: HttpRequest) -> HttpResponse:
    board = dashboard.study_dashboard(user=request.user, today=timezone.localdate())
    return render(request, "analytics/dashboard.html", {"board": board})


@analytics_view
def stage_patients(request: HttpRequest) -> HttpResponse:
    key = request.GET.get("stage", "")
    if key not in dashboard.STAGES_BY_KEY:
        raise Http404(_("No such stage of the protocol."))
    spec = dashboard.STAGES_BY_KEY[key]
    members = dashboard.stage_members(user=request.user, key=key)
    context = {
        "stage": spec,
        "members": members,
        "stages": dashboard.STAGES,
        "can_open": request.user.has_perm("patients.view_patient"),
    }
    return render(request, "analytics/stage_patients.html", context)


# ---------------------------------------------------------------------------------------------
# Survival


def group_display_names(group_by: str | None) -> dict[str, str]:
    """Display names of a grouping's labels (codes such as "not resected", "M", "PR")."""
    names = {
        "resected": _("Resected"),
        "not resected": _("Not resected"),
        "M": _("Male"),
        "F": _("Female"),
        "retrospective": _("Retrospective cohort"),
        "prospective": _("Prospective cohort"),
        "<=3": _("≤3 liver metastases"),
        ">3": _(">3 liver metastases"),
        "<50% decline": _("CA19-9 decline <50%"),
        ">=50% decline": _("CA19-9 decline ≥50%"),
        "CR": _("Complete response"),
        "PR": _("Partial response"),
        "SD": _("Stable disease"),
        "PD": _("Progressive disease"),
        "NE": _("Not evaluable"),
    }
    if group_by == "ecog":
        names.update({str(n): _("ECOG %(score)d") % {"score": n} for n in range(6)})
    return names


def _survival_query(endpoint: str, group_by: str, origin: str) -> str:
    parts = [f"endpoint={endpoint}", f"origin={origin}"]
    if group_by:
        parts.insert(1, f"group_by={group_by}")
    return "&".join(parts)


def _survival_analysis(request: HttpRequest, form: SurvivalForm) -> tuple[dict, dict]:
    """(the choices, the km_summary) of a valid form; SurvivalError when it cannot be done."""
    choice = {
        "endpoint": form.cleaned_data["endpoint"],
        "group_by": form.cleaned_data.get("group_by") or "",
        "origin": form.cleaned_data["origin"],
    }
    frame = selectors.analysis_frame(user=request.user, origin=choice["origin"])
    duration, event = ENDPOINTS[choice["endpoint"]]
    summary = km_summary(
        frame,
        duration=duration,
        event=event,
        at=SURVIVAL_AT,
        group_by=choice["group_by"] or None,
    )
    return choice, summary


def _km_figure(summary: Mapping, choice: Mapping):
    return plots.km_figure(
        summary,
        endpoint=choice["endpoint"],
        group_labels=group_display_names(choice["group_by"]),
    )


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _survival_rows(summary: Mapping, group_by: str) -> list[dict]:
    """Table rows: overall, or one per group, with n, events, median and survival at 6/12/24
    months (months for people; the days are in the API)."""
    names = group_display_names(group_by)
    curves = (
        [(names.get(label, label), summary["groups"][label]) for label in summary["group_order"]]
        if "groups" in summary
        else [(_("All patients"), summary)]
    )
    rows = []
    for name, curve in curves:
        rows.append(
            {
                "name": name,
                "n": curve["n"],
                "events": curve["events"],
                "median": curve["median_months"],
                "median_ci": curve["median_ci_months"],
                "at": [
                    {
                        "months": months,
                        "day": item["day"],
                        "survival": _percent(item["survival"]),
                        "lower": _percent(item["ci"][0]),
                        "upper": _percent(item["ci"][1]),
                        "at_risk": item["at_risk"],
                    }
                    for item, months in zip(curve["survival_at"], SURVIVAL_MONTHS, strict=True)
                ],
            }
        )
    return rows


@analytics_view
def survival_page(request: HttpRequest) -> HttpResponse:
    form = SurvivalForm(request.GET or None)
    context: dict = {"form": form, "months": SURVIVAL_MONTHS}
    if request.GET and not form.is_valid():
        return render(request, "analytics/survival.html", context)
    if not request.GET:
        form = SurvivalForm({"endpoint": "os", "origin": "enrollment"})
        form.is_valid()
        context["form"] = form
    try:
        choice, summary = _survival_analysis(request, form)
    except SurvivalError as error:
        context["error"] = error.message
        return render(request, "analytics/survival.html", context)
    query = _survival_query(**choice)
    grouping = GROUPINGS.get(choice["group_by"])
    title = _("Overall survival") if choice["endpoint"] == "os" else _("Recurrence-free survival")
    if grouping:
        title = _("%(endpoint)s — %(grouping)s") % {"endpoint": title, "grouping": grouping.label}
    context.update(
        {
            "choice": choice,
            "origin_label": dict(ORIGIN_CHOICES)[choice["origin"]],
            "summary": summary,
            "title": title,
            "rows": _survival_rows(summary, choice["group_by"]),
            "figure": inline_svg(
                plots.render(_km_figure(summary, choice), "svg"),
                prefix="km",
                title=title,
                description=_km_description(summary, choice),
            ),
            "downloads": _downloads("analytics:survival-figure", query),
        }
    )
    return render(request, "analytics/survival.html", context)


def _km_description(summary: Mapping, choice: Mapping) -> str:
    text = _(
        "Kaplan-Meier curve of %(n)d patients with %(events)d events, with 95%% confidence "
        "bands, censoring marks and the number at risk under the time axis."
    ) % {"n": summary["n"], "events": summary["events"]}
    if summary.get("logrank"):
        text += " " + _("Log-rank p %(p)s.") % {"p": plots.format_p(summary["logrank"]["p"])}
    return text


@analytics_view
def survival_figure(request: HttpRequest, fmt: str) -> HttpResponse:
    fmt = _check_format(fmt)
    form = SurvivalForm(request.GET or {"endpoint": "os"})
    if not form.is_valid():
        return HttpResponseBadRequest(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            content_type="text/plain; charset=utf-8",
        )
    try:
        choice, summary = _survival_analysis(request, form)
    except SurvivalError as error:
        return HttpResponseBadRequest(error.message, content_type="text/plain; charset=utf-8")
    name = f"plm-edc_{choice['endpoint']}"
    if choice["group_by"]:
        name += f"_by-{choice['group_by']}"
    if choice["endpoint"] == "os":
        name += f"_from-{choice['origin']}"
    return figure_response(_km_figure(summary, choice), fmt, f"{name}_{_today_text()}")


# ---------------------------------------------------------------------------------------------
# Surgery effect


def _landmark_frame(frame: pd.DataFrame, day: int) -> pd.DataFrame:
    """Patients alive and followed beyond `day`, time from `day`, `resected` = operated on or
    before it (as surgery_effect's landmark analysis)."""
    times = pd.to_numeric(frame["os_days"], errors="coerce")
    surgery = pd.to_numeric(frame["surgery_days"], errors="coerce")
    kept = times > day
    return pd.DataFrame(
        {
            "subject_code": frame.loc[kept, "subject_code"],
            "os_days": times[kept] - day,
            "os_event": frame.loc[kept, "os_event"],
            "resected": (surgery[kept] <= day).fillna(False),
        }
    )


def _landmark_figure(frame: pd.DataFrame, day: int):
    landmark = _landmark_frame(frame, day)
    summary = km_summary(landmark, at=SURVIVAL_AT, group_by="resected")
    return plots.km_figure(
        summary,
        endpoint="os",
        group_labels={
            "resected": _("Operated by day %(day)d") % {"day": day},
            "not resected": _("Not operated by day %(day)d") % {"day": day},
        },
        labels={
            "title": _("Overall survival from landmark day %(day)d") % {"day": day},
            "xlabel": _("Months after the landmark"),
        },
    ), summary


def _flag_inestimable(result: dict, frame: pd.DataFrame) -> None:
    """Blank the naive and time-varying hazard ratios when the operated or the unoperated
    patients have no death: the estimate then runs off to 0 or infinity and its interval
    means nothing (the landmark analyses already say so themselves)."""
    days = pd.to_numeric(frame["os_days"], errors="coerce")
    events = pd.to_numeric(frame["os_event"], errors="coerce")
    surgery = pd.to_numeric(frame["surgery_days"], errors="coerce")
    kept = days.notna() & events.notna() & ~(surgery > days)
    operated = int(events[kept & surgery.notna()].sum())
    unoperated = int(events[kept & surgery.isna()].sum())
    if operated and unoperated:
        return
    note = (
        _("No deaths among the operated patients: the hazard ratio cannot be estimated yet.")
        if not operated
        else _(
            "No deaths among the patients never operated: the hazard ratio cannot be estimated yet."
        )
    )
    for key in ("naive", "time_varying"):
        result[key].update({"hr": None, "hr_ci": [None, None], "p": None, "note": note})


@analytics_view
def surgery_effect_page(request: HttpRequest) -> HttpResponse:
    form = SurgeryEffectForm(request.GET or None)
    context: dict = {"form": form}
    if request.GET and not form.is_valid():
        return render(request, "analytics/surgery_effect.html", context)
    if not request.GET:
        form = SurgeryEffectForm({"origin": "enrollment", "landmarks": DEFAULT_LANDMARKS_TEXT})
        form.is_valid()
        context["form"] = form
    origin, landmarks = form.cleaned_data["origin"], form.cleaned_data["landmarks"]
    frame = selectors.analysis_frame(user=request.user, origin=origin)
    try:
        result = surgery_effect_analysis(frame, landmarks=landmarks)
    except SurvivalError as error:
        context["error"] = error.message
        return render(request, "analytics/surgery_effect.html", context)
    _flag_inestimable(result, frame)
    figures = []
    for item in result["landmark"]:
        entry = {"item": item, "figure": None, "error": item["skipped"]}
        if not item["skipped"]:
            try:
                fig, _summary = _landmark_figure(frame, item["landmark_day"])
            except SurvivalError as error:
                entry["error"] = error.message
            else:
                day = item["landmark_day"]
                entry["figure"] = inline_svg(
                    plots.render(fig, "svg"),
                    prefix=f"landmark-{day}",
                    title=_("Overall survival from landmark day %(day)d") % {"day": day},
                    description=_(
                        "Kaplan-Meier curves of the patients alive at day %(day)d, operated by "
                        "then or not, with 95%% confidence bands and the number at risk."
                    )
                    % {"day": day},
                )
                entry["downloads"] = _downloads(
                    "analytics:surgery-effect-figure", f"origin={origin}&landmark={day}"
                )
        figures.append(entry)
    context.update({"result": result, "landmarks": figures, "origin": origin})
    return render(request, "analytics/surgery_effect.html", context)


@analytics_view
def surgery_effect_figure(request: HttpRequest, fmt: str) -> HttpResponse:
    fmt = _check_format(fmt)
    form = SurgeryEffectForm(
        {"origin": request.GET.get("origin", ""), "landmarks": request.GET.get("landmark", "")}
    )
    if not form.is_valid() or len(form.cleaned_data["landmarks"]) != 1:
        return HttpResponseBadRequest(
            _("Give one landmark day, for example landmark=90."),
            content_type="text/plain; charset=utf-8",
        )
    day = form.cleaned_data["landmarks"][0]
    origin = form.cleaned_data["origin"]
    frame = selectors.analysis_frame(user=request.user, origin=origin)
    try:
        fig, _summary = _landmark_figure(frame, day)
    except SurvivalError as error:
        return HttpResponseBadRequest(error.message, content_type="text/plain; charset=utf-8")
    return figure_response(fig, fmt, f"plm-edc_os_landmark-{day}_from-{origin}_{_today_text()}")


# ---------------------------------------------------------------------------------------------
# Swimmer and waterfall


def _swimmer(request: HttpRequest):
    rows = selectors.analysis_rows(user=request.user)
    data = figures_data.swimmer_rows(user=request.user, rows=rows)
    return data, plots.swimmer_figure(data.rows)


@analytics_view
def swimmer_page(request: HttpRequest) -> HttpResponse:
    data, fig = _swimmer(request)
    links = _patient_links(request)
    title = _("Treatment and follow-up by patient")
    context = {
        "data": data,
        "shown": min(len(data.rows), plots.MAX_ROWS),
        "max_rows": plots.MAX_ROWS,
        "figure": inline_svg(
            plots.render(fig, "svg"),
            prefix="swimmer",
            title=title,
            description=_(
                "One bar per patient from enrollment to death or last contact, with "
                "chemotherapy, evaluations, surgery and recurrence marked."
            ),
        ),
        "downloads": _downloads("analytics:swimmer-figure"),
        "table": [
            {
                "row": row,
                "pk": links.get(row.subject_code),
                "follow_up": row.follow_up_days / DAYS_PER_MONTH,
                "surgery": None if row.surgery_day is None else row.surgery_day / DAYS_PER_MONTH,
                "recurrence": None
                if row.recurrence_day is None
                else row.recurrence_day / DAYS_PER_MONTH,
                "responses": " ".join(response for _day, response in row.evaluations),
            }
            for row in sorted(data.rows, key=lambda row: row.subject_code)
        ],
    }
    return render(request, "analytics/swimmer.html", context)


def _patient_links(request: HttpRequest) -> dict[str, int]:
    """{subject code: patient id} for links to the patient pages (when the user may open
    them). One query."""
    if not request.user.has_perm("patients.view_patient"):
        return {}
    return {code: facts.pk for code, facts in dashboard.patient_facts(user=request.user).items()}


@analytics_view
def swimmer_figure(request: HttpRequest, fmt: str) -> HttpResponse:
    fmt = _check_format(fmt)
    _data, fig = _swimmer(request)
    return figure_response(fig, fmt, f"plm-edc_swimmer_{_today_text()}")


WATERFALLS = {
    "recist": figures_data.recist_waterfall,
    "ca19_9": figures_data.ca19_9_waterfall,
}


def _waterfall(request: HttpRequest, kind: str, rows: list[dict] | None = None):
    rows = rows if rows is not None else selectors.analysis_rows(user=request.user)
    data = WATERFALLS[kind](user=request.user, rows=rows)
    return data, plots.waterfall_figure(data.values, kind=kind)


@analytics_view
def waterfall_page(request: HttpRequest) -> HttpResponse:
    rows = selectors.analysis_rows(user=request.user)
    links = _patient_links(request)
    panels = []
    for kind, title, description in (
        (
            "recist",
            _("Best change in target lesions (RECIST 1.1)"),
            _(
                "One bar per patient: the best change from baseline in the sum of target-lesion "
                "diameters, before any operation, coloured by the best response."
            ),
        ),
        (
            "ca19_9",
            _("Best change in CA19-9"),
            _(
                "One bar per patient: the best change from baseline in CA19-9 at the response "
                "evaluations."
            ),
        ),
    ):
        data, fig = _waterfall(request, kind, rows)
        panels.append(
            {
                "kind": kind,
                "title": title,
                "data": data,
                "table": [
                    {"value": value, "pk": links.get(value.subject_code)}
                    for value in sorted(
                        (value for value in data.values if value.change_pct is not None),
                        key=lambda value: (value.change_pct, value.subject_code),
                    )
                ],
                "figure": inline_svg(
                    plots.render(fig, "svg"),
                    prefix=f"waterfall-{kind}",
                    title=title,
                    description=description,
                ),
                "downloads": _downloads("analytics:waterfall-figure", f"kind={kind}"),
            }
        )
    return render(
        request,
        "analytics/waterfall.html",
        {"panels": panels, "total": len(rows)},
    )


@analytics_view
def waterfall_figure(request: HttpRequest, fmt: str) -> HttpResponse:
    fmt = _check_format(fmt)
    form = WaterfallKindForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(
            _("Choose kind=recist or kind=ca19_9."), content_type="text/plain; charset=utf-8"
        )
    kind = form.cleaned_data["kind"]
    _data, fig = _waterfall(request, kind)
    return figure_response(fig, fmt, f"plm-edc_waterfall-{kind.replace('_', '')}_{_today_text()}")


# ---------------------------------------------------------------------------------------------
# Export log


EXPORT_LOG_PAGE_SIZE = 50


@login_required
@require_GET
def export_log_page(request: HttpRequest) -> HttpResponse:
    """Who exported what, when, in which format, with which parameters, how many rows and the
    data version: data managers (analytics.view_exportlog), the exports of their sites' users
    (`analytics.exports.log.export_log`; PermissionDenied → 403 for anyone else)."""
    logs = export_log(user=request.user)
    page = Paginator(logs, EXPORT_LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "analytics/export_log.html", {"page": page})
