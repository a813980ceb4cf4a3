"""The audit-trail viewer (/quality/…/audit/): a patient's trail and one record's, on the page,
as CSV and as PDF; who may read it (trial.view_audit, own sites); a query count that does not
grow with the history."""

import base64
import csv
import io
import re
import zlib
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import Baseline, Consent, PatientIdentity
from tests.factories.patients import baselined_patient
from trial.services import clinical_save, clinical_void


@pytest.fixture
def patient(site_a, coordinator):
    patient = baselined_patient(site=site_a, user=coordinator)
    baseline = Baseline.objects.get(patient=patient)
    baseline.ecog = 2
    clinical_save(baseline, user=coordinator, reason="病历更正 chart corrected")
    clinical_void(Consent.objects.get(patient=patient), user=coordinator, reason="entered twice")
    return patient


def _patient_url(patient, **query) -> str:
    url = reverse("quality:audit-patient", args=[patient.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _record_url(record, **query) -> str:
    url = reverse("quality:audit-record", args=[record._meta.label_lower, record.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# --- who may read it --------------------------------------------------------------------------


@pytest.mark.parametrize("export", ["", "csv", "pdf"])
def test_permissions(client_for, patient, coordinator, monitor, data_manager, export):
    query = {"format": export} if export else {}
    baseline = Baseline.objects.get(patient=patient)
    assert client_for(coordinator).get(_patient_url(patient, **query)).status_code == 403
    assert client_for(coordinator).get(_record_url(baseline, **query)).status_code == 403
    assert client_for(monitor).get(_patient_url(patient, **query)).status_code == 200
    assert client_for(monitor).get(_record_url(baseline, **query)).status_code == 200
    assert client_for(data_manager).get(_patient_url(patient, **query)).status_code == 200


def test_another_sites_patient_and_records_are_404(client_for, patient, site_b):
    from tests.factories.trial import UserFactory
    from trial.models import Role

    other_monitor = UserFactory(roles=[Role.MONITOR], sites=[site_b], username="mon_b")
    client = client_for(other_monitor)
    assert client.get(_patient_url(patient)).status_code == 404
    assert client.get(_record_url(Baseline.objects.get(patient=patient))).status_code == 404
    assert client.get(_patient_url(patient, format="csv")).status_code == 404
    assert client.get("/quality/records/patients.nothing/1/audit/").status_code == 404
    assert client.get("/quality/records/auth.user/1/audit/").status_code == 404


def test_identity_rows_only_for_users_who_may_see_phi(client_for, patient, monitor, data_manager):
    identity = PatientIdentity.objects.get(patient=patient)
    page = client_for(monitor).get(_patient_url(patient)).content.decode()
    assert identity.full_name in page
    rows = _csv(client_for(monitor).get(_patient_url(patient, format="csv")))
    identity_rows = [row for row in rows if row[2] == "patients.patientidentity"]
    assert identity_rows  # the change is listed …
    assert {row[8] for row in identity_rows} == {"[PHI withheld]"}  # … but PHI never leaves
    assert identity.full_name not in str(rows)
    assert identity.hospital_record_number not in str(rows)
    response = client_for(data_manager).get(_patient_url(patient, format="csv"))
    assert "patients.patientidentity" not in [row[2] for row in _csv(response)]
    assert client_for(data_manager).get(_record_url(identity)).status_code == 404
    assert client_for(monitor).get(_record_url(identity)).status_code == 200


# --- the page ----------------------------------------------------------------------------------


def test_the_page_shows_who_when_old_new_and_reason(client_for, patient, monitor):
    response = client_for(monitor).get(_patient_url(patient))
    assert response.status_code == 200
    html = response.content.decode()
    assert patient.subject_code in html
    assert "病历更正 chart corrected" in html
    assert "<del>1 — Restricted" in html  # ECOG 1 → 2
    assert "<ins>2 — Ambulatory" in html
    assert "entered twice" in html
    assert "coord_a" in html
    record_link = _record_url(Baseline.objects.get(patient=patient))
    assert record_link in html


def test_filter_by_form_and_by_user(client_for, patient, monitor, coordinator):
    client = client_for(monitor)
    trail = client.get(_patient_url(patient, form="patients.baseline")).context["trail"]
    assert {e.form for e in trail.entries} == {"patients.baseline"}
    assert len(trail.entries) == 2
    assert trail.entries[0].changes  # the edit still shows old → new
    assert ("patients.consent", "consent") in trail.forms

    by_user = client.get(_patient_url(patient, user=coordinator.pk)).context["trail"]
    assert by_user.entries
    assert {e.user_id for e in by_user.entries} == {coordinator.pk}
    nobody = client.get(_patient_url(patient, user=999999)).context["trail"]
    assert nobody.entries == []


def test_the_page_is_paginated(client_for, patient, monitor, coordinator, settings):
    from trial import views_audit

    baseline = Baseline.objects.get(patient=patient)
    for weight in range(60, 66):
        baseline.weight_kg = Decimal(weight)
        baseline = clinical_save(baseline, user=coordinator, reason="weighed again")
    total = client_for(monitor).get(_patient_url(patient)).context["trail"].total
    original = views_audit.PER_PAGE
    views_audit.PER_PAGE = 5
    try:
        response = client_for(monitor).get(_patient_url(patient, page=2))
    finally:
        views_audit.PER_PAGE = original
    page = response.context["page"]
    assert page.number == 2
    assert page.paginator.num_pages == -(-total // 5)
    assert len(page.object_list) == 5


def test_the_record_page_shows_only_that_record(client_for, patient, monitor):
    baseline = Baseline.objects.get(patient=patient)
    response = client_for(monitor).get(_record_url(baseline))
    trail = response.context["trail"]
    assert {(e.form, e.record_id) for e in trail.entries} == {("patients.baseline", baseline.pk)}
    assert [e.version for e in trail.entries] == [2, 1]


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_query_count_does_not_grow_with_the_history(
    client_for, patient, monitor, coordinator, django_assert_max_num_queries
):
    client = client_for(monitor)
    url = _patient_url(patient)
    csv_url = _patient_url(patient, format="csv")
    client.get(url)  # warm the per-process caches (content types, permissions)
    before = _count(client, url)
    csv_before = _count(client, csv_url)
    baseline = Baseline.objects.get(patient=patient)
    for ecog in (0, 1, 2, 3, 0, 1):
        baseline.ecog = ecog
        baseline = clinical_save(baseline, user=coordinator, reason="again")
    assert _count(client, url) == before
    assert _count(client, csv_url) == csv_before
    with django_assert_max_num_queries(70):
        client.get(url)
    record = _record_url(baseline)
    with django_assert_max_num_queries(15):
        client.get(record)


# --- exports -----------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[1:]


def test_the_csv_has_one_line_per_changed_field(client_for, patient, monitor):
    response = client_for(monitor).get(_patient_url(patient, format="csv"))
    assert "attachment;" in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == [
        "When",
        "User",
        "Form",
        "Record",
        "Record id",
        "Action",
        "Field",
        "Old value",
        "New value",
        "Reason",
        "Version",
        "History id",
    ]
    baseline = Baseline.objects.get(patient=patient)
    edit = [r for r in rows if r[2] == "patients.baseline" and r[9] == "病历更正 chart corrected"]
    assert [(r[4], r[5], r[6], r[7][:1], r[8][:1], r[10]) for r in edit] == [
        (str(baseline.pk), "changed", "ECOG performance status", "1", "2", "2")
    ]
    voided = [r for r in rows if r[2] == "patients.consent" and r[9] == "entered twice"]
    assert {r[6] for r in voided} >= {"voided at", "voided by", "reason for voiding"}
    assert all(r[1] == "coord_a" for r in edit + voided)
    # Newest first, like the page.
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)


def test_the_csv_defuses_formulas(client_for, patient, monitor, coordinator):
    baseline = Baseline.objects.get(patient=patient)
    baseline.comorbid_other = "=HYPERLINK(1)"
    clinical_save(baseline, user=coordinator, reason="@risk")
    rows = _csv(client_for(monitor).get(_record_url(baseline, format="csv")))
    assert [rows[0][8], rows[0][9]] == ["'=HYPERLINK(1)", "'@risk"]


def _pdf_text(data: bytes) -> bytes:
    """The decoded content streams of a PDF (ASCII85 and Flate, as reportlab writes them),
    without a PDF library: enough to find the text drawn."""
    out = []
    for match in re.finditer(rb"<<(.*?)>>\s*stream\r?\n(.*?)endstream", data, re.S):
        header, body = match.groups()
        if b"ASCII85Decode" in header:
            body = body.strip().removeprefix(b"<~").removesuffix(b"~>")
            body = base64.a85decode(body)
        if b"FlateDecode" in header:
            body = zlib.decompress(body)
        out.append(body)
    return b"\n".join(out)


def _cid_literal(text: str) -> bytes:
    """`text` as a PDF literal string in a UCS-2 CID font: big-endian code units, printable
    ASCII bytes as themselves, others as octal escapes."""
    out = b""
    for byte in text.encode("utf-16-be"):
        char = bytes([byte])
        if char in b"()\\":
            out += b"\\" + char
        elif 32 <= byte < 127:
            out += char
        else:
            out += b"\\%03o" % byte
    return out


def test_the_pdf_has_the_header_the_entries_and_chinese(client_for, patient, monitor):
    response = client_for(monitor).get(_patient_url(patient, format="pdf"))
    assert response["Content-Type"] == "application/pdf"
    data = response.content
    assert data.startswith(b"%PDF")
    text = _pdf_text(data)
    assert patient.subject_code.encode() in text
    assert b"NCT06873178" in text
    assert b"mon_a" in text  # generated by
    assert b"entered twice" in text
    assert re.search(rb"Page 1 of \d+", text)
    # The Chinese reason is drawn in the CID font (UCS-2 code points, hex or literal).
    assert b"STSong-Light" in data
    assert _cid_literal("病历更正") in text


def test_the_record_pdf_names_the_record(client_for, patient, monitor):
    baseline = Baseline.objects.get(patient=patient)
    data = client_for(monitor).get(_record_url(baseline, format="pdf")).content
    text = _pdf_text(data)
    assert data.startswith(b"%PDF")
    assert patient.subject_code.encode() in text
    assert f"#{baseline.pk}".encode() in text
