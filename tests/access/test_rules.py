"""The rules name real permissions and are usable by someone; docs/access-matrix.md is
generated from them (`manage.py access_matrix`, `--check` fails when it is out of date)."""

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from trial import access
from trial.models import Role


def _labels(rule: access.Rule) -> set[str]:
    labels = set()
    for requirement in (*rule.read, *(rule.write or ())):
        for alternative in requirement.split(access.ANY):
            if not alternative.startswith(access.MODEL_VIEW):
                labels.add(alternative)
    return labels


def test_every_permission_a_rule_names_exists(db):
    existing = {
        f"{app}.{codename}"
        for app, codename in Permission.objects.values_list("content_type__app_label", "codename")
    }
    named = set().union(*(_labels(rule) for rule in access.RULES.values()))
    assert named - existing == set()


@pytest.mark.parametrize("name", sorted(access.RULES))
def test_some_role_may_use_every_url(name):
    rule = access.RULES[name]
    assert any(access.role_allows(role, rule, write=False) for role in Role.values)


def test_the_matrix_follows_the_roles():
    cycle_edit = access.RULES["treatments:cycle-edit"]
    assert access.role_allows(Role.COORDINATOR, cycle_edit, write=True)
    assert not access.role_allows(Role.MONITOR, cycle_edit, write=True)
    mdt = access.RULES["surgery:mdt-new"]
    assert [r for r in Role.values if access.role_allows(r, mdt, write=True)] == [Role.INVESTIGATOR]
    phi_free = access.RULES["patients:candidate-new"]
    assert not access.role_allows(Role.STATISTICIAN, phi_free, write=False)


def test_the_document_is_generated_and_checked(tmp_path):
    target = tmp_path / "access-matrix.md"
    with pytest.raises(CommandError, match="out of date"):
        call_command("access_matrix", "--check", output=target)
    call_command("access_matrix", output=target)
    call_command("access_matrix", "--check", output=target)
    text = target.read_text(encoding="utf-8")
    assert "| `/patients/<int:patient_id>/treatment/cycle/<int:cycle_id>/` |" in text
    row = next(line for line in text.splitlines() if "`treatments:cycle-edit`" in line)
    #          URL, name, scope, coordinator, investigator, statistician, monitor, dm, admin, anon
    assert [c.strip() for c in row.strip("|").split("|")][2:10] == [
        "site",
        "RW",
        "RW",
        "–",
        "–",
        "–",
        "–",
        "–",
    ]
    target.write_text(text.replace("| RW |", "| R |", 1), encoding="utf-8")
    with pytest.raises(CommandError, match="out of date"):
        call_command("access_matrix", "--check", output=target)


def test_the_committed_document_is_up_to_date():
    call_command("access_matrix", "--check")
