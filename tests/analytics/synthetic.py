"""Synthetic outcomes on top of `tests.factories.visits.synthetic_cohort`, so that the analysis
dataset and the survival API have something to estimate (query-count tests, bench/analytics.py).

Plain rows made by bulk_create (no services, no history), for tests of scale only: the rules of
the services are kept by construction (a death after every record of the patient, a recurrence
only after the operation, contacts between the last record and the death).
"""

import math
import random
from datetime import date, timedelta
from decimal import Decimal

from followup.models import Death, FollowUpContact, Recurrence
from followup.selectors import last_known_alive_by_patient
from patients.models import Baseline, Enrollment, Patient
from surgery.models import Complication, Operation, Pathology
from trial.models import FormStatus

DONE = FormStatus.COMPLETE


def synthetic_outcomes(
    *, patient_ids: list[int], today: date, seed: int = 0, median_days: int = 360
) -> dict[str, int]:
    """Baselines (ECOG, liver metastases, CA19-9), follow-up contacts, deaths (about half of
    the patients), recurrences after the operation and progressions without one, pathology
    (R0/R1) and a complication for every operated patient. Survival is exponential from the
    enrollment with median `median_days` whatever the operation: the true surgery effect is
    null.
    Returns the number of rows made per kind."""
    rng = random.Random(seed)
    ids = list(patient_ids)
    enrolled = dict(
        Enrollment.objects.filter(patient_id__in=ids).values_list("patient_id", "enrolled_on")
    )
    operations = {o.patient_id: o for o in Operation.objects.filter(patient_id__in=ids)}
    known = last_known_alive_by_patient(patient_ids=ids)
    baselines, contacts, deaths, recurrences, paths, complications = [], [], [], [], [], []
    dead: dict[int, date] = {}
    for pk in ids:
        start = enrolled[pk]
        last = known.get(pk, start)
        baselines.append(
            Baseline(
                patient_id=pk,
                assessed_on=start,
                ecog=rng.choice((0, 0, 1, 1, 1, 2)),
                height_cm=Decimal("168.0"),
                weight_kg=Decimal("62.0"),
                bsa_m2=Decimal("1.70"),
                primary_site=rng.choice(("head", "body", "tail")),
                primary_size_mm=Decimal("32.0"),
                liver_met_count=rng.randint(1, 8),
                liver_met_largest_mm=Decimal(rng.randint(8, 60)),
                liver_met_distribution=rng.choice(("unilobar", "bilobar")),
                ajcc_t="T3",
                ajcc_n="N1",
                ca19_9_u_ml=Decimal(rng.randint(20, 5000)),
                status=DONE,
            )
        )
        end = start + timedelta(days=max(1, int(rng.expovariate(math.log(2) / median_days))))
        if end <= last:
            end = last + timedelta(days=rng.randint(1, 45))
        died = end <= today
        horizon = end if died else today - timedelta(days=rng.randint(0, 60))
        day = last + timedelta(days=30)
        while day < horizon:
            contacts.append(
                FollowUpContact(
                    patient_id=pk,
                    contacted_on=day,
                    mode=FollowUpContact.Mode.PHONE,
                    reached=True,
                    vital_status=FollowUpContact.VitalStatus.ALIVE,
                    ecog=1,
                    recurrence=False,
                    status=DONE,
                )
            )
            day += timedelta(days=30)
        if died:
            dead[pk] = end
            deaths.append(
                Death(
                    patient_id=pk,
                    died_on=end,
                    cause=Death.Cause.PROGRESSION,
                    source=Death.Source.HOSPITAL,
                    status=DONE,
                )
            )
        operation = operations.get(pk)
        first = operation.operated_on if operation else start
        detected = first + timedelta(days=max(1, int(rng.expovariate(1 / 240))))
        if detected < min(end, today):
            recurrences.append(
                Recurrence(
                    patient_id=pk,
                    detected_on=detected,
                    kind=Recurrence.Kind.RECURRENCE if operation else Recurrence.Kind.PROGRESSION,
                    site_liver=True,
                    detected_by=Recurrence.DetectedBy.IMAGING,
                    status=DONE,
                )
            )
        if operation:
            paths.append(
                Pathology(
                    operation=operation,
                    reported_on=operation.operated_on + timedelta(days=7),
                    ypt=Pathology.YpT.T2,
                    ypn=Pathology.YpN.N1,
                    margin_pancreas=rng.choice(("R0", "R0", "R1")),
                    nodes_examined=18,
                    nodes_positive=2,
                    regression_grade=2,
                    differentiation=Pathology.Differentiation.MODERATE,
                    perineural_invasion=True,
                    lymphovascular_invasion=False,
                    status=DONE,
                )
            )
            complications.append(
                Complication(
                    operation=operation,
                    onset_on=operation.operated_on + timedelta(days=3),
                    kind=Complication.Kind.SSI,
                    clavien_dindo=rng.choice(("I", "II", "IIIa")),
                    status=DONE,
                )
            )
    Baseline.objects.bulk_create(baselines)
    FollowUpContact.objects.bulk_create(contacts)
    Death.objects.bulk_create(deaths)
    Recurrence.objects.bulk_create(recurrences)
    Pathology.objects.bulk_create(paths)
    Complication.objects.bulk_create(complications)
    patients = list(Patient.objects.filter(pk__in=list(dead)))
    for patient in patients:
        patient.died_on, patient.status = dead[patient.pk], Patient.Status.DECEASED
    Patient.objects.bulk_update(patients, ["died_on", "status"])
    return {
        "baselines": len(baselines),
        "contacts": len(contacts),
        "deaths": len(deaths),
        "recurrences": len(recurrences),
        "pathology": len(paths),
        "complications": len(complications),
    }
