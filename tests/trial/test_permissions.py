"""The role matrix (trial.roles) and what each role can open: read-only roles get 403 on entry
pages, the monitor sees PHI but cannot edit, the site admin manages only their site's users."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models import ProtectedError
from django.utils import timezone

from patients.models import Baseline, Consent, Enrollment, Patient, Screening
from tests.factories.forms import (
    baseline_post,
    candidate_post,
    consent_post,
    enrollment_post,
    post_from_form,
    withdrawal_post,
)
from tests.factories.patients import baselined_patient
from tests.factories.trial import UserFactory
from trial.models import Role, SiteMembership
from trial.roles import ROLE_PERMISSIONS, sync_role_groups

User = get_user_model()


def _labels(permissions) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions}


# --- the matrix ---------------------------------------------------------------------------


def test_every_role_has_a_row_in_the_matrix():
    assert set(ROLE_PERMISSIONS) == set(Role.values)


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_each_role_group_has_exactly_the_matrix_permissions(role):
    group = Group.objects.get(name=role)
    granted = _labels(group.permissions.select_related("content_type"))
    assert granted == ROLE_PERMISSIONS[role]


@pytest.mark.django_db
def test_every_permission_of_the_matrix_exists():
    wanted = set().union(*ROLE_PERMISSIONS.values())
    existing = _labels(Permission.objects.select_related("content_type"))
    assert wanted <= existing, wanted - existing


@pytest.mark.django_db
def test_syncing_restores_a_tampered_group():
    group = Group.objects.get(name=Role.STATISTICIAN)
    group.permissions.add(Permission.objects.get(codename="view_phi"))
    group.permissions.remove(Permission.objects.get(codename="view_baseline"))
    sync_role_groups()
    assert _labels(group.permissions.all()) == ROLE_PERMISSIONS[Role.STATISTICIAN]


@pytest.mark.django_db
def test_no_read_only_role_may_write_or_see_phi():
    for role in (Role.STATISTICIAN, Role.DATA_MANAGER):
        perms = ROLE_PERMISSIONS[role]
        assert not {p for p in perms if p.split(".")[1].startswith(("add_", "change_", "delete_"))}
        assert "patients.view_phi" not in perms
    assert "patients.view_phi" in ROLE_PERMISSIONS[Role.MONITOR]
    assert not any(".change_" in p or ".add_" in p for p in ROLE_PERMISSIONS[Role.MONITOR])


# --- pages by role ------------------------------------------------------------------------


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def patient(site_a, coordinator, today):
    return baselined_patient(site=site_a, user=coordinator, today=today)


def _entry_pages(patient: Patient, today) -> list[tuple[str, dict]]:
    enrolled_on = patient.enrollment.enrolled_on
    consent = Consent.objects.get(patient=patient)
    reason = {"version": "1", "change_reason": "probe"}
    return [
        ("/patients/screen/", candidate_post(today=today)),
        (
            f"/patients/{patient.pk}/screening/",
            {**candidate_post(today=today), **reason, "id-version": "1"},
        ),
        (
            f"/patients/{patient.pk}/consent/",
            consent_post(on=enrolled_on - timedelta(days=1)),
        ),
        (
            f"/patients/{patient.pk}/consent/{consent.pk}/",
            {**consent_post(on=consent.consented_on, consent_version="v9"), **reason},
        ),
        (
            f"/patients/{patient.pk}/enrollment/",
            {**enrollment_post(on=enrolled_on, diagnosed_on=enrolled_on.isoformat()), **reason},
        ),
        (
            f"/patients/{patient.pk}/baseline/",
            {**baseline_post(on=enrolled_on, ecog="3"), **reason},
        ),
        (
            f"/patients/{patient.pk}/withdrawal/",
            withdrawal_post(on=today, last_medication_on=today),
        ),
    ]


def _state() -> tuple:
    return (
        Patient.objects.count(),
        sorted(Patient.objects.values_list("pk", "version", "status")),
        sorted(Screening.objects.values_list("pk", "version")),
        sorted(Consent.objects.values_list("pk", "version")),
        sorted(Enrollment.objects.values_list("pk", "version")),
        sorted(Baseline.objects.values_list("pk", "version")),
    )


@pytest.mark.parametrize("role_user", ["statistician", "data_manager", "monitor", "site_admin"])
def test_roles_without_entry_rights_read_but_get_403_on_entry_pages(
    request, client_for, patient, today, role_user
):
    user = request.getfixturevalue(role_user)
    client = client_for(user)
    assert client.get("/patients/").status_code == 200
    if role_user != "site_admin":
        detail = client.get(f"/patients/{patient.pk}/")
        assert detail.status_code == 200
        assert client.get(f"/patients/{patient.pk}/history/").status_code == 200
        # No links to pages the user cannot open.
        assert f"/patients/{patient.pk}/baseline/" not in detail.content.decode()
        assert "/patients/screen/" not in detail.content.decode()
    before = _state()
    for url, data in _entry_pages(patient, today):
        assert client.get(url).status_code == 403, url
        assert client.post(url, data).status_code == 403, url
    assert _state() == before


def test_the_entry_probes_are_accepted_from_a_coordinator(client_for, coordinator, patient, today):
    """The counterpart of the 403 test: the same requests would have written."""
    client = client_for(coordinator)
    for url, _data in _entry_pages(patient, today):
        assert client.get(url).status_code == 200, url
    before = _state()
    response = client.post(*_entry_pages(patient, today)[-2])  # the baseline edit
    assert response.status_code == 302
    assert _state() != before


def test_an_investigator_may_enter_data(client_for, investigator, patient, today):
    client = client_for(investigator)
    url, data = _entry_pages(patient, today)[-2]
    assert client.post(url, data).status_code == 302
    assert Baseline.objects.get(patient=patient).updated_by == investigator


def test_the_monitor_sees_identity_but_cannot_edit(client_for, monitor, patient, today):
    client = client_for(monitor)
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert patient.identity.full_name in page
    assert patient.identity.hospital_record_number in page
    assert monitor.has_perm("patients.view_phi")
    assert not monitor.has_perm("patients.change_patientidentity")
    assert not monitor.has_perm("patients.change_baseline")


# --- the site admin in the Django admin ---------------------------------------------------


@pytest.fixture
def people(site_a, site_b, coordinator, coordinator_b, monitor):
    """Users at site A (coordinator, monitor), at site B only, and a superuser."""
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    return {"a": [coordinator, monitor], "b": [coordinator_b], "root": root}


def test_the_site_admin_lists_only_the_users_of_their_site(client_for, site_admin, people):
    client = client_for(site_admin)
    response = client.get("/admin/auth/user/")
    assert response.status_code == 200
    listed = {user.username for user in response.context["cl"].result_list}
    assert {"coord_a", "mon_a", "sadmin_a"} <= listed
    assert "coord_b" not in listed
    assert "root" not in listed
    assert "coord_b" not in response.content.decode()


def test_the_site_admin_cannot_open_other_sites_users_or_superusers(client_for, site_admin, people):
    client = client_for(site_admin)
    for other in (people["b"][0], people["root"]):
        response = client.get(f"/admin/auth/user/{other.pk}/change/")
        assert response.status_code == 302  # "doesn't exist", back to the admin index
        assert response.url == "/admin/"


def test_the_site_admin_cannot_see_or_grant_superuser(client_for, site_admin, people):
    target = people["a"][0]
    client = client_for(site_admin)
    url = f"/admin/auth/user/{target.pk}/change/"
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="is_superuser"' not in html
    assert 'name="is_staff"' not in html
    assert 'name="user_permissions"' not in html
    form = response.context["adminform"].form
    assert "is_superuser" not in form.fields
    assert set(form.fields["groups"].queryset.values_list("name", flat=True)) == set(Role.values)

    data = _change_form_data(response, first_name="Renamed")
    response = client.post(url, {**data, "is_superuser": "on", "is_staff": "on"})
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.first_name == "Renamed"  # the edit itself went through...
    assert not target.is_superuser  # ...but the forged flags did not
    assert not target.is_staff


def test_the_site_admin_cannot_delete_users(client_for, site_admin, people):
    target = people["a"][0]
    client = client_for(site_admin)
    assert client.get(f"/admin/auth/user/{target.pk}/delete/").status_code == 403
    assert client.post(f"/admin/auth/user/{target.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.get("/admin/auth/user/")
    actions = [name for name, _label in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert "deactivate" in actions
    client.post("/admin/auth/user/", {"action": "delete_selected", "_selected_action": [target.pk]})
    assert User.objects.filter(pk=target.pk).exists()


def test_deactivating_a_user_keeps_their_records_attributed(
    client_for, site_admin, coordinator, patient
):
    client = client_for(site_admin)
    response = client.post(
        "/admin/auth/user/", {"action": "deactivate", "_selected_action": [coordinator.pk]}
    )
    assert response.status_code == 302
    coordinator.refresh_from_db()
    assert not coordinator.is_active
    patient.refresh_from_db()
    assert patient.created_by == coordinator
    assert Baseline.objects.get(patient=patient).created_by == coordinator
    assert Patient.history.filter(id=patient.pk, history_user=coordinator).exists()
    # The inactive user sees no patients any more.
    assert client_for(coordinator).get("/patients/").status_code in (302, 403)
    # And the database would not let the user row go while records point to it.
    with pytest.raises(ProtectedError):
        coordinator.delete()


def _change_form_data(response, **changes) -> dict:
    """The admin change form as rendered (user fields and the membership inline), plus `changes`."""
    data = post_from_form(response.context["adminform"].form, button=None, **changes)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(post_from_form(formset.management_form, button=None))
        for subform in formset.forms:
            data.update(post_from_form(subform, button=None))
    return {**data, "_save": "Save"}


def test_the_site_admin_edits_a_multi_site_user_without_touching_the_other_site(
    client_for, site_admin, statistician, site_a, site_b
):
    """The statistician works at sites A and B: the admin of A sees and manages only the A
    membership, can still save the user, and cannot remove the B membership."""
    client = client_for(site_admin)
    url = f"/admin/auth/user/{statistician.pk}/change/"
    response = client.get(url)
    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    shown = {form.instance.site_id for form in inline.formset.forms if form.instance.pk}
    assert shown == {site_a.pk}

    response = client.post(url, _change_form_data(response, last_name="Checked"))
    assert response.status_code == 302
    statistician.refresh_from_db()
    assert statistician.last_name == "Checked"

    # A forged row for the site-B membership, marked for deletion, deletes nothing.
    other = SiteMembership.objects.get(user=statistician, site=site_b)
    data = _change_form_data(client.get(url))
    total = int(data["site_memberships-TOTAL_FORMS"])
    data.update(
        {
            f"site_memberships-{total}-id": str(other.pk),
            f"site_memberships-{total}-user": str(statistician.pk),
            f"site_memberships-{total}-site": str(site_b.pk),
            f"site_memberships-{total}-DELETE": "on",
            "site_memberships-TOTAL_FORMS": str(total + 1),
            "site_memberships-INITIAL_FORMS": str(int(data["site_memberships-INITIAL_FORMS"]) + 1),
        }
    )
    client.post(url, data)
    assert SiteMembership.objects.filter(pk=other.pk, site=site_b).exists()
    assert set(
        SiteMembership.objects.filter(user=statistician).values_list("site__code", flat=True)
    ) == {"SITEA", "SITEB"}
