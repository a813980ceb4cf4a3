"""The chemotherapy phase through the pages, as a coordinator works it (issue 3):

regimen → 4 cycles → labs + imaging → evaluation with PD → regimen adjusted → evaluations
every 2 cycles. Each form is opened, its prefilled values kept, and only what a coordinator
types is changed, so the pages' own defaults (planned doses, cycle dates) are exercised.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from assessments.models import ImagingStudy, LabPanel, LabResult, ResponseEvaluation
from tests.factories.patients import baselined_patient
from tests.pages import form_data, options
from treatments.models import ChemoCycle, RegimenLine

pytestmark = pytest.mark.django_db


def _submit(client, url, button="save_complete", **typed):
    """Open the form at `url`, type `typed` over its prefilled values, press `button`."""
    page = client.get(url)
    assert page.status_code == 200, url
    data = {**form_data(page), **{k: str(v) for k, v in typed.items()}, button: "1"}
    response = client.post(url, data)
    if response.status_code != 302:
        errors = {f.prefix or "form": f.errors for f in response.context.get("forms", [])} or (
            response.context.get("form").errors if response.context.get("form") else {}
        )
        pytest.fail(f"{url} was not saved: {errors}")
    return response


def _choice(client, url, name, label_part):
    """The value of the option of select `name` whose label contains `label_part`."""
    matches = [v for v, label in options(client.get(url), name) if label_part in label]
    assert len(matches) == 1, (name, label_part, options(client.get(url), name))
    return matches[0]


def _labs(client, patient, on, context, **values):
    _submit(
        client,
        f"/patients/{patient.pk}/labs/new/",
        sampled_on=on.isoformat(),
        context=context,
        **values,
    )
    return LabPanel.objects.get(patient=patient, sampled_on=on)


def _imaging(client, patient, on, t1, t2, baseline=False):
    typed = {
        "performed_on": on.isoformat(),
        "modality": "CT",
        "non_target": "present",
        "lesion_1_organ": "liver",
        "lesion_1_diameter": t1,
        "lesion_2_organ": "liver",
        "lesion_2_diameter": t2,
    }
    url = f"/patients/{patient.pk}/imaging/new/"
    page = client.get(url)
    data = {**form_data(page), **{k: str(v) for k, v in typed.items()}, "save_complete": "1"}
    if not baseline:
        data.pop("is_baseline", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    return ImagingStudy.objects.get(patient=patient, performed_on=on)


def _evaluate(client, patient, on, imaging, panel, decision):
    url = f"/patients/{patient.pk}/evaluations/new/"
    _submit(
        client,
        url,
        evaluated_on=on.isoformat(),
        imaging=_choice(client, url, "imaging", imaging.performed_on.isoformat()),
        lab_panel=_choice(client, url, "lab_panel", panel.sampled_on.isoformat()),
        decision=decision,
    )
    return ResponseEvaluation.objects.get(patient=patient, evaluated_on=on)


def _cycles(client, patient, line, dates):
    for on in dates:
        _submit(
            client,
            f"/patients/{patient.pk}/treatment/line/{line.pk}/cycle/new/",
            given_on=on.isoformat(),
        )


def test_regimen_cycles_evaluation_with_pd_then_every_two_cycles(client_for, coordinator, site_a):
    day0 = timezone.localdate() - timedelta(days=160)
    patient = baselined_patient(site=site_a, user=coordinator, today=day0)
    client = client_for(coordinator)

    def day(n):
        return day0 + timedelta(days=n)

    # Baseline labs (CA19-9 500) and the RECIST baseline CT (two liver targets, sum 50 mm).
    _labs(client, patient, day(1), "baseline", ca19_9=500, alt=30, tbil=12)
    _imaging(client, patient, day(1), 30, 20, baseline=True)

    # Line 1: AG every 28 days, four cycles; the doses come prefilled from the regimen.
    _submit(
        client,
        f"/patients/{patient.pk}/treatment/line/new/",
        regimen="AG",
        started_on=day(3).isoformat(),
    )
    line1 = RegimenLine.objects.get(patient=patient, line_number=1)
    assert line1.cycle_length_days == 28
    _cycles(client, patient, line1, [day(3 + 28 * k) for k in range(4)])
    cycles = list(ChemoCycle.objects.filter(line=line1).order_by("cycle_number"))
    assert [c.cycle_number for c in cycles] == [1, 2, 3, 4]
    assert all(c.bsa_m2 == Decimal("1.74") for c in cycles)  # 170 cm, 64 kg (Mosteller)
    assert {d.drug for d in cycles[0].doses.all()} == {"nab_paclitaxel", "gemcitabine"}
    assert not any(c.dose_reduced for c in cycles)

    # First evaluation after cycle 4: CA19-9 up, both targets grown: PD → adjust the regimen.
    panel = _labs(client, patient, day(91), "assessment", ca19_9=900)
    assert panel.after_cycle == 4
    scan = _imaging(client, patient, day(91), 40, 28)
    assert (scan.sum_mm, scan.response) == (Decimal("68.0"), "PD")
    first = _evaluate(client, patient, day(92), scan, panel, "adjust")
    assert (first.sequence, first.cycles_completed, first.recist_response) == (1, 4, "PD")
    assert first.ca19_9_change_pct == Decimal("80.0")
    assert first.progression_at_first
    assert first.interval_cycles == 2

    # The regimen is adjusted: line 2 mFOLFIRINOX, 14-day cycles, reason progression.
    _submit(
        client,
        f"/patients/{patient.pk}/treatment/line/new/",
        regimen="mFOLFIRINOX",
        started_on=day(95).isoformat(),
        switch_reason="progression",
    )
    line2 = RegimenLine.objects.get(patient=patient, line_number=2)
    assert (line2.cycle_length_days, line2.change_reason) == (14, "progression")

    # Evaluations now come every 2 cycles.
    _cycles(client, patient, line2, [day(95), day(109)])
    panel = _labs(client, patient, day(113), "assessment", ca19_9=450)
    scan = _imaging(client, patient, day(113), 33, 22)
    second = _evaluate(client, patient, day(114), scan, panel, "continue")
    _cycles(client, patient, line2, [day(123), day(137)])
    panel = _labs(client, patient, day(141), "assessment", ca19_9=120)
    scan = _imaging(client, patient, day(141), 18, 12)
    third = _evaluate(client, patient, day(142), scan, panel, "refer_mdt")

    assert [(e.sequence, e.cycles_completed) for e in (second, third)] == [(2, 6), (3, 8)]
    assert [e.recist_response for e in (second, third)] == ["SD", "PR"]
    assert {e.interval_cycles for e in ResponseEvaluation.objects.filter(patient=patient)} == {2}
    assert ChemoCycle.objects.filter(patient=patient).count() == 8
    assert LabResult.objects.filter(panel__patient=patient, analyte="ca19_9").count() == 4

    # The patient page shows it all on the treatment timeline, and the history has every save.
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Treatment timeline" in page
    assert "every 2 cycles" in page
    assert ResponseEvaluation.history.filter(patient_id=patient.pk).count() >= 3
