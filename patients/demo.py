"""Demo patients: screening, consent, enrollment, baseline and some withdrawals, through the
services (so every rule and the audit trail apply). Distributions follow published cohorts of
synchronous liver-metastatic pancreatic cancer: median age ~62, ~58% men, head tumours ~55%,
ECOG 0–1 in most, CA19-9 log-normal with ~10% Lewis-negative non-secretors.
"""

import math
from datetime import timedelta
from decimal import Decimal

from patients import services
from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    PatientIdentity,
    Screening,
    Withdrawal,
)
from trial.demo import DemoContext
from trial.models import Cohort

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
    "许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "建国",
    "玉兰",
    "志强",
    "淑珍",
]


def _pick(rng, weighted: dict):
    roll, total = rng.random() * sum(weighted.values()), 0.0
    for value, weight in weighted.items():
        total += weight
        if roll <= total:
            return value
    return value


def _decimal(value: float, places: str = "0.1") -> Decimal:
    return Decimal(str(value)).quantize(Decimal(places))


def seed(context: DemoContext) -> None:
    rng, today = context.rng, context.today
    enrolled: list[int] = []
    for index in range(context.patients):
        site = context.sites[0] if rng.random() < 0.8 else context.sites[-1]
        user = context.user_for(site)
        retrospective = rng.random() < 0.4
        cohort = Cohort.RETROSPECTIVE if retrospective else Cohort.PROSPECTIVE
        # Retrospective cases were treated 1–3 years ago; prospective ones over the last 20 months.
        days_ago = rng.randint(400, 1100) if retrospective else rng.randint(10, 600)
        screened_on = today - timedelta(days=days_ago)
        age = max(30, min(86, round(rng.gauss(62, 9))))
        if rng.random() < 0.03:
            age = 17  # the odd under-age referral: a screen failure
        born = screened_on - timedelta(days=age * 365 + rng.randint(1, 360))
        sex = "M" if rng.random() < 0.58 else "F"
        confirmation = _pick(rng, {"histology": 0.7, "cytology": 0.27, "none": 0.03})
        prior = not retrospective and rng.random() < 0.06
        identity = PatientIdentity(
            full_name=rng.choice(SURNAMES) + rng.choice(GIVEN),
            hospital_record_number=f"{site.code[0]}{rng.randint(10**6, 10**7 - 1)}{index:04d}",
            date_of_birth=born,
            phone=f"13{rng.randint(0, 9)}{rng.randint(10**7, 10**8 - 1)}",
        )
        screening = Screening(
            screened_on=screened_on,
            intended_cohort=cohort,
            confirmation=confirmation,
            is_pdac=confirmation != "none" and rng.random() < 0.97,
            synchronous_liver_metastases=rng.random() < 0.97,
            imaging_on=screened_on - timedelta(days=rng.randint(1, 14)),
            prior_systemic_therapy=prior,
        )
        patient = services.candidate_screen(
            site=site,
            user=user,
            sex=sex,
            identity=identity,
            screening=screening,
            today=today,
        )
        if patient.status != "screening":
            continue
        consent_on = screened_on + timedelta(days=rng.randint(0, 3))
        if retrospective:
            consent = Consent(
                patient=patient,
                basis=Consent.Basis.WAIVER,
                consented_on=consent_on,
                waiver_reference="2024-KY-213",
                study_consent=True,
                biobank_consent=False,
            )
        else:
            consent = Consent(
                patient=patient,
                basis=Consent.Basis.SIGNED,
                consented_on=consent_on,
                consent_version="v1.2 2025-02-20",
                study_consent=True,
                biobank_consent=rng.random() < 0.85,
            )
        services.consent_save(consent=consent, user=user, today=today)
        enrolled_on = consent_on + timedelta(days=rng.randint(0, 5))
        if enrolled_on > today:
            continue
        services.patient_enroll(
            enrollment=Enrollment(
                patient=patient,
                enrolled_on=enrolled_on,
                cohort=cohort,
                diagnosed_on=screened_on - timedelta(days=rng.randint(3, 30)),
            ),
            user=user,
            today=today,
        )
        enrolled.append(patient.pk)
        assessed_on = min(today, enrolled_on + timedelta(days=rng.randint(0, 3)))
        count = max(1, min(30, round(rng.lognormvariate(1.3, 0.8))))
        height = rng.gauss(170 if sex == "M" else 159, 6)
        weight = max(38.0, rng.gauss(64 if sex == "M" else 55, 9))
        lewis_negative = rng.random() < 0.1
        ca19_9 = (
            rng.uniform(0.5, 4.5) if lewis_negative else min(99999.0, rng.lognormvariate(6.6, 1.6))
        )
        stent = rng.random() < 0.25
        services.baseline_save(
            baseline=Baseline(
                patient=patient,
                assessed_on=assessed_on,
                ecog=_pick(rng, {0: 0.35, 1: 0.5, 2: 0.15}),
                height_cm=_decimal(height),
                weight_kg=_decimal(weight),
                primary_site=_pick(
                    rng,
                    {
                        "head": 0.55,
                        "uncinate": 0.03,
                        "neck": 0.05,
                        "body": 0.19,
                        "tail": 0.18,
                    },
                ),
                primary_size_mm=_decimal(max(12.0, rng.gauss(38, 11))),
                ajcc_t=_pick(rng, {"T2": 0.3, "T3": 0.35, "T4": 0.3, "T1c": 0.05}),
                ajcc_n=_pick(rng, {"N0": 0.35, "N1": 0.45, "N2": 0.2}),
                vascular_smv_pv=rng.random() < 0.3,
                vascular_sma=rng.random() < 0.12,
                vascular_celiac=rng.random() < 0.08,
                vascular_cha=rng.random() < 0.08,
                liver_met_count=count,
                liver_met_largest_mm=_decimal(
                    min(150.0, max(5.0, rng.lognormvariate(math.log(18), 0.6)))
                ),
                liver_met_distribution="unilobar"
                if count == 1 or rng.random() < 0.4
                else "bilobar",
                other_met_peritoneum=rng.random() < 0.1,
                other_met_lung=rng.random() < 0.08,
                other_met_distant_nodes=rng.random() < 0.12,
                ca19_9_u_ml=_decimal(ca19_9),
                cea_ng_ml=_decimal(rng.lognormvariate(1.8, 0.9), "0.01"),
                ca125_u_ml=_decimal(rng.lognormvariate(3.6, 0.9)),
                biliary_stent=stent,
                biliary_stent_type=_pick(rng, {"plastic": 0.5, "metal": 0.4, "ptcd": 0.1})
                if stent
                else "",
                comorbid_diabetes=rng.random() < 0.25,
                comorbid_hypertension=rng.random() < 0.3,
                comorbid_coronary=rng.random() < 0.08,
                comorbid_liver=rng.random() < 0.07,
            ),
            user=user,
            today=today,
        )
        if not retrospective and rng.random() < 0.08:
            withdrawn_on = min(today, enrolled_on + timedelta(days=rng.randint(20, 150)))
            services.withdrawal_save(
                withdrawal=Withdrawal(
                    patient=patient,
                    withdrawn_on=withdrawn_on,
                    kind=_pick(
                        rng,
                        {
                            "consent_withdrawn": 0.5,
                            "drop_out": 0.4,
                            "investigator": 0.1,
                        },
                    ),
                    reason=_pick(
                        rng,
                        {
                            "patient_decision": 0.4,
                            "adverse_event": 0.2,
                            "transferred": 0.25,
                            "condition": 0.15,
                        },
                    ),
                    last_medication_on=withdrawn_on - timedelta(days=rng.randint(0, 14)),
                ),
                user=user,
                today=today,
            )
    context.shared["enrolled_patient_ids"] = enrolled
