"""The analytics figures: what they draw (read back from the figure's artists and checked
against lifelines or the input), the output formats, Chinese text, and PHI refusal."""

import logging
import os
import struct
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_lung

from analytics import plots, plots_base
from analytics.plots import SwimmerRow, WaterfallValue
from analytics.survival import km_summary

MONTH = plots.DAYS_PER_MONTH


# ---------------------------------------------------------------------------------------------
# helpers


def _axes(fig, label):
    return next(ax for ax in fig.axes if ax.get_label() == label)


def _lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def _texts(fig, gid):
    found = [t for t in fig.texts if t.get_gid() == gid]
    for ax in fig.axes:
        found += [t for t in ax.texts if t.get_gid() == gid]
    return found


def _at_risk_table(fig) -> dict[tuple[int, float], int]:
    """{(row, tick): number} as drawn under the KM axes."""
    table = _axes(fig, "at-risk")
    return {
        (int(round(t.get_position()[1])), round(float(t.get_position()[0]), 6)): int(t.get_text())
        for t in table.texts
        if t.get_gid() == "at-risk"
    }


def _lifelines_at_risk(durations, events, day: float) -> int:
    """lifelines' number at risk at `day`: the at_risk of the event table's first time >= day."""
    table = KaplanMeierFitter().fit(durations, events).event_table
    later = table.loc[table.index >= day - 1e-9, "at_risk"]
    return int(later.iloc[0]) if len(later) else 0


def _png_dpi(data: bytes) -> tuple[float, float]:
    """Dots per inch from the PNG pHYs chunk (pixels per metre, unit 1)."""
    position = 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"pHYs":
            x, y, unit = struct.unpack(">IIB", data[position + 8 : position + 17])
            assert unit == 1  # metre
            return x * 0.0254, y * 0.0254
        position += 12 + length
    raise AssertionError("no pHYs chunk")


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def _require_cjk_font() -> str:
    family = plots.cjk_font_family()
    if family is None:
        message = "no CJK font installed (run scripts/install-system-deps.sh)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but " + message, pytrace=False)
        pytest.skip(message)
    return family


@pytest.fixture(scope="module")
def lung():
    return load_lung()


@pytest.fixture(scope="module")
def lung_by_sex(lung):
    return km_summary(lung, duration="time", event="status", group_by="sex")


@pytest.fixture(scope="module")
def cohort():
    """A synthetic OS dataset: 90 patients, resected or not, some censored, ties included."""
    rng = np.random.default_rng(11)
    n = 90
    resected = rng.random(n) < 0.4
    death = rng.exponential(np.where(resected, 620, 330)).round()
    censor = rng.uniform(60, 1000, n).round()
    return pd.DataFrame(
        {
            "subject_code": ["S%03d" % i for i in range(n)],
            "os_days": np.minimum(death, censor),
            "os_event": (death <= censor).astype(int),
            "resected": resected,
        }
    )


def _swimmer_rows(n: int, seed: int = 3) -> list[SwimmerRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        follow_up = float(rng.integers(60, 900))
        chemo_end = min(follow_up, float(rng.integers(60, 200)))
        surgery = chemo_end + 20 if i % 3 == 0 and chemo_end + 40 < follow_up else None
        rows.append(
            SwimmerRow(
                subject_code="P%03d" % (i + 1),
                follow_up_days=follow_up,
                died=bool(i % 2),
                chemo=(0, chemo_end),
                surgery_day=surgery,
                adjuvant=(surgery + 15, min(follow_up, surgery + 120)) if surgery else None,
                evaluations=((56, "SD"), (112, "PR")) if chemo_end > 112 else ((56, "PD"),),
                recurrence_day=follow_up - 10 if surgery and i % 2 else None,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier


def test_km_at_risk_table_equals_lifelines_at_each_tick(lung, lung_by_sex):
    fig = plots.km_figure(lung_by_sex)
    drawn = _at_risk_table(fig)
    ax = _axes(fig, "km")
    ticks = [t for t in ax.get_xticks() if 0 <= t <= ax.get_xlim()[1] + 1e-9]
    assert ticks[:3] == [0, 6, 12]  # months, every 6
    assert ax.get_xlim()[1] >= lung["time"].max() / MONTH
    assert len(drawn) == 2 * len(ticks)
    for row, level in enumerate(lung_by_sex["group_order"]):
        group = lung.loc[lung["sex"].astype(str) == level]
        for tick in ticks:
            expected = _lifelines_at_risk(group["time"], group["status"], tick * MONTH)
            assert drawn[(row, round(tick, 6))] == expected, (level, tick)
    assert drawn[(0, 0.0)] == 138
    assert drawn[(1, 0.0)] == 90


def test_km_at_risk_in_days_and_row_names(lung, lung_by_sex):
    fig = plots.km_figure(lung_by_sex, unit="days", group_labels={"1": "Male", "2": "Female"})
    drawn = _at_risk_table(fig)
    for tick in (0, 180, 360, 540, 720, 900):
        male = lung.loc[lung["sex"] == 1]
        assert drawn[(0, float(tick))] == _lifelines_at_risk(male["time"], male["status"], tick)
    names = [label.get_text() for label in _axes(fig, "at-risk").get_yticklabels()]
    assert names == ["Male", "Female"]


def test_km_censor_marks_one_per_censored_patient(cohort):
    fig = plots.km_figure(cohort, group_by="resected")
    ax = _axes(fig, "km")
    marks = sum(len(line.get_xdata()) for line in _lines(ax, "censor"))
    assert marks == int((cohort["os_event"] == 0).sum())
    # per curve, at the curve's height at the censoring time
    summary = km_summary(cohort, group_by="resected")
    for line, level in zip(_lines(ax, "censor"), summary["group_order"], strict=True):
        group = cohort.loc[cohort["resected"] == (level == "resected")]
        assert len(line.get_xdata()) == int((group["os_event"] == 0).sum())
        kmf = KaplanMeierFitter().fit(group["os_days"], group["os_event"])
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            assert y == pytest.approx(float(kmf.predict(x * MONTH)), abs=1e-9)


def test_km_curves_medians_bands_and_logrank(cohort):
    summary = km_summary(cohort, group_by="resected")
    fig = plots.km_figure(summary, endpoint="os")
    ax = _axes(fig, "km")
    curves = _lines(ax, "curve")
    assert len(curves) == 2
    for line, level in zip(curves, summary["group_order"], strict=True):
        group = cohort.loc[cohort["resected"] == (level == "resected")]
        kmf = KaplanMeierFitter().fit(group["os_days"], group["os_event"])
        x, y = line.get_xdata(), line.get_ydata()
        assert (x[0], y[0]) == (0.0, 1.0)
        expected = kmf.survival_function_at_times(np.asarray(x[1:]) * MONTH).to_numpy()
        assert np.allclose(y[1:], expected)
    assert len(ax.collections) == 2  # one shaded 95% band per curve
    medians = _lines(ax, "median")
    reached = [g for g in summary["groups"].values() if g["median_days"] is not None]
    assert len(medians) == 2 * len(reached)
    vertical = sorted(line.get_xdata()[0] for line in medians if line.get_xdata()[0] > 0)
    assert vertical == pytest.approx(sorted(g["median_days"] / MONTH for g in reached))
    (logrank,) = _texts(fig, "logrank")
    assert logrank.get_text() == "Log-rank p " + plots.format_p(summary["logrank"]["p"])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith(
        "Not resected (n = %d): median " % summary["groups"]["not resected"]["n"]
    )
    assert "95% CI" in legend[0]
    assert [t.get_text() for t in _texts(fig, "title")] == ["Overall survival"]


def test_km_dataframe_and_summary_draw_the_same(cohort):
    from_frame = plots.km_figure(cohort, group_by="resected")
    from_summary = plots.km_figure(km_summary(cohort, group_by="resected"))
    assert _at_risk_table(from_frame) == _at_risk_table(from_summary)


def test_km_overall_has_one_row_and_no_logrank(cohort):
    summary = km_summary(cohort)
    fig = plots.km_figure(summary, censor_marker="|", labels={"title": "OS", "overall": "All"})
    drawn = _at_risk_table(fig)
    assert {row for row, _tick in drawn} == {0}
    assert drawn[(0, 0.0)] == len(cohort)
    assert _texts(fig, "logrank") == []
    assert _lines(_axes(fig, "km"), "censor")[0].get_marker() == "|"
    assert [label.get_text() for label in _axes(fig, "at-risk").get_yticklabels()] == ["All"]


def test_km_options_and_refusals(cohort):
    summary = km_summary(cohort)
    fig = plots.km_figure(summary, at_risk_table=False, confidence_bands=False, max_time=12)
    assert [ax.get_label() for ax in fig.axes] == ["km"]
    assert _axes(fig, "km").get_xlim() == (0.0, 12.0)
    assert len(_axes(fig, "km").collections) == 0
    with pytest.raises(ValueError, match="Unknown label key"):
        plots.km_figure(summary, labels={"titel": "x"})
    with pytest.raises(ValueError, match="unit"):
        plots.km_figure(summary, unit="weeks")
    with pytest.raises(ValueError, match="timeline"):
        plots.km_figure({"n": 3})


def test_format_p():
    assert plots.format_p(0.00013) == "< 0.001"
    assert plots.format_p(0.0042) == "= 0.004"
    assert plots.format_p(0.31) == "= 0.31"


# ---------------------------------------------------------------------------------------------
# Swimmer


def test_swimmer_without_patients_renders_a_message():
    fig = plots.swimmer_figure([])
    assert [t.get_text() for t in _texts(fig, "empty")] == ["No patients to show."]
    assert plots.render(fig, "png").startswith(b"\x89PNG")


def test_swimmer_one_patient_draws_every_part():
    row = SwimmerRow(
        subject_code="PLM-001",
        follow_up_days=400,
        died=True,
        chemo=(0, 120),
        surgery_day=150,
        adjuvant=(180, 300),
        evaluations=((60, "SD"), (118, "PR")),
        recurrence_day=330,
    )
    fig = plots.swimmer_figure([row], unit="days")
    ax = _axes(fig, "swimmer")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["PLM-001"]
    bars = {patch.get_gid(): patch for patch in ax.patches}
    assert bars["follow-up"].get_width() == 400
    assert (bars["chemo"].get_x(), bars["chemo"].get_width()) == (0, 120)
    assert (bars["adjuvant"].get_x(), bars["adjuvant"].get_width()) == (180, 120)
    assert _lines(ax, "surgery")[0].get_xdata()[0] == 150
    assert [line.get_xdata()[0] for line in _lines(ax, "evaluation-SD")] == [60]
    assert [line.get_xdata()[0] for line in _lines(ax, "evaluation-PR")] == [118]
    assert _lines(ax, "recurrence")[0].get_xdata()[0] == 330
    assert _lines(ax, "death")[0].get_xdata()[0] == 400
    assert not [t for t in ax.texts if t.get_gid() == "alive"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Death" in legend
    assert "Partial response" in legend
    assert "Alive at last contact" not in legend
    assert "Complete response" not in legend


def test_swimmer_sorted_by_follow_up_with_arrows_for_the_censored():
    rows = _swimmer_rows(12)
    fig = plots.swimmer_figure(rows)
    ax = _axes(fig, "swimmer")
    codes = [t.get_text() for t in ax.get_yticklabels()]
    by_code = {row.subject_code: row for row in rows}
    follow_up = [by_code[code].follow_up_days for code in codes]
    assert follow_up == sorted(follow_up)  # bottom to top: the longest at the top
    alive = [t for t in ax.texts if t.get_gid() == "alive"]
    assert len(alive) == sum(not row.died for row in rows)
    assert len(_lines(ax, "death")) == sum(row.died for row in rows)


def test_swimmer_truncates_beyond_200_with_a_note():
    rows = _swimmer_rows(300)
    fig = plots.swimmer_figure(rows)
    ax = _axes(fig, "swimmer")
    codes = [t.get_text() for t in ax.get_yticklabels()]
    assert len(codes) == plots.MAX_ROWS == 200
    longest = sorted(rows, key=lambda r: (-r.follow_up_days, r.subject_code))[:200]
    assert set(codes) == {row.subject_code for row in longest}
    (note,) = _texts(fig, "truncated")
    assert "200" in note.get_text()
    assert "300" in note.get_text()
    small = plots.swimmer_figure(rows[:20])
    assert fig.get_figheight() > 3 * small.get_figheight()
    assert _texts(small, "truncated") == []
    svg = plots.render(fig, "svg")
    assert svg.startswith(b"<?xml")
    assert len(svg) > 100_000


def test_swimmer_refuses_identifying_and_unknown_keys():
    row = {"subject_code": "PLM-002", "follow_up_days": 100, "died": False}
    fig = plots.swimmer_figure([row])
    assert [t.get_text() for t in _axes(fig, "swimmer").get_yticklabels()] == ["PLM-002"]
    with pytest.raises(ValueError, match="identifying field.*name"):
        plots.swimmer_figure([{**row, "name": "Zhang San"}])
    with pytest.raises(ValueError, match="identifying field.*date_of_birth"):
        plots.swimmer_figure([{**row, "date_of_birth": "1960-01-01"}])
    with pytest.raises(ValueError, match="Unknown Swimmer field.*colour"):
        plots.swimmer_figure([{**row, "colour": "red"}])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"follow_up_days": -1}, "follow_up_days"),
        ({"chemo": (50, 10)}, "chemo"),
        ({"evaluations": ((30, "XX"),)}, "evaluation"),
        ({"subject_code": ""}, "subject code"),
    ],
)
def test_swimmer_row_validation(changes, message):
    fields = {"subject_code": "PLM-003", "follow_up_days": 100, **changes}
    with pytest.raises(ValueError, match=message):
        SwimmerRow(**fields)


def test_swimmer_refuses_duplicate_codes():
    row = SwimmerRow("PLM-004", 10)
    with pytest.raises(ValueError, match="PLM-004 appear more than once"):
        plots.swimmer_figure([row, row])


# ---------------------------------------------------------------------------------------------
# Waterfall


def _bars(fig):
    ax = _axes(fig, "waterfall")
    return [p for p in ax.patches if (p.get_gid() or "").startswith("bar:")]


def test_waterfall_sorted_descending_and_clipped():
    values = [
        WaterfallValue("P1", -45.0, "PR"),
        WaterfallValue("P2", 250.0, "PD"),
        WaterfallValue("P3", 12.5, "SD"),
        WaterfallValue("P4", -100.0, "CR"),
        WaterfallValue("P5", 140.0, "PD"),
        WaterfallValue("P6", None),
        WaterfallValue("P7", 12.5, "SD"),
    ]
    fig = plots.waterfall_figure(values)
    bars = _bars(fig)
    assert [b.get_gid() for b in bars] == [
        "bar:%s" % c for c in ["P2", "P5", "P3", "P7", "P1", "P4"]
    ]
    assert [b.get_height() for b in bars] == [100.0, 100.0, 12.5, 12.5, -45.0, -100.0]
    (clipped,) = _lines(_axes(fig, "waterfall"), "clipped")
    assert list(clipped.get_xdata()) == [0, 1]
    (note,) = _texts(fig, "notes")
    assert "+100%" in note.get_text()
    assert "not shown: 1" in note.get_text()
    colours = [b.get_facecolor()[:3] for b in bars]
    from matplotlib.colors import to_rgb

    assert colours[0] == to_rgb(plots.RESPONSE_COLOURS["PD"])
    assert colours[-1] == to_rgb(plots.RESPONSE_COLOURS["CR"])
    levels = [line.get_ydata()[0] for line in _lines(_axes(fig, "waterfall"), "reference")]
    assert sorted(levels) == [-30, 20]
    codes = [t.get_text() for t in _axes(fig, "waterfall").get_xticklabels()]
    assert codes == ["P2", "P5", "P3", "P7", "P1", "P4"]


def test_waterfall_ca19_9_colours_by_halving():
    from matplotlib.colors import to_rgb

    fig = plots.waterfall_figure({"A": -50.0, "B": -49.9, "C": 30.0, "D": -90.0}, kind="ca19_9")
    bars = {b.get_gid()[4:]: to_rgb(b.get_facecolor()) for b in _bars(fig)}
    decline, other = to_rgb(plots.OKABE_ITO["blue"]), to_rgb(plots.OKABE_ITO["orange"])
    assert bars == {"A": decline, "D": decline, "B": other, "C": other}
    levels = [line.get_ydata()[0] for line in _lines(_axes(fig, "waterfall"), "reference")]
    assert levels == [-50]
    assert _lines(_axes(fig, "waterfall"), "clipped") == []
    assert _texts(fig, "notes") == []


def test_waterfall_many_patients_hide_codes_and_refusals():
    fig = plots.waterfall_figure({"P%02d" % i: float(i - 30) for i in range(60)})
    ax = _axes(fig, "waterfall")
    assert list(ax.get_xticks()) == []
    assert ax.get_xlabel() == "Patients (n = 60)"
    fig = plots.waterfall_figure([])
    assert [t.get_text() for t in _texts(fig, "empty")] == ["No patients with a value to show."]
    with pytest.raises(ValueError, match="identifying field.*name"):
        plots.waterfall_figure([{"subject_code": "P1", "change_pct": 3.0, "name": "Li Si"}])
    with pytest.raises(ValueError, match="kind"):
        plots.waterfall_figure({"P1": 3.0}, kind="cea")
    with pytest.raises(ValueError, match="below -100"):
        plots.waterfall_figure({"P1": -120.0})
    with pytest.raises(ValueError, match="response"):
        plots.waterfall_figure([WaterfallValue("P1", 3.0, "partial")])


# ---------------------------------------------------------------------------------------------
# Rendering, fonts


@pytest.fixture(scope="module")
def figures(cohort):
    return {
        "km": plots.km_figure(km_summary(cohort, group_by="resected")),
        "swimmer": plots.swimmer_figure(_swimmer_rows(15)),
        "waterfall": plots.waterfall_figure({"P%02d" % i: float(i * 7 - 80) for i in range(25)}),
    }


MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}


@pytest.mark.parametrize("name", ["km", "swimmer", "waterfall"])
@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_every_figure_renders_in_every_format(figures, name, fmt):
    data = plots.render(figures[name], fmt)
    assert data.startswith(MAGIC[fmt])
    assert len(data) > 15_000
    if fmt == "svg":
        assert b"<svg" in data[:2000]
        assert b"<text" not in data  # text drawn as paths
    if fmt == "pdf":
        assert b"/FontFile2" in data  # TrueType (Type 42), embedded
        assert b"/Type3" not in data
    if fmt == "png":
        assert _png_dpi(data) == pytest.approx((300, 300), abs=0.1)
        width, height = _png_size(data)
        assert width > 4 * 300  # inches at 300 dpi, not 100
        assert height > 3 * 300
    assert plots.content_type(fmt) == plots.FORMATS[fmt]


def test_render_refuses_unknown_formats(figures):
    with pytest.raises(ValueError, match="svg, png, pdf"):
        plots.render(figures["km"], "jpeg")


def test_render_is_deterministic_and_thread_safe(cohort):
    summary = km_summary(cohort, group_by="resected")
    results, errors = [], []

    def work():
        try:
            results.append(plots.render(plots.km_figure(summary), "png"))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 4
    assert len(set(results)) == 1


def test_chinese_labels_render_without_missing_glyphs(cohort, caplog):
    family = _require_cjk_font()
    summary = km_summary(cohort, group_by="resected")
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plots.km_figure(
            summary,
            labels={"title": "总生存期", "xlabel": "自入组起的时间（月）", "at_risk": "风险人数"},
            group_labels={"resected": "手术切除", "not resected": "未手术"},
        )
        outputs = {fmt: plots.render(fig, fmt) for fmt in ("png", "pdf", "svg")}
    glyphs = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert glyphs == []
    assert not [r for r in caplog.records if "findfont" in r.getMessage()]
    compact = family.replace(" ", "").encode()  # e.g. b"NotoSansCJKSC" in the PDF font name
    assert compact.lower()[:8] in outputs["pdf"].lower()


def test_without_a_cjk_font_a_warning_is_logged_once_and_figures_render(
    monkeypatch, caplog, cohort
):
    monkeypatch.setattr(plots_base, "_find_cjk_family", lambda: None)
    monkeypatch.setattr(plots_base.font_manager, "findSystemFonts", lambda *a, **k: [])
    plots_base._reset_font_search()
    try:
        caplog.set_level(logging.WARNING, logger="analytics.plots_base")
        assert plots.cjk_font_family() is None
        assert plots.cjk_font_family() is None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # matplotlib's own missing-glyph warnings
            data = plots.render(
                plots.km_figure(km_summary(cohort), labels={"title": "总生存期"}), "png"
            )
        assert data.startswith(MAGIC["png"])
        logged = [r for r in caplog.records if r.name == "analytics.plots_base"]
        assert len(logged) == 1
        assert "No CJK font" in logged[0].getMessage()
    finally:
        monkeypatch.undo()
        plots_base._reset_font_search()


def test_a_cjk_font_missing_from_a_stale_font_cache_is_found_on_disk(monkeypatch):
    family = _require_cjk_font()
    manager = plots_base.font_manager.fontManager
    stale = [entry for entry in manager.ttflist if entry.name not in plots_base.CJK_FAMILIES]
    monkeypatch.setattr(manager, "ttflist", stale)
    plots_base._reset_font_search()
    try:
        assert plots.cjk_font_family() == family
        assert plots_base.rc()["font.family"] == [plots_base.LATIN_FAMILY, family]
    finally:
        monkeypatch.undo()
        plots_base._reset_font_search()
