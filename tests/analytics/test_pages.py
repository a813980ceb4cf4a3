"""The analysis pages (analytics/views.py): who may open them, site scoping, the figure
downloads, friendly refusals, the query count and the user's language."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.analytics.test_dashboard import Plan, build_cohort

PAGES = [
    reverse("analytics:dashboard"),
    reverse("analytics:stage-patients") + "?stage=enrolled",
    reverse("analytics:survival"),
    reverse("analytics:survival") + "?endpoint=os&group_by=sex&origin=enrollment",
    reverse("analytics:survival") + "?endpoint=rfs&origin=enrollment",
    reverse("analytics:surgery-effect"),
    reverse("analytics:swimmer"),
    reverse("analytics:waterfall"),
]
DOWNLOADS = [
    reverse("analytics:survival-figure", args=["png"]) + "?endpoint=os&group_by=sex",
    reverse("analytics:swimmer-figure", args=["svg"]),
    reverse("analytics:waterfall-figure", args=["pdf"]) + "?kind=recist",
    reverse("analytics:surgery-effect-figure", args=["png"]) + "?landmark=180",
]
MAGIC = {"svg": b"<svg", "png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}
CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}


@pytest.fixture
def cohorts(site_a, site_b, investigator):
    """20 patients at site A (deaths in both arms of the landmark at day 180) and 7 at B."""
    a = build_cohort(site=site_a, count=20, investigator=investigator)
    b = build_cohort(site=site_b, count=7, investigator=investigator)
    return a, b


@pytest.mark.parametrize("role", ["statistician", "investigator", "data_manager"])
@pytest.mark.parametrize("url", PAGES)
def test_analysis_roles_open_every_page(request, client_for, cohorts, role, url):
    client = client_for(request.getfixturevalue(role))
    response = client.get(url)
    assert response.status_code == 200
    assert b'class="analysis-nav"' in response.content


@pytest.mark.parametrize("url", PAGES + DOWNLOADS)
def test_anonymous_is_sent_to_log_in_and_a_coordinator_is_refused(client, coordinator, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))

    client.force_login(coordinator)
    assert client.get(url).status_code == 403


def test_the_analysis_link_is_in_the_navigation_only_for_analysts(
    client_for, statistician, coordinator
):
    link = ('href="%s"' % reverse("analytics:dashboard")).encode()
    assert link in client_for(statistician).get(reverse("patients:patient-list")).content
    assert link not in client_for(coordinator).get(reverse("patients:patient-list")).content


def test_an_investigator_never_sees_another_sites_patients(
    client_for, investigator, statistician, cohorts
):
    site_a_patients, site_b_patients = cohorts
    pages = [
        reverse("analytics:stage-patients") + "?stage=" + key
        for key in (
            "enrolled",
            "chemotherapy",
            "evaluated",
            "mdt",
            "resected",
            "follow_up",
            "deceased",
            "withdrawn",
            "lost",
        )
    ] + [
        reverse("analytics:swimmer"),
        reverse("analytics:waterfall"),
        reverse("analytics:dashboard"),
    ]

    client = client_for(investigator)
    seen = b"".join(client.get(url).content for url in pages).decode()
    assert site_a_patients[0].subject_code in seen
    for patient in site_b_patients:
        assert patient.subject_code not in seen

    client = client_for(statistician)  # the same pages list site B for a member of both
    seen = b"".join(client.get(url).content for url in pages).decode()
    assert all(p.subject_code in seen for p in site_b_patients)


def test_the_funnel_links_to_the_patients_behind_each_count(client_for, statistician, cohorts):
    site_a_patients, _b = cohorts
    page = client_for(statistician).get(reverse("analytics:dashboard")).content.decode()
    assert reverse("analytics:stage-patients") + "?stage=resected" in page

    listing = client_for(statistician).get(reverse("analytics:stage-patients") + "?stage=resected")
    html = listing.content.decode()
    resected = [p for i, p in enumerate(site_a_patients) if Plan(i).resected]
    for patient in resected:
        assert reverse("patients:patient-detail", args=[patient.pk]) in html
    not_resected = [p for i, p in enumerate(site_a_patients) if not Plan(i).resected]
    assert not_resected[0].subject_code not in html


def test_the_dashboard_says_drafts_stand_for_open_data_issues(client_for, data_manager, cohorts):
    html = client_for(data_manager).get(reverse("analytics:dashboard")).content.decode()
    assert "Open data issues: the forms saved as drafts" in html
    assert "chemotherapy cycles 4" in html  # site A: 4 draft cycles


@pytest.mark.parametrize("url", DOWNLOADS)
def test_downloads_have_the_right_type_bytes_and_name(client_for, statistician, cohorts, url):
    fmt = url.split("?")[0].rsplit(".", 1)[1]
    response = client_for(statistician).get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPES[fmt]
    body = response.content
    if fmt == "svg":
        assert MAGIC["svg"] in body[:400]
    else:
        assert body.startswith(MAGIC[fmt])
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="plm-edc_')
    assert disposition.endswith(f'.{fmt}"')


def test_the_png_download_is_300_dpi(client_for, statistician, cohorts):
    import struct

    body = client_for(statistician).get(reverse("analytics:swimmer-figure", args=["png"])).content
    at = body.index(b"pHYs")
    x, y, unit = struct.unpack(">IIB", body[at + 4 : at + 13])
    assert unit == 1  # per metre
    assert round(x * 0.0254) == 300
    assert round(y * 0.0254) == 300


def test_the_survival_page_names_the_endpoint_and_shows_the_table(
    client_for, statistician, cohorts
):
    response = client_for(statistician).get(
        reverse("analytics:survival") + "?endpoint=os&group_by=sex&origin=enrollment"
    )
    html = response.content.decode()
    assert "<svg" in html
    assert 'role="img"' in html
    assert "Log-rank test" in html
    assert "At 12 months" in html
    assert (
        reverse("analytics:survival-figure", args=["pdf"]) + "?endpoint=os&amp;group_by=sex" in html
    )


def test_no_events_is_a_message_not_a_server_error(client_for, investigator, site_a):
    build_cohort(site=site_a, count=1, investigator=investigator)  # patient 0: alive
    client = client_for(investigator)

    page = client.get(reverse("analytics:survival"))
    assert page.status_code == 200
    assert "No deaths among the 1 patients" in page.content.decode()
    assert 'role="alert"' in page.content.decode()

    download = client.get(reverse("analytics:survival-figure", args=["png"]) + "?endpoint=os")
    assert download.status_code == 400
    assert "No deaths among the 1 patients" in download.content.decode()

    effect = client.get(reverse("analytics:surgery-effect"))
    assert effect.status_code == 200
    assert "No deaths among the 1 patients" in effect.content.decode()


def test_bad_choices_are_shown_on_the_form(client_for, statistician, cohorts):
    client = client_for(statistician)
    page = client.get(reverse("analytics:survival") + "?endpoint=os&group_by=shoe_size")
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()

    page = client.get(reverse("analytics:surgery-effect") + "?landmarks=ninety")
    assert page.status_code == 200
    assert "is not a whole number of days" in page.content.decode()

    assert (
        client.get(reverse("analytics:survival-figure", args=["png"]) + "?group_by=x").status_code
        == 400
    )
    assert client.get(reverse("analytics:survival-figure", args=["gif"])).status_code == 404
    assert (
        client.get(reverse("analytics:waterfall-figure", args=["svg"]) + "?kind=pet").status_code
        == 400
    )
    assert client.get(reverse("analytics:stage-patients") + "?stage=heaven").status_code == 404


def test_the_surgery_effect_page_marks_the_naive_comparison_and_explains(
    client_for, statistician, cohorts
):
    html = client_for(statistician).get(reverse("analytics:surgery-effect")).content.decode()
    assert "biased by immortal time" in html
    assert "immortal time" in html.split("biased by immortal time")[0]  # the explanation first
    assert "Time-varying Cox model" in html
    assert "Landmark day 180" in html


def _page_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        reverse("analytics:dashboard"),
        reverse("analytics:stage-patients") + "?stage=mdt",
        reverse("analytics:survival") + "?endpoint=os&group_by=resected",
        reverse("analytics:surgery-effect"),
        reverse("analytics:swimmer"),
        reverse("analytics:waterfall"),
    ],
)
def test_page_queries_do_not_grow_with_the_patients(
    client_for, statistician, site_a, investigator, url
):
    client = client_for(statistician)
    build_cohort(site=site_a, count=5, investigator=investigator)
    small = _page_queries(client, url)
    build_cohort(site=site_a, count=25, investigator=investigator)
    large = _page_queries(client, url)
    assert small == large
    assert large <= 130


def test_pages_render_in_chinese(client_for, statistician, cohorts):
    client = client_for(statistician)
    for url in PAGES:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 200
        html = response.content.decode()
        assert '<html lang="zh-hans">' in html
        assert "退出登录" in html  # "Log out", already in the catalogue


def test_figures_are_drawn_in_the_request_language(client_for, statistician, cohorts, monkeypatch):
    # The catalogue may not hold the figures' words yet, so check the language that is active
    # while the figure's texts are looked up.
    from django.utils import translation

    from analytics import plots_km

    seen = []
    original = plots_km._default_labels

    def spy(*args, **kwargs):
        seen.append(translation.get_language())
        return original(*args, **kwargs)

    monkeypatch.setattr(plots_km, "_default_labels", spy)
    client = client_for(statistician)
    url = reverse("analytics:survival-figure", args=["svg"]) + "?endpoint=os"
    assert client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 200
    assert client.get(url, HTTP_ACCEPT_LANGUAGE="en").status_code == 200
    assert seen == ["zh-hans", "en"]


def test_inline_figures_keep_their_ids_apart_and_are_announced():
    import re

    from analytics import plots
    from analytics.views import inline_svg

    rendered = plots.render(
        plots.waterfall_figure({"A-1": -40.0, "A-2": 10.0}, kind="ca19_9"), "svg"
    )
    svg = inline_svg(rendered, prefix="w1", title="CA19-9 <best>", description="Two bars")

    assert svg.startswith("<svg")
    ids = re.findall(r'\bid="([^"]+)"', svg)
    references = re.findall(r'(?:url\(#|href="#)([^")]+)', svg)
    assert ids
    assert all(i.startswith("w1-") for i in ids)
    assert set(references) <= set(ids)
    assert 'role="img" aria-labelledby="w1-title w1-desc"' in svg
    assert '<title id="w1-title">CA19-9 &lt;best&gt;</title>' in svg
