"""The upload page: data managers only, size and type checked, the report as a table."""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from exchange.models import ImportRun
from patients.models import Patient
from tests.exchange.files import FULL, GOOD_ROWS, MINIMAL_DEAD, csv_bytes, xlsx_bytes

URL = "/exchange/import/"


def _post(client, content: bytes, name: str = "cohort.csv", **fields):
    data = {"file": SimpleUploadedFile(name, content), "waiver_reference": "2024-KY-213", **fields}
    return client.post(URL, data)


def test_the_url_is_named():
    assert reverse("exchange:import") == URL


def test_a_data_manager_runs_a_dry_run_then_the_import(client_for, data_manager, site_a):
    client = client_for(data_manager)
    page = client.get(URL)
    assert page.status_code == 200
    assert 'href="/exchange/import/"' in page.content.decode()  # the navigation link

    response = _post(client, csv_bytes(GOOD_ROWS), dry_run="on")
    assert response.status_code == 200
    assert "The file is valid (3 rows)" in response.content.decode()
    assert Patient.objects.count() == 0

    response = _post(client, csv_bytes(GOOD_ROWS))
    assert "Imported: 3 patients created, 0 updated." in response.content.decode()
    assert Patient.objects.count() == 3
    runs = list(ImportRun.objects.order_by("id"))
    assert [r.status for r in runs] == ["valid", "imported"]
    assert runs[1].user == data_manager
    assert len(runs[1].sha256) == 64
    assert "cohort.csv" in client.get(URL).content.decode()


def test_the_report_is_a_table_of_row_column_value_and_message(client_for, data_manager, site_a):
    response = _post(client_for(data_manager), csv_bytes([FULL, {**MINIMAL_DEAD, "sex": "X"}]))
    html = response.content.decode()
    assert "1 error: nothing was imported." in html
    assert '<td class="num">3</td>' in html
    assert "<code>sex</code>" in html
    assert "Unknown code X" in html
    assert Patient.objects.count() == 0


def test_an_xlsx_upload_is_accepted(client_for, data_manager, site_a):
    response = _post(client_for(data_manager), xlsx_bytes([MINIMAL_DEAD]), name="cohort.xlsx")
    assert "Imported: 1 patients created" in response.content.decode()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"PK\x03\x04not really a workbook", "cohort.csv", "is not a text file"),
        (b"subject_code,sex\n", "cohort.xlsx", "is not an Excel (XLSX) workbook"),
        (b"subject_code,sex\n", "cohort.txt", "Upload a .csv or .xlsx file"),
    ],
)
def test_a_file_of_the_wrong_type_is_refused(
    client_for, data_manager, site_a, content, name, message
):
    response = _post(client_for(data_manager), content, name=name)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ImportRun.objects.exists()


def test_an_oversized_file_is_refused(client_for, data_manager, site_a):
    content = csv_bytes([MINIMAL_DEAD]) + b"\n" * (settings.IMPORT_MAX_BYTES + 1)
    response = _post(client_for(data_manager), content)
    assert response.status_code == 400
    assert "at most 10 MB" in response.content.decode()
    assert not ImportRun.objects.exists()


def test_a_coordinator_may_not_import(client_for, coordinator):
    client = client_for(coordinator)
    assert client.get(URL).status_code == 403
    assert _post(client, csv_bytes([MINIMAL_DEAD])).status_code == 403
    assert 'href="/exchange/import/"' not in client.get("/patients/").content.decode()


def test_anonymous_users_are_sent_to_the_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
