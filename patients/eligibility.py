"""The study's eligibility criteria as pure functions (no ORM), so they are tested as a table.

Criteria (NCT06873178): adult at screening; histologically or cytologically confirmed
pancreatic ductal adenocarcinoma; synchronous liver metastases on imaging; no prior systemic
therapy (prospective cohort only); signed consent, or for retrospective cases an
ethics-committee waiver.
"""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from django.utils.translation import gettext as _

ADULT_AGE = 18


class Criterion(StrEnum):
    AGE = "age"
    PDAC = "pdac"
    LIVER_METASTASES = "liver_metastases"
    NO_PRIOR_THERAPY = "no_prior_therapy"
    CONSENT = "consent"


class ConsentBasis(StrEnum):
    NONE = "none"
    SIGNED = "signed"
    WAIVER = "waiver"


@dataclass(frozen=True)
class Facts:
    age_years: int | None
    confirmed_pathologically: bool
    is_pdac: bool
    synchronous_liver_metastases: bool
    prior_systemic_therapy: bool
    cohort: str  # trial.models.Cohort value
    consent: ConsentBasis


@dataclass(frozen=True)
class Result:
    criterion: Criterion
    met: bool
    label: str
    detail: str = ""


def evaluate(facts: Facts) -> list[Result]:
    """Every criterion with whether it is met and, if not, why."""
    prospective = facts.cohort == "prospective"
    results = [
        Result(
            Criterion.AGE,
            facts.age_years is not None and facts.age_years >= ADULT_AGE,
            _("Age 18 or older at screening"),
            _("Age at screening is %(age)s years.") % {"age": facts.age_years}
            if facts.age_years is not None
            else _("Age at screening is unknown."),
        ),
        Result(
            Criterion.PDAC,
            facts.confirmed_pathologically and facts.is_pdac,
            _("Histologically or cytologically confirmed pancreatic ductal adenocarcinoma"),
            _("No pathological confirmation.")
            if not facts.confirmed_pathologically
            else ("" if facts.is_pdac else _("The pathology is not PDAC.")),
        ),
        Result(
            Criterion.LIVER_METASTASES,
            facts.synchronous_liver_metastases,
            _("Synchronous liver metastases on imaging"),
            "" if facts.synchronous_liver_metastases else _("No synchronous liver metastases."),
        ),
        Result(
            Criterion.NO_PRIOR_THERAPY,
            not (prospective and facts.prior_systemic_therapy),
            _("No prior systemic therapy (prospective cohort)"),
            _("Prior systemic therapy excludes the prospective cohort.")
            if prospective and facts.prior_systemic_therapy
            else "",
        ),
    ]
    if facts.consent == ConsentBasis.SIGNED:
        consent_met, consent_detail = True, ""
    elif facts.consent == ConsentBasis.WAIVER:
        consent_met = not prospective
        consent_detail = "" if consent_met else _("A waiver applies to retrospective cases only.")
    else:
        consent_met, consent_detail = False, _("No signed study consent is recorded.")
    results.append(
        Result(
            Criterion.CONSENT,
            consent_met,
            _("Consent signed, or an ethics-committee waiver (retrospective)"),
            consent_detail,
        )
    )
    return results


def failures(facts: Facts, *, ignore: frozenset[Criterion] = frozenset()) -> list[Result]:
    """The criteria not met, leaving out `ignore` (e.g. consent while it is still pending)."""
    return [r for r in evaluate(facts) if not r.met and r.criterion not in ignore]


def age_on(born: date, on: date) -> int:
    """Completed years between two dates."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
