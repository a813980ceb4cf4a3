"""One patient through the whole protocol in a real browser, by the people who enter it (issue 9).

A coordinator screens, consents, enrolls and baselines a patient, starts mFOLFIRINOX and gives
4 cycles, records labs and imaging and a response evaluation that refers to the MDT; an
investigator records the MDT decision for surgery; the coordinator records the operation, the
pathology, the postoperative labs of days 1/3/5/7/30, two specimens, the end of treatment,
follow-up contacts, a recurrence and the death; the investigator signs the casebook; a
statistician downloads the analysis dataset and finds the patient with the OS and RFS the
entered dates give. The coordinator also works once in Chinese.

Only the users and their site are made in the database; everything else goes through the
pages (Chromium, Playwright, the live server on PostgreSQL), and the journey fails on any
JavaScript error, failed request or unexpected HTTP error (tests/e2e/helpers.py). Screenshots
of the key pages go to var/artifacts/e2e/.
"""

import csv
import io
import re
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.utils import timezone, translation

from tests.e2e.helpers import PASSWORD, Browser
from tests.factories.trial import SiteFactory, StudyFactory, UserFactory
from trial.models import Role

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# Day 0 is the enrollment, far enough back that every date of the journey is in the past.
ENROLLED_DAYS_AGO = 300
CYCLE_DAYS = (3, 17, 31, 45)  # mFOLFIRINOX every 14 days from day 3
OPERATED = 75
POSTOP_DAYS = (1, 3, 5, 7, 30)
RECURRENCE = 198
DIED = 280
HOSPITAL_RECORD_NUMBER = "E2E-000001"


@pytest.fixture
def people(db):
    """The study's site and one user per role of the journey (the only database setup)."""
    study = StudyFactory(code=settings.STUDY_CODE)
    site = SiteFactory(code="CJFH", study=study, name="China-Japan Friendship Hospital")
    made = {}
    for username, role in (
        ("e2e_coordinator", Role.COORDINATOR),
        ("e2e_investigator", Role.INVESTIGATOR),
        ("e2e_statistician", Role.STATISTICIAN),
    ):
        made[role] = UserFactory(username=username, roles=[role], sites=[site], password=PASSWORD)
    return made


class Journey:
    """The dates of the journey, day 0 being the enrollment."""

    def __init__(self, today: date) -> None:
        self.today = today
        self.day0 = today - timedelta(days=ENROLLED_DAYS_AGO)

    def day(self, n: int) -> date:
        return self.day0 + timedelta(days=n)


def _as(chromium, server, artifacts, username: str) -> Browser:
    """A fresh browser context (its own cookies, like another person's desk), logged in."""
    context = chromium.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    user = Browser(context.new_page(), server.url, artifacts)
    user.login(username)
    user.assert_clean(f"login of {username}")
    return user


def _screen_consent_enroll(b: Browser, j: Journey) -> str:
    """Screening → consent → enrollment → baseline; returns the patient page's path."""
    b.open("/patients/")
    b.click_link("Screen a candidate")
    b.fill(
        **{
            "id-full_name": "Wang E2E Journey",
            "id-hospital_record_number": HOSPITAL_RECORD_NUMBER,
            "id-date_of_birth": date(1961, 3, 14),
            "id-phone": "13800000000",
        }
    )
    b.choose("id-sex", "F")
    b.fill(screened_on=j.day(-2), imaging_on=j.day(-7))
    b.select("intended_cohort", "Prospective")
    b.select("confirmation", "Histology")
    b.choose("is_pdac", "True")
    b.choose("synchronous_liver_metastases", "True")
    b.choose("prior_systemic_therapy", "False")
    b.save()
    patient_path = b.page.url.removeprefix(b.base_url)
    assert re.fullmatch(r"/patients/\d+/", patient_path), patient_path
    b.expect_text("Not eligible yet")  # no consent yet

    b.click_link("Record")  # the consent row of the forms table
    b.choose("basis", "signed")
    b.fill(consented_on=j.day(-1), consent_version="v2.0")
    b.choose("study_consent", "True")
    b.choose("biobank_consent", "True")
    b.save()

    b.click_link("Enroll")
    b.fill(enrolled_on=j.day(0), diagnosed_on=j.day(-10))
    b.choose("cohort", "prospective")
    b.save()
    b.expect_text("Enrolled")

    b.open(patient_path + "baseline/")
    b.fill(assessed_on=j.day(0), height_cm=165, weight_kg=58, primary_size_mm=32)
    b.fill(liver_met_count=2, liver_met_largest_mm=18, ca19_9_u_ml=850, cea_ng_ml=6.5)
    b.select_value("ecog", "1")
    b.select("primary_site", "Head")
    b.select_value("ajcc_t", "T3")
    b.select_value("ajcc_n", "N1")
    b.choose("liver_met_distribution", "unilobar")
    b.save()
    return patient_path


def _labs(b: Browser, patient_path: str, on: date, context: str, **values) -> None:
    b.open(patient_path + "labs/new/")
    b.fill(sampled_on=on)
    b.select_value("context", context)
    b.fill(**values)
    b.save()


def _imaging(b: Browser, patient_path: str, on: date, liver_mm: int, pancreas_mm: int) -> None:
    b.open(patient_path + "imaging/new/")
    b.fill(performed_on=on)
    b.choose("non_target", "present")
    b.select("lesion_1_organ", "Liver")
    b.select("lesion_2_organ", "Pancreas")
    b.fill(lesion_1_diameter=liver_mm, lesion_2_diameter=pancreas_mm)
    b.save()


def _chemotherapy_to_mdt_referral(b: Browser, j: Journey, patient_path: str) -> None:
    """Baseline labs and CT, a regimen line, 4 cycles, restaging, an evaluation → MDT."""
    markers = {"wbc": 6.1, "anc": 3.9, "hemoglobin": 128, "platelets": 210, "alt": 32}
    _labs(b, patient_path, j.day(1), "baseline", **markers, tbil=14, ca19_9=850, cea=6.5)
    _imaging(b, patient_path, j.day(1), liver_mm=18, pancreas_mm=32)  # the RECIST baseline

    b.open(patient_path + "treatment/")
    b.click_link("Start the first line")
    b.choose("regimen", "mFOLFIRINOX")
    b.fill(started_on=j.day(CYCLE_DAYS[0]))
    b.save()
    for number, day in enumerate(CYCLE_DAYS, start=1):
        b.click_link(f"Record cycle {number}")
        # The page proposes day 1 of the next cycle from the line's start and length.
        assert b.field("given_on").input_value() == j.day(day).isoformat()
        b.save()
    b.expect_text("4 across all lines")

    _labs(b, patient_path, j.day(56), "assessment", **markers, tbil=12, ca19_9=210, cea=3.1)
    _imaging(b, patient_path, j.day(56), liver_mm=11, pancreas_mm=20)  # sum 50 → 31 mm: PR
    b.expect_text("Partial response (PR)")

    b.open(patient_path + "evaluations/new/")
    b.fill(evaluated_on=j.day(57))
    b.select("imaging", j.day(56).isoformat())
    b.select("lab_panel", j.day(56).isoformat())
    b.choose("decision", "refer_mdt")
    b.save()
    b.expect_text("Refer to the MDT for surgery")
    b.expect_text("-75.3%")  # CA19-9 850 → 210


def _mdt_decision(b: Browser, j: Journey, patient_path: str) -> None:
    b.open(patient_path + "surgery/mdt/new/")
    b.fill(decided_on=j.day(63))
    b.tick("evaluations")
    for attendee in ("attended_surgeon", "attended_oncologist", "attended_radiologist"):
        b.tick(attendee)
    b.choose("decision", "radical_surgery")
    b.fill(rationale="Partial response and CA19-9 fall after 4 cycles; resectable metastases.")
    b.select_value("planned_pancreatic", "pd")
    b.tick("planned_liver_wedge")
    b.save()
    b.expect_text("Radical surgery")


def _surgery_and_biobank(b: Browser, j: Journey, patient_path: str) -> None:
    b.open(patient_path + "surgery/operation/")
    b.select("mdt_decision", "Radical surgery")
    b.fill(operated_on=j.day(OPERATED), liver_lesions_resected=2)
    b.select_value("pancreatic_procedure", "pd")
    b.tick("liver_wedge")
    b.select("approach", "Open")
    b.fill(operative_minutes=380, blood_loss_ml=450)
    b.save()

    b.open(patient_path + "surgery/pathology/")
    b.fill(reported_on=j.day(OPERATED + 7), regression_grade=2)
    b.fill(nodes_examined=16, nodes_positive=1)
    b.select_value("ypt", "ypT2")
    b.select_value("ypn", "ypN1")
    b.select_value("differentiation", "moderate")
    b.select_value("margin_pancreas", "R0")
    b.select_value("margin_liver", "R0")
    b.save()

    for day in POSTOP_DAYS:
        b.open(patient_path + "surgery/postop-labs/")
        b.click_link(f"Enter day {day}")
        assert b.field("sampled_on").input_value() == j.day(OPERATED + day).isoformat()
        b.fill(wbc=12 - day / 10, hemoglobin=105, platelets=190, alt=60, tbil=20, amylase=90)
        if day <= 3:
            b.fill(drain_amylase=300)
        b.save()
    for day in POSTOP_DAYS:
        b.expect_text(f"Day {day}")
    assert b.page.locator("main td", has_text="missing").count() == 0

    patient_id = patient_path.strip("/").split("/")[1]
    for origin, weight in (("pancreas", 120), ("liver", 80)):
        b.open(f"/biobank/patients/{patient_id}/")
        b.click_link("Record a specimen")
        b.choose("kind", "tumour")
        b.choose("origin", origin)
        b.fill(weight_mg=weight, cold_ischaemia_min=20)
        b.save()
    b.expect_text("-T01")
    b.expect_text("-T02")


def _follow_up(b: Browser, j: Journey, patient_path: str) -> None:
    followup = patient_path + "followup/"
    b.open(followup)
    b.click_link("End of treatment")
    b.fill(ended_on=j.day(OPERATED + 30))
    b.choose("reason", "completed")
    b.save()

    def contact(day: int, mode: str, vital: str, recurrence: str | None = None) -> None:
        b.open(followup)
        b.click_link("Record a contact")
        b.fill(contacted_on=j.day(day))
        b.choose("mode", mode)
        b.choose("vital_status", vital)
        if recurrence is not None:
            b.choose("ecog", "1")
            b.choose("recurrence", recurrence)
        b.save()

    contact(135, "clinic", "alive", recurrence="False")
    contact(165, "phone", "alive", recurrence="False")
    # A contact that reports a recurrence opens the recurrence form, linked to it.
    contact(RECURRENCE + 2, "clinic", "alive", recurrence="True")
    assert "/followup/recurrences/new/" in b.page.url, b.page.url
    b.fill(detected_on=j.day(RECURRENCE))
    b.choose("kind", "recurrence")
    b.choose("detected_by", "imaging")
    b.tick("site_liver")
    b.save()
    # A contact that reports the death opens the death form.
    contact(DIED + 2, "phone", "dead")
    assert "/followup/death/new/" in b.page.url, b.page.url
    b.fill(died_on=j.day(DIED))
    b.choose("source", "family")
    b.choose("cause", "progression")
    b.save()
    b.expect_text("Deceased")


def _analysis_row(b: Browser, subject_code: str) -> dict:
    """The statistician's CSV download of the analysis dataset, with the browser's session."""
    response = b.page.context.request.get(b.url("/api/v1/exports/analysis-dataset/?format=csv"))
    assert response.status == 200, response.status
    assert response.headers["content-type"].startswith("text/csv")
    rows = [r for r in csv.DictReader(io.StringIO(response.text())) if r]
    matching = [r for r in rows if r["subject_code"] == subject_code]
    assert len(matching) == 1, [r["subject_code"] for r in rows]
    return matching[0]


@pytest.mark.django_db(transaction=True)
def test_one_patient_through_the_protocol_in_a_browser(people, server, artifacts, chromium):
    # `people` and `server` come before `chromium`: the database work is done before
    # Playwright's event loop starts in this thread.
    j = Journey(timezone.localdate())

    # The coordinator: screening to the referral to the MDT.
    coordinator = _as(chromium, server, artifacts, "e2e_coordinator")
    patient_path = _screen_consent_enroll(coordinator, j)
    subject_code = coordinator.heading()
    coordinator.assert_clean("screening, consent, enrollment and baseline")
    _chemotherapy_to_mdt_referral(coordinator, j, patient_path)
    coordinator.assert_clean("chemotherapy, labs, imaging and the evaluation")
    # MDT decisions are the investigators': the coordinator is refused. (Django's bare 403
    # page has no icon link, so Chromium also asks for /favicon.ico and gets a 404.)
    with coordinator.expecting(403, 404):
        response = coordinator.page.goto(coordinator.url(patient_path + "surgery/mdt/new/"))
        assert response is not None
        assert response.status == 403
        coordinator.open(patient_path)
    coordinator.assert_clean("the refused MDT form")

    investigator = _as(chromium, server, artifacts, "e2e_investigator")
    _mdt_decision(investigator, j, patient_path)
    investigator.assert_clean("the MDT decision")

    _surgery_and_biobank(coordinator, j, patient_path)
    coordinator.assert_clean("operation, pathology, postoperative labs and specimens")
    _follow_up(coordinator, j, patient_path)
    coordinator.assert_clean("follow-up, recurrence and death")

    coordinator.open(patient_path)
    assert coordinator.heading() == subject_code
    coordinator.expect_text("Deceased")
    coordinator.screenshot("patient-page")
    coordinator.open("/visits/worklist/")
    coordinator.screenshot("worklist")

    # Once in Chinese, through the switcher in the top bar; then back to English.
    with coordinator.page.expect_navigation():
        coordinator.page.select_option("#language", "zh-hans")
    with translation.override("zh-hans"):
        worklist_zh = translation.gettext("Worklist")
    assert worklist_zh != "Worklist", "no Chinese translation of the worklist heading"
    assert coordinator.page.locator("html").get_attribute("lang") == "zh-hans"
    heading = coordinator.heading()
    assert heading.startswith(worklist_zh), heading  # "工作清单" and the date
    coordinator.open(patient_path)
    coordinator.screenshot("patient-page-zh")
    with coordinator.page.expect_navigation():
        coordinator.page.select_option("#language", "en")
    coordinator.expect_text("Protocol calendar")
    coordinator.assert_clean("the Chinese interface")

    # The investigator signs the casebook, re-entering the password.
    investigator.open(f"/quality{patient_path}casebook/")
    investigator.fill(password=PASSWORD)
    investigator.press("Sign the casebook")
    investigator.expect_text("Casebook signed.")
    investigator.expect_text("Signed by e2e_investigator")
    investigator.assert_clean("the casebook signature")

    # The statistician: the dashboard, then the analysis dataset.
    statistician = _as(chromium, server, artifacts, "e2e_statistician")
    statistician.open("/analytics/")
    statistician.expect_text("1 enrolled patient")
    statistician.screenshot("dashboard")
    row = _analysis_row(statistician, subject_code)
    assert row["enrolled_on"] == j.day(0).isoformat()
    assert row["surgery_on"] == j.day(OPERATED).isoformat()
    assert row["recurrence_on"] == j.day(RECURRENCE).isoformat()
    assert row["death_on"] == j.day(DIED).isoformat()
    assert (row["os_days"], row["os_event"]) == (str(DIED), "1")
    assert (row["rfs_days"], row["rfs_event"]) == (str(RECURRENCE - OPERATED), "1")
    assert row["cycles_before_surgery"] == "4"
    assert row["r_status"] == "R0"
    statistician.assert_clean("the analysis dataset")

    for user in (coordinator, investigator, statistician):
        user.logout()
        user.assert_clean("logout")
    for name in ("patient-page", "worklist", "patient-page-zh", "dashboard"):
        assert (artifacts / f"{name}.png").stat().st_size > 10_000, name
