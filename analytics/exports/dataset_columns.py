"""The variables of the analysis dataset (analytics.dataset.COLUMNS) for the codebook and ODM:
type, unit, labels, allowed codes and, for derived variables, how they are derived (read from
analytics/dataset.py; tests/analytics/test_codebook.py checks the names stay in step).

A variable copied from a form field takes its label and codes from that field (English, and
Chinese through the translation catalogue); a derived variable has its own label and
derivation text.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from analytics.dataset import Origin
from analytics.exports.forms import Kind
from assessments.models import ImagingStudy
from followup.models import Death, Recurrence
from patients.models import Baseline, Enrollment, Patient, Screening, Withdrawal
from surgery.models import Complication, MdtDecision, Operation, Pathology
from treatments.models import RegimenLine
from trial.models import Site


@dataclass(frozen=True)
class DatasetColumn:
    name: str
    kind: Kind
    source: tuple[type[models.Model], str] | None = None  # the form field it is copied from
    label_text: Promise | str = ""
    unit: str = ""
    derivation: Promise | str = ""
    extra_codes: tuple[tuple[object, Promise | str], ...] = ()

    @property
    def model_field(self) -> models.Field | None:
        if self.source is None:
            return None
        model, name = self.source
        return model._meta.get_field(name)

    @property
    def label(self) -> Promise | str:
        return self.label_text or self.model_field.verbose_name

    @property
    def codes(self) -> tuple[tuple[object, Promise | str], ...]:
        if self.extra_codes:
            return self.extra_codes
        model_field = self.model_field
        return tuple(model_field.flatchoices) if model_field is not None else ()


EVENT_CODES = ((1, _("event")), (0, _("censored")))
_SITES = tuple(
    (name.removeprefix("site_"), Recurrence._meta.get_field(name).verbose_name)
    for name in Recurrence.SITE_FIELDS
)

COLUMNS: tuple[DatasetColumn, ...] = (
    DatasetColumn("subject_code", Kind.TEXT, (Patient, "subject_code")),
    DatasetColumn("site", Kind.TEXT, (Site, "code")),
    DatasetColumn("cohort", Kind.TEXT, (Enrollment, "cohort")),
    DatasetColumn("sex", Kind.TEXT, (Patient, "sex")),
    DatasetColumn("age", Kind.INTEGER, (Screening, "age_at_screening"), unit="years"),
    DatasetColumn("enrolled_on", Kind.DATE, (Enrollment, "enrolled_on")),
    DatasetColumn("diagnosed_on", Kind.DATE, (Enrollment, "diagnosed_on")),
    DatasetColumn("ecog", Kind.INTEGER, (Baseline, "ecog")),
    DatasetColumn("primary_site", Kind.TEXT, (Baseline, "primary_site")),
    DatasetColumn("liver_mets_count", Kind.INTEGER, (Baseline, "liver_met_count")),
    DatasetColumn(
        "liver_mets_largest_mm", Kind.DECIMAL, (Baseline, "liver_met_largest_mm"), unit="mm"
    ),
    DatasetColumn("liver_mets_distribution", Kind.TEXT, (Baseline, "liver_met_distribution")),
    DatasetColumn("ca19_9_baseline", Kind.DECIMAL, (Baseline, "ca19_9_u_ml"), unit="U/mL"),
    DatasetColumn("cea_baseline", Kind.DECIMAL, (Baseline, "cea_ng_ml"), unit="ng/mL"),
    DatasetColumn(
        "regimen",
        Kind.TEXT,
        (RegimenLine, "regimen"),
        label_text=_("first-line regimen"),
        derivation=_("The regimen of the first active regimen line (lowest line number)."),
    ),
    DatasetColumn(
        "first_cycle_on",
        Kind.DATE,
        label_text=_("date of the first chemotherapy cycle"),
        derivation=_("The earliest day-1 date of the active chemotherapy cycles."),
    ),
    DatasetColumn(
        "cycles_before_surgery",
        Kind.INTEGER,
        label_text=_("cycles before surgery"),
        unit="cycles",
        derivation=_(
            "The number of active non-adjuvant cycles given before the operation date; every "
            "non-adjuvant cycle when the patient was not operated."
        ),
    ),
    DatasetColumn(
        "best_response",
        Kind.TEXT,
        (ImagingStudy, "response"),
        label_text=_("best RECIST 1.1 response"),
        derivation=_(
            "The best RECIST 1.1 response over the active response evaluations, in the order "
            "CR, PR, SD, PD, NE."
        ),
    ),
    DatasetColumn(
        "ca19_9_change_pct_first",
        Kind.DECIMAL,
        label_text=_("CA19-9 change at the first evaluation"),
        unit="%",
        derivation=_("The CA19-9 change from baseline (%) of the first response evaluation."),
    ),
    DatasetColumn(
        "progression_at_first",
        Kind.BOOLEAN,
        label_text=_("progression at the first evaluation"),
        derivation=_(
            "1 when the RECIST response of the first response evaluation is PD, 0 otherwise; "
            "empty without an evaluation."
        ),
    ),
    DatasetColumn(
        "mdt_decision",
        Kind.TEXT,
        (MdtDecision, "decision"),
        label_text=_("latest MDT decision"),
        derivation=_("The decision of the latest active MDT decision (by MDT date)."),
    ),
    DatasetColumn(
        "resected",
        Kind.BOOLEAN,
        label_text=_("resected"),
        derivation=_("1 when the patient has an active index operation, 0 otherwise."),
    ),
    DatasetColumn("surgery_on", Kind.DATE, (Operation, "operated_on")),
    DatasetColumn(
        "surgery_days",
        Kind.INTEGER,
        label_text=_("days from origin to surgery"),
        unit="days",
        derivation=_("surgery_on − origin_on in days; empty when not operated."),
    ),
    DatasetColumn(
        "procedures",
        Kind.TEXT,
        label_text=_("procedures"),
        derivation=_(
            "The pancreatic procedure code followed by the liver procedures done, joined by "
            "'+' (wedge, segmentectomy, hemihepatectomy, ablation), e.g. pd+wedge+ablation."
        ),
    ),
    DatasetColumn(
        "r_status",
        Kind.TEXT,
        (Pathology, "margin_pancreas"),
        label_text=_("resection margin (worst)"),
        derivation=_("The worst of the pancreatic and liver margins (R2 > R1 > R0)."),
    ),
    DatasetColumn("ypt", Kind.TEXT, (Pathology, "ypt")),
    DatasetColumn("ypn", Kind.TEXT, (Pathology, "ypn")),
    DatasetColumn(
        "clavien_dindo_max",
        Kind.TEXT,
        (Complication, "clavien_dindo"),
        label_text=_("highest Clavien-Dindo grade"),
        derivation=_(
            "The highest Clavien-Dindo grade of the active complications of the operation; "
            "empty without a complication or an operation."
        ),
    ),
    DatasetColumn(
        "popf_grade",
        Kind.TEXT,
        (Complication, "isgps_grade"),
        label_text=_("pancreatic fistula grade (worst)"),
        derivation=_(
            "The worst ISGPS grade (C > B > A > BL) of the postoperative pancreatic fistulas; "
            "empty without one or without an operation."
        ),
    ),
    DatasetColumn(
        "length_of_stay_days",
        Kind.INTEGER,
        label_text=_("length of stay"),
        unit="days",
        derivation=_("Discharge date − operation date in days."),
    ),
    DatasetColumn(
        "mortality_90d",
        Kind.BOOLEAN,
        label_text=_("90-day mortality"),
        derivation=_(
            "1 when the patient died within 90 days of the operation (death − operation ≤ 90 "
            "days), 0 otherwise; empty when not operated."
        ),
    ),
    DatasetColumn(
        "adjuvant_cycles",
        Kind.INTEGER,
        label_text=_("adjuvant cycles"),
        unit="cycles",
        derivation=_("The number of active adjuvant cycles; empty when not operated."),
    ),
    DatasetColumn(
        "recurrence_on",
        Kind.DATE,
        label_text=_("date of recurrence / progression"),
        derivation=_(
            "The date of the first recurrence after the operation; otherwise of the first "
            "recurrence or progression record."
        ),
    ),
    DatasetColumn(
        "recurrence_kind",
        Kind.TEXT,
        (Recurrence, "kind"),
        derivation=_("The kind of the record recurrence_on comes from."),
    ),
    DatasetColumn(
        "recurrence_sites",
        Kind.TEXT,
        label_text=_("sites of recurrence / progression"),
        derivation=_("The sites of that record, as codes separated by ';'."),
        extra_codes=_SITES,
    ),
    DatasetColumn("death_on", Kind.DATE, (Death, "died_on")),
    DatasetColumn("death_cause", Kind.TEXT, (Death, "cause")),
    DatasetColumn("withdrawn_on", Kind.DATE, (Withdrawal, "withdrawn_on")),
    DatasetColumn(
        "last_known_alive",
        Kind.DATE,
        label_text=_("last date known alive"),
        derivation=_(
            "The date of death; otherwise the latest date of any active form of the patient "
            "(screening to follow-up contacts that reached the patient alive)."
        ),
    ),
    DatasetColumn(
        "origin",
        Kind.TEXT,
        label_text=_("OS origin"),
        derivation=_("The origin of the time scale chosen for the export."),
        extra_codes=(
            (Origin.ENROLLMENT.value, _("enrollment date")),
            (Origin.DIAGNOSIS.value, _("date of pathological diagnosis")),
            (Origin.FIRST_CYCLE.value, _("date of the first chemotherapy cycle")),
        ),
    ),
    DatasetColumn(
        "origin_on",
        Kind.DATE,
        label_text=_("origin date"),
        derivation=_("enrolled_on, diagnosed_on or first_cycle_on, according to origin."),
    ),
    DatasetColumn(
        "os_days",
        Kind.INTEGER,
        label_text=_("overall survival"),
        unit="days",
        derivation=_(
            "From origin_on to death from any cause, censored at the last date known alive, "
            "in days; empty when the patient is excluded (see exclusion)."
        ),
    ),
    DatasetColumn(
        "os_months",
        Kind.DECIMAL,
        label_text=_("overall survival (months)"),
        unit="months",
        derivation=_("os_days / 30.4375, rounded to 2 decimals."),
    ),
    DatasetColumn(
        "os_event",
        Kind.INTEGER,
        label_text=_("OS event"),
        derivation=_("1 when the patient died, 0 when censored; empty when os_days is empty."),
        extra_codes=EVENT_CODES,
    ),
    DatasetColumn(
        "rfs_days",
        Kind.INTEGER,
        label_text=_("recurrence-free survival"),
        unit="days",
        derivation=_(
            "Resected patients only: from the operation to the first recurrence after it or "
            "death, whichever comes first; censored at the last date known alive (never "
            "negative)."
        ),
    ),
    DatasetColumn(
        "rfs_event",
        Kind.INTEGER,
        label_text=_("RFS event"),
        derivation=_("1 for a recurrence or death, 0 when censored; empty when not resected."),
        extra_codes=EVENT_CODES,
    ),
    DatasetColumn(
        "exclusion",
        Kind.TEXT,
        label_text=_("reason for exclusion from the analyses"),
        derivation=_("Empty when the patient has an OS time; otherwise why not."),
        extra_codes=(
            ("no_origin_date", _("no origin date")),
            ("no_date_known_alive", _("no date known alive")),
            ("follow_up_before_origin", _("the last date known alive is before the origin")),
        ),
    ),
)
COLUMNS_BY_NAME = {column.name: column for column in COLUMNS}
