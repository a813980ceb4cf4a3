"""The demo surgery is deterministic and follows the protocol: MDTs only after a referral,
operations after a radical-surgery MDT, postoperative panels snapped to their days, adjuvant
cycles flagged."""

import time
from datetime import date
from importlib import import_module

import pytest
from django.conf import settings
from django.db import transaction

from assessments.models import LabPanel
from surgery.models import Complication, Discharge, MdtDecision, Operation, Pathology
from tests.factories.trial import SiteFactory, StudyFactory
from treatments.models import ChemoCycle
from trial import demo as trial_demo
from trial.roles import sync_role_groups

TODAY = date(2026, 11, 24)
APPS = ("patients", "treatments", "assessments", "surgery")


def _dump() -> dict:
    code = "patient__subject_code"
    return {
        "mdt": sorted(
            MdtDecision.objects.values_list(code, "decided_on", "decision", "planned_pancreatic")
        ),
        "operations": sorted(
            Operation.objects.values_list(
                code, "operated_on", "pancreatic_procedure", "liver_lesions_resected", "approach"
            )
        ),
        "pathology": sorted(
            Pathology.objects.values_list(
                "operation__" + code, "ypt", "ypn", "margin_pancreas", "nodes_positive"
            )
        ),
        "complications": sorted(
            Complication.objects.values_list(
                "operation__" + code, "onset_on", "kind", "clavien_dindo", "isgps_grade"
            )
        ),
        "discharges": sorted(
            Discharge.objects.values_list("operation__" + code, "discharged_on", "readmitted_on")
        ),
        "postop": sorted(
            LabPanel.objects.filter(context="postop").values_list(
                code, "sampled_on", "postop_day", "out_of_window"
            )
        ),
        "adjuvant": sorted(ChemoCycle.objects.filter(adjuvant=True).values_list(code, "given_on")),
    }


def _seed(patients: int, seed: int) -> tuple[dict, float]:
    with transaction.atomic():
        study = StudyFactory(code=settings.STUDY_CODE)
        SiteFactory(code="CJFH", study=study, name="China-Japan Friendship Hospital")
        sync_role_groups()
        context = trial_demo.setup(seed_value=seed, today=TODAY, patients=patients)
        for app in APPS[:-1]:
            import_module(f"{app}.demo").seed(context)
        started = time.perf_counter()
        import_module("surgery.demo").seed(context)
        elapsed = time.perf_counter() - started
        snapshot = _dump()
        transaction.set_rollback(True)
    return snapshot, elapsed


@pytest.mark.django_db
def test_the_demo_is_deterministic_and_consistent():
    first, _elapsed = _seed(6, 2025)
    again, _elapsed = _seed(6, 2025)
    assert first == again
    assert first["mdt"], "no MDT in the demo cohort"
    assert first["operations"]
    assert first["postop"]
    assert first["adjuvant"]
    operated = {row[0]: row[1] for row in first["operations"]}
    decided = {}
    for code, decided_on, decision, _planned in first["mdt"]:
        decided.setdefault(code, []).append((decided_on, decision))
    for code, operated_on in operated.items():
        assert any(d <= operated_on and k == "radical_surgery" for d, k in decided[code])
        assert operated_on <= TODAY
    for code, sampled_on, day, out_of_window in first["postop"]:
        assert (sampled_on - operated[code]).days in range(day - 1, day + 2)
        assert not out_of_window
    for code, given_on in first["adjuvant"]:
        assert given_on > operated[code]
    for code, _ypt, ypn, _margin, positive in first["pathology"]:
        assert ypn == Pathology.expected_ypn(positive), code
