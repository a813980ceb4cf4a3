"""The columns of the retrospective-cohort import template: pure data, no ORM.

`docs/import-template.md` describes each column for the data manager and
`docs/import-template.csv` is the empty template; a test keeps both in step with `COLUMNS`.

Conventions of every optional column: an empty cell means "not collected" (the chart was not
abstracted for it) and stays missing; the literal `unknown` (any case) means "collected but
unknown" (the chart was read and does not say) where `unknown_ok` is set. Both leave the
value missing; the abstract (exchange.models.RetrospectiveAbstract.unknown_columns) keeps
which columns were "unknown", so a statistician can tell the two apart.
"""

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TEXT = "text"
    CODE = "code"
    CODES = "codes"  # several codes separated by ";"
    DATE = "date"
    INTEGER = "integer"
    DECIMAL = "decimal"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    meaning: str
    required: bool = False
    codes: tuple[str, ...] = ()
    low: float | None = None  # numbers: the plausible range, inclusive
    high: float | None = None
    unknown_ok: bool = False
    phi: bool = False  # goes to patients.PatientIdentity only
    max_length: int = 0


UNKNOWN = "unknown"
SEX = ("M", "F")
VITAL_STATUS = ("alive", "dead")
CONFIRMATION = ("histology", "cytology")
ECOG = ("0", "1", "2", "3", "4")
PRIMARY_SITE = ("head", "uncinate", "neck", "body", "tail")
DISTRIBUTION = ("unilobar", "bilobar")
AJCC_T = ("TX", "T1a", "T1b", "T1c", "T2", "T3", "T4")
AJCC_N = ("NX", "N0", "N1", "N2")
REGIMEN = ("AG", "FOLFIRINOX", "mFOLFIRINOX", "NALIRIFOX", "other")
RESPONSE = ("CR", "PR", "SD", "PD", "NE")
PROCEDURE = ("pd", "pppd", "dps", "tp")
LIVER_PROCEDURES = ("wedge", "segmentectomy", "hemihepatectomy", "ablation", "none")
APPROACH = ("open", "laparoscopic", "robotic")
R_STATUS = ("R0", "R1", "R2")
RECURRENCE_SITES = ("local", "liver", "peritoneum", "lung", "distant_nodes", "other")
DETECTED_BY = ("imaging", "tumour_marker", "clinical")
DEATH_CAUSE = ("progression", "treatment", "surgical", "other", "unknown")
DEATH_SOURCE = ("hospital", "family", "certificate", "registry", "other")

C, D, INT, N, T, M = Kind.CODE, Kind.DATE, Kind.INTEGER, Kind.DECIMAL, Kind.TEXT, Kind.CODES

COLUMNS: tuple[Column, ...] = (
    # --- required -----------------------------------------------------------------------------
    Column("subject_code", T, "Subject code in the site's format, e.g. CJFH-0123.", True),
    Column("sex", C, "Sex.", True, SEX),
    Column(
        "age",
        INT,
        "Age in completed years at enrollment (give it or date_of_birth).",
        low=0,
        high=120,
    ),
    Column("date_of_birth", D, "Date of birth (PHI: stored in the identity only).", phi=True),
    Column(
        "enrollment_date",
        D,
        "Date the case enters the study (screening, waiver and "
        "enrollment are dated on it; the default OS origin).",
        True,
    ),
    Column("vital_status", C, "Vital status at the last contact.", True, VITAL_STATUS),
    Column(
        "last_contact_date",
        D,
        "Last date the patient was known alive (for a dead patient "
        "a later date is the contact that reported the death).",
        True,
    ),
    Column("death_date", D, "Date of death: required when vital_status is dead."),
    # --- identity (PHI) and consent -------------------------------------------------------------
    Column("name", T, "Full name (PHI).", phi=True, max_length=120),
    Column("hospital_record_number", T, "Hospital record number (PHI).", phi=True, max_length=32),
    Column(
        "waiver_reference",
        T,
        "Ethics-committee reference of the consent waiver (overrides "
        "the run's --waiver-reference).",
        max_length=64,
    ),
    Column(
        "pathological_confirmation",
        C,
        "How the PDAC was confirmed (empty: histology).",
        codes=CONFIRMATION,
    ),
    # --- diagnosis and baseline -----------------------------------------------------------------
    Column("diagnosis_date", D, "Date of the pathological diagnosis.", unknown_ok=True),
    Column(
        "baseline_date",
        D,
        "Date of the baseline work-up (within 28 days before and 14 after enrollment).",
        unknown_ok=True,
    ),
    Column("ecog", C, "ECOG performance status at baseline.", codes=ECOG, unknown_ok=True),
    Column("height_cm", N, "Height (cm).", low=100, high=230, unknown_ok=True),
    Column("weight_kg", N, "Weight (kg).", low=25, high=250, unknown_ok=True),
    Column("primary_site", C, "Primary tumour site.", codes=PRIMARY_SITE, unknown_ok=True),
    Column(
        "primary_size_mm",
        N,
        "Primary tumour, longest diameter (mm).",
        low=1,
        high=250,
        unknown_ok=True,
    ),
    Column("liver_mets_count", INT, "Number of liver metastases.", low=1, high=99, unknown_ok=True),
    Column(
        "liver_mets_largest_mm",
        N,
        "Largest liver metastasis (mm).",
        low=1,
        high=300,
        unknown_ok=True,
    ),
    Column(
        "liver_mets_distribution",
        C,
        "Liver metastases distribution.",
        codes=DISTRIBUTION,
        unknown_ok=True,
    ),
    Column("ajcc_t", C, "AJCC 8th T category.", codes=AJCC_T, unknown_ok=True),
    Column("ajcc_n", C, "AJCC 8th N category.", codes=AJCC_N, unknown_ok=True),
    Column("ca19_9_baseline", N, "Baseline CA19-9 (U/mL).", low=0, high=1000000, unknown_ok=True),
    Column("cea_baseline", N, "Baseline CEA (ng/mL).", low=0, high=100000, unknown_ok=True),
    # --- first-line chemotherapy ----------------------------------------------------------------
    Column("regimen", C, "First-line regimen.", codes=REGIMEN, unknown_ok=True),
    Column("regimen_other", T, "Name of an other regimen.", max_length=120),
    Column("first_cycle_date", D, "Day 1 of the first cycle.", unknown_ok=True),
    Column(
        "cycles",
        INT,
        "Number of first-line cycles given before surgery (or in all, without surgery).",
        low=0,
        high=99,
        unknown_ok=True,
    ),
    Column("best_response", C, "Best RECIST 1.1 response.", codes=RESPONSE, unknown_ok=True),
    # --- surgery --------------------------------------------------------------------------------
    Column("surgery_date", D, "Date of the index operation.", unknown_ok=True),
    Column("pancreatic_procedure", C, "Pancreatic procedure.", codes=PROCEDURE, unknown_ok=True),
    Column(
        "liver_procedures",
        M,
        "Liver procedures, ;-separated.",
        codes=LIVER_PROCEDURES,
        unknown_ok=True,
    ),
    Column(
        "liver_lesions_resected", INT, "Liver lesions resected.", low=0, high=99, unknown_ok=True
    ),
    Column("liver_lesions_ablated", INT, "Liver lesions ablated.", low=0, high=99, unknown_ok=True),
    Column("approach", C, "Surgical approach.", codes=APPROACH, unknown_ok=True),
    Column("operative_minutes", INT, "Operative time (min).", low=30, high=1440, unknown_ok=True),
    Column("blood_loss_ml", INT, "Blood loss (mL).", low=0, high=30000, unknown_ok=True),
    Column("r_status", C, "Resection margin of the pancreas.", codes=R_STATUS, unknown_ok=True),
    # --- follow-up ------------------------------------------------------------------------------
    Column(
        "recurrence_date",
        D,
        "Date the first recurrence (after surgery) or progression was detected.",
        unknown_ok=True,
    ),
    Column("recurrence_sites", M, "Sites, ;-separated.", codes=RECURRENCE_SITES, unknown_ok=True),
    Column("recurrence_site_other", T, "Name of an other site.", max_length=120),
    Column("recurrence_detected_by", C, "How it was detected.", codes=DETECTED_BY, unknown_ok=True),
    Column("death_cause", C, "Cause of death.", codes=DEATH_CAUSE),
    Column("death_cause_detail", T, "Details of an other cause.", max_length=300),
    Column(
        "death_source", C, "Source of the death information (empty: hospital).", codes=DEATH_SOURCE
    ),
)
COLUMNS_BY_NAME = {column.name: column for column in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
PHI_COLUMNS = tuple(c.name for c in COLUMNS if c.phi)

# Every column a CRF needs: the CRF is created only when the row gives them all (never
# with invented values); otherwise the values go to the abstract only.
BASELINE_COLUMNS = (
    "baseline_date",
    "ecog",
    "height_cm",
    "weight_kg",
    "primary_site",
    "primary_size_mm",
    "liver_mets_count",
    "liver_mets_largest_mm",
    "liver_mets_distribution",
    "ajcc_t",
    "ajcc_n",
)
LINE_COLUMNS = ("regimen", "first_cycle_date")
OPERATION_COLUMNS = (
    "surgery_date",
    "pancreatic_procedure",
    "approach",
    "operative_minutes",
    "blood_loss_ml",
)
RECURRENCE_COLUMNS = ("recurrence_date", "recurrence_sites", "recurrence_detected_by")
