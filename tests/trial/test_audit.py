"""Every audited model (every concrete subclass of trial.models.AuditedModel, found through the
app registry) keeps a history, and a save through the services is attributed to its user."""

import importlib
import pkgutil
from collections.abc import Callable

import pytest
from django.apps import apps
from simple_history.manager import HistoryManager

import tests.factories
from trial.models import AuditedModel
from trial.services import clinical_save, clinical_void


def audited_models() -> list[type[AuditedModel]]:
    return sorted(
        (m for m in apps.get_models() if issubclass(m, AuditedModel) and not m._meta.abstract),
        key=lambda m: m._meta.label,
    )


def _builders() -> dict[str, Callable]:
    """Every factories module may export AUDIT_BUILDERS: {model label: build(site) -> unsaved row}.

    A new audited model fails `test_every_audited_model_has_a_builder` until its factories
    module gives it a builder.
    """
    builders: dict[str, Callable] = {}
    for info in pkgutil.iter_modules(tests.factories.__path__):
        module = importlib.import_module(f"tests.factories.{info.name}")
        builders.update(getattr(module, "AUDIT_BUILDERS", {}))
    return builders


BUILDERS = _builders()
MODELS = audited_models()


def test_the_audited_models_are_found():
    labels = {m._meta.label for m in MODELS}
    assert {"patients.Patient", "patients.Baseline", "patients.PatientIdentity"} <= labels


def test_every_audited_model_has_a_builder():
    assert {m._meta.label for m in MODELS} == set(BUILDERS)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_every_audited_model_has_a_complete_history_table(model):
    manager = model.history
    assert isinstance(manager, HistoryManager)
    historical = manager.model
    fields = {f.name for f in historical._meta.get_fields()}
    assert {"history_user", "history_change_reason", "history_date", "history_type"} <= fields
    # Every column of the record is copied, so the trail can show old → new for each.
    missing = {f.attname for f in model._meta.concrete_fields} - {
        f.attname for f in historical._meta.concrete_fields
    }
    assert not missing


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_saving_and_voiding_through_the_services_is_attributed(model, site_a, coordinator):
    instance = BUILDERS[model._meta.label](site_a)
    assert isinstance(instance, model)
    assert instance.pk is None

    saved = clinical_save(instance, user=coordinator)
    rows = model.history.filter(id=saved.pk).order_by("history_date", "history_id")
    assert [(r.history_type, r.version, r.history_user) for r in rows] == [("+", 1, coordinator)]
    assert saved.created_by == coordinator

    clinical_void(saved, user=coordinator, reason="audit test", expected_version=1)
    last = model.history.filter(id=saved.pk).latest("history_date", "history_id")
    assert (last.history_type, last.version) == ("~", 2)
    assert last.history_user == coordinator
    assert last.history_change_reason == "audit test"
    assert last.voided_by_id == coordinator.pk
