"""The lifecycle pages: a record's verification / signature / lock, the casebook, the study
lock, the CRF banner and the patient-page panel; permissions, site scoping, query counts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from patients import services as patient_services
from patients.models import Baseline, Consent
from tests.factories.forms import baseline_post
from tests.factories.patients import TODAY, ConsentFactory, enrolled_patient
from trial import lifecycle
from trial.lifecycle_selectors import clinical_models
from trial.models import Casebook, FormStatus, Signature, SourceVerification, Study
from trial.services import clinical_save
from trial.views_lifecycle import EDIT_PAGES, edit_url

PASSWORD = "test-password-123"  # tests.factories.trial.UserFactory


def _baseline(patient, user) -> Baseline:
    values = {
        "assessed_on": patient.enrollment.enrolled_on,
        "ecog": 1,
        "height_cm": Decimal("170"),
        "weight_kg": Decimal("64"),
        "primary_site": "head",
        "primary_size_mm": Decimal("30"),
        "liver_met_count": 2,
        "liver_met_largest_mm": Decimal("15"),
        "liver_met_distribution": "unilobar",
        "ajcc_t": "T3",
        "ajcc_n": "N1",
    }
    return patient_services.baseline_save(
        baseline=Baseline(patient=patient, **values), user=user, today=TODAY
    )


def _record_url(record) -> str:
    return reverse("quality:record", args=[record._meta.label_lower, record.pk])


@pytest.fixture
def patient(site_a, coordinator):
    return enrolled_patient(site=site_a, user=coordinator)


@pytest.fixture
def baseline(patient, coordinator):
    return _baseline(patient, coordinator)


@pytest.fixture
def other_site_baseline(site_b, coordinator_b):
    return _baseline(enrolled_patient(site=site_b, user=coordinator_b), coordinator_b)


def test_the_record_page_shows_the_data_and_a_monitor_verifies(client_for, monitor, baseline):
    client = client_for(monitor)
    response = client.get(_record_url(baseline))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Primary tumour site" in text or "primary tumour site" in text.lower()
    assert "Head" in text  # the choice's label, not its code
    assert 'name="verify_whole"' in text
    assert 'name="fields" value="ecog"' in text
    assert reverse("patients:baseline-edit", args=[baseline.patient_id]) in text

    response = client.post(
        _record_url(baseline), {"action": "verify", "version": "1", "fields": ["ecog"]}
    )
    assert response.status_code == 302
    assert Baseline.objects.get(pk=baseline.pk).status == FormStatus.COMPLETE
    response = client.post(
        _record_url(baseline), {"action": "verify", "version": "1", "verify_whole": "1"}
    )
    assert response.status_code == 302
    stored = Baseline.objects.get(pk=baseline.pk)
    assert (stored.status, stored.version) == (FormStatus.VERIFIED, 1)
    assert SourceVerification.objects.filter(field="").count() == 1


def test_investigator_signs_and_an_edit_breaks_the_signature(
    client_for, investigator, coordinator, patient, baseline
):
    url = _record_url(baseline)
    client = client_for(investigator)
    page = client.get(url).content.decode()
    assert "I approve the data of this record as accurate and complete." in page
    assert 'type="password"' in page

    response = client.post(url, {"action": "sign", "version": "1", "password": "nope"})
    assert response.status_code == 200
    assert "The password is not correct: nothing was signed." in response.content.decode()
    assert not Signature.objects.exists()
    assert Baseline.objects.get(pk=baseline.pk).status == FormStatus.COMPLETE

    response = client.post(url, {"action": "sign", "version": "1", "password": PASSWORD})
    assert response.status_code == 302
    assert Baseline.objects.get(pk=baseline.pk).status == FormStatus.SIGNED
    assert "holds" in client.get(url).content.decode()

    # The coordinator's CRF page says that an edit returns the form to complete; the edit does.
    client = client_for(coordinator)
    crf = reverse("patients:baseline-edit", args=[patient.pk])
    page = client.get(crf).content.decode()
    assert "Saving a change to this form returns it to complete" in page
    on = patient.enrollment.enrolled_on
    response = client.post(
        crf, baseline_post(on=on, ecog="2", version="1", change_reason="chart"), follow=True
    )
    assert "needs to be verified and signed again" in response.content.decode()
    stored = Baseline.objects.get(pk=baseline.pk)
    assert (stored.status, stored.version) == (FormStatus.COMPLETE, 2)

    page = client_for(investigator).get(url).content.decode()
    assert "no longer holds: data changed after signing (version 1 → 2)" in page
    assert 'class="badge bad warn-box" role="alert"' in page


def test_coordinator_cannot_sign_and_monitor_cannot_edit(
    client_for, coordinator, monitor, patient, baseline
):
    client = client_for(coordinator)
    assert client.get(_record_url(baseline)).status_code == 200
    response = client.post(
        _record_url(baseline), {"action": "sign", "version": "1", "password": PASSWORD}
    )
    assert response.status_code == 403
    response = client.post(
        reverse("quality:casebook", args=[patient.pk]), {"action": "sign", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert not Signature.objects.exists()

    client = client_for(monitor)
    assert client.get(reverse("patients:baseline-edit", args=[patient.pk])).status_code == 403
    on = patient.enrollment.enrolled_on
    response = client.post(
        reverse("patients:baseline-edit", args=[patient.pk]),
        baseline_post(on=on, ecog="3", version="1", change_reason="x"),
    )
    assert response.status_code == 403
    assert Baseline.objects.get(pk=baseline.pk).ecog == 1
    response = client.post(_record_url(baseline), {"action": "lock", "reason": "x"})
    assert response.status_code == 403


def test_a_locked_form_is_read_only(client_for, data_manager, coordinator, patient, baseline):
    client = client_for(data_manager)
    response = client.post(_record_url(baseline), {"action": "lock", "reason": ""})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    response = client.post(_record_url(baseline), {"action": "lock", "reason": "final check"})
    assert response.status_code == 302
    page = client.get(_record_url(baseline)).content.decode()
    assert "Locked by dm on" in page
    assert "final check" in page
    assert "Unlock this form" in page

    client = client_for(coordinator)
    crf = reverse("patients:baseline-edit", args=[patient.pk])
    page = client.get(crf).content.decode()
    assert "This form is locked." in page
    assert 'name="save_complete"' not in page
    on = patient.enrollment.enrolled_on
    response = client.post(crf, baseline_post(on=on, ecog="3", version="1", change_reason="x"))
    assert response.status_code == 200
    assert "This form is locked: it cannot change until a data manager unlocks it" in (
        response.content.decode()
    )
    assert Baseline.objects.get(pk=baseline.pk).ecog == 1

    client = client_for(data_manager)
    response = client.post(_record_url(baseline), {"action": "unlock", "reason": "query"})
    assert response.status_code == 302
    assert Baseline.objects.get(pk=baseline.pk).status == FormStatus.COMPLETE


def test_a_locked_casebook_refuses_edits_and_voids(
    client_for, data_manager, coordinator, patient, baseline
):
    # An older consent, which the enrollment does not rest on: voiding it is refused only by
    # the lock.
    consent = ConsentFactory(patient=patient, consented_on=TODAY - timedelta(days=60))
    client = client_for(data_manager)
    url = reverse("quality:casebook", args=[patient.pk])
    response = client.post(url, {"action": "lock", "reason": "last visit done"})
    assert response.status_code == 302
    assert "This casebook is locked." in client.get(url).content.decode()

    client = client_for(coordinator)
    page = client.get(reverse("patients:baseline-edit", args=[patient.pk])).content.decode()
    assert "This patient's casebook is locked." in page
    assert 'name="save_complete"' not in page
    void = reverse("patients:consent-void", args=[patient.pk, consent.pk])
    response = client.post(void, {"version": consent.version, "void_reason": "wrong patient"})
    assert response.status_code == 200
    assert "casebook is locked" in response.content.decode()
    assert Consent.objects.get(pk=consent.pk).voided_at is None


def test_the_study_lock_page(client_for, data_manager, coordinator, patient, baseline):
    url = reverse("quality:study-lock")
    assert client_for(coordinator).get(url).status_code == 403
    client = client_for(data_manager)
    assert "The study database is open" in client.get(url).content.decode()
    response = client.post(url, {"action": "lock", "reason": "final analysis"})
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "Locked by dm on" in page
    assert "final analysis" in page
    assert Study.objects.get().locked_by == data_manager

    client = client_for(coordinator)
    crf = reverse("patients:baseline-edit", args=[patient.pk])
    page = client.get(crf).content.decode()
    assert "The study database is locked." in page
    assert 'name="save_complete"' not in page
    on = patient.enrollment.enrolled_on
    response = client.post(crf, baseline_post(on=on, ecog="3", version="1", change_reason="x"))
    assert "The study database is locked" in response.content.decode()
    assert Baseline.objects.get(pk=baseline.pk).ecog == 1

    response = client_for(data_manager).post(url, {"action": "unlock", "reason": "correction"})
    assert response.status_code == 302
    assert Study.objects.get().locked_at is None


def test_the_casebook_page_signs_and_shows_whether_it_holds(
    client_for, investigator, coordinator, patient, baseline
):
    url = reverse("quality:casebook", args=[patient.pk])
    client = client_for(investigator)
    page = client.get(url).content.decode()
    assert "I have reviewed this casebook" in page
    assert _record_url(baseline) in page
    response = client.post(url, {"action": "sign", "password": "wrong"})
    assert response.status_code == 200
    assert "The password is not correct" in response.content.decode()
    assert not Signature.objects.exists()
    assert client.post(url, {"action": "sign", "password": PASSWORD}).status_code == 302
    assert "holds" in client.get(url).content.decode()

    consent = Consent.objects.get(patient=patient)
    consent.consent_version = "v2.0"
    clinical_save(consent, user=coordinator, expected_version=consent.version, reason="typo")
    version = Casebook.objects.get(pk=patient.pk).version
    page = client.get(url).content.decode()
    assert f"no longer holds: data changed after signing (version {version - 1} → {version})" in (
        page
    )
    panel = client.get(reverse("patients:patient-detail", args=[patient.pk])).content.decode()
    assert "Casebook & signatures" in panel
    assert "no longer holds" in panel


def test_other_sites_are_404_and_no_view_permission_is_403(
    client_for, monitor, site_admin, baseline, other_site_baseline
):
    client = client_for(monitor)
    assert client.get(_record_url(other_site_baseline)).status_code == 404
    other_patient = other_site_baseline.patient_id
    assert client.get(reverse("quality:casebook", args=[other_patient])).status_code == 404
    response = client.post(
        _record_url(other_site_baseline), {"action": "verify", "version": 1, "verify_whole": 1}
    )
    assert response.status_code == 404
    assert not SourceVerification.objects.exists()
    assert client.get("/quality/records/trial.study/1/").status_code == 404
    assert client.get("/quality/records/patients.baseline/999999/").status_code == 404

    # A site administrator reads patients but no clinical form.
    assert client_for(site_admin).get(_record_url(baseline)).status_code == 403


def test_every_clinical_form_has_an_edit_page(patient, baseline):
    labels = {model._meta.label_lower for model in clinical_models()}
    assert labels == set(EDIT_PAGES)
    url = edit_url(baseline, patient.pk)
    assert url == reverse("patients:baseline-edit", args=[patient.pk])
    for label, (name, pk_kwarg, with_patient) in EDIT_PAGES.items():
        kwargs = {"patient_id": 1} if with_patient else {}
        if pk_kwarg:
            kwargs[pk_kwarg] = 1
        assert reverse(name, kwargs=kwargs), label


@pytest.mark.parametrize("count", [1, 10])
def test_the_record_page_queries_stay_flat(
    client_for, monitor, investigator, baseline, count, django_assert_max_num_queries
):
    for _ in range(count):
        lifecycle.form_sign(baseline, user=investigator, password=PASSWORD, expected_version=1)
        SourceVerification.objects.create(
            content_type_id=Signature.objects.first().content_type_id,
            object_id=baseline.pk,
            patient_id=baseline.patient_id,
            field="ecog",
            version=1,
            verified_by=monitor,
        )
    client = client_for(monitor)
    # 14 for the page, 1 for the record's open queries.
    with django_assert_max_num_queries(15):
        assert client.get(_record_url(baseline)).status_code == 200


def test_the_record_page_lists_the_open_queries_of_the_record(client_for, monitor, baseline):
    from trial.queries import query_close, query_raise

    open_one = query_raise(baseline, user=monitor, field="ecog", text="ECOG 1 or 2?")
    closed = query_raise(baseline, user=monitor, field="", text="Date confirmed?")
    query_close(closed, user=monitor)
    html = client_for(monitor).get(_record_url(baseline)).content.decode()
    assert "1 open query on this record" in html
    assert f'href="/quality/queries/{open_one.pk}/"' in html
    assert "ECOG 1 or 2?" in html
    assert "Date confirmed?" not in html


@pytest.mark.parametrize("count", [1, 10])
def test_the_casebook_page_queries_stay_flat(
    client_for, data_manager, patient, count, django_assert_max_num_queries
):
    for n in range(count):
        ConsentFactory(patient=patient, consented_on=TODAY - timedelta(days=n + 20))
    models = len(clinical_models())
    client = client_for(data_manager)
    with django_assert_max_num_queries(models + 10):
        response = client.get(reverse("quality:casebook", args=[patient.pk]))
    assert response.status_code == 200
    assert response.content.decode().count("Consent #") == count + 1


def test_the_patient_page_panel_is_one_query(
    rf, coordinator, investigator, data_manager, patient, baseline, django_assert_num_queries
):
    from trial.views_lifecycle import casebook_panel_context

    lifecycle.casebook_sign(patient, user=investigator, password=PASSWORD)
    lifecycle.casebook_lock(patient, user=data_manager, reason="done")
    request = rf.get("/")
    request.user = coordinator
    coordinator.has_perm("patients.view_baseline")  # the permission cache, as on the page
    with django_assert_num_queries(1):
        context = casebook_panel_context(request, patient)
    assert context["lock"].locked
    assert context["lock"].by == "dm"
    assert context["signature"]["holds"]
    assert not context["study_lock"].locked


def test_a_form_that_hangs_off_another_record_has_its_page(
    client_for, monitor, data_manager, site_a, site_b
):
    from tests.factories.patients import PatientFactory
    from tests.factories.surgery import OperationFactory, PathologyFactory

    pathology = PathologyFactory(operation=OperationFactory(patient=PatientFactory(site=site_a)))
    other = PathologyFactory(operation=OperationFactory(patient=PatientFactory(site=site_b)))
    client = client_for(monitor)
    response = client.get(_record_url(pathology))
    assert response.status_code == 200
    assert reverse("surgery:pathology", args=[pathology.operation.patient_id]) in (
        response.content.decode()
    )
    response = client.post(
        _record_url(pathology), {"action": "verify", "version": "1", "verify_whole": "1"}
    )
    assert response.status_code == 302
    verification = SourceVerification.objects.get()
    assert verification.patient_id == pathology.operation.patient_id
    assert client.get(_record_url(other)).status_code == 404
    casebook = client_for(data_manager).get(
        reverse("quality:casebook", args=[pathology.operation.patient_id])
    )
    assert _record_url(pathology) in casebook.content.decode()
