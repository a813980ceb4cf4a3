"""A curated catalogue of CTCAE v5.0 terms for chemotherapy of pancreatic cancer.

The stored value is the CTCAE v5.0 term in English (as in the NCI term list), so exports stay
readable and can be mapped to MedDRA; the label shown is translated. Terms come from the
toxicities reported for AG, (m)FOLFIRINOX and NALIRIFOX (MPACT, PRODIGE 4, NAPOLI-3) and the
complications of biliary obstruction and liver metastases. `grades` is the range CTCAE v5.0
defines for the term where it is narrower than 1–5 (e.g. alopecia has grades 1–2 only,
febrile neutropenia starts at grade 3, laboratory terms stop at 4).
Anything else is recorded as "Other, specify" with its own name.
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

OTHER = "other"


@dataclass(frozen=True)
class Term:
    term: str  # stored value: the CTCAE v5.0 term
    label: Promise | str
    soc: Promise | str  # MedDRA system organ class
    grades: tuple[int, int] = (1, 5)

    def allows(self, grade: int) -> bool:
        low, high = self.grades
        return low <= grade <= high


BLOOD = _("Blood and lymphatic system disorders")
GI = _("Gastrointestinal disorders")
GENERAL = _("General disorders and administration site conditions")
HEPATOBILIARY = _("Hepatobiliary disorders")
INFECTIONS = _("Infections and infestations")
INVESTIGATIONS = _("Investigations")
METABOLISM = _("Metabolism and nutrition disorders")
NERVOUS = _("Nervous system disorders")
RESPIRATORY = _("Respiratory, thoracic and mediastinal disorders")
SKIN = _("Skin and subcutaneous tissue disorders")
VASCULAR = _("Vascular disorders")
IMMUNE = _("Immune system disorders")
OTHER_SOC = _("Other")

TERMS: tuple[Term, ...] = (
    # Blood and lymphatic system
    Term("Anemia", _("Anaemia"), BLOOD),
    Term("Febrile neutropenia", _("Febrile neutropenia"), BLOOD, (3, 5)),
    # Investigations (laboratory values)
    Term("Neutrophil count decreased", _("Neutrophil count decreased"), INVESTIGATIONS, (1, 4)),
    Term("Platelet count decreased", _("Platelet count decreased"), INVESTIGATIONS, (1, 4)),
    Term("White blood cell decreased", _("White blood cell decreased"), INVESTIGATIONS, (1, 4)),
    Term("Lymphocyte count decreased", _("Lymphocyte count decreased"), INVESTIGATIONS, (1, 4)),
    Term(
        "Alanine aminotransferase increased",
        _("Alanine aminotransferase (ALT) increased"),
        INVESTIGATIONS,
        (1, 4),
    ),
    Term(
        "Aspartate aminotransferase increased",
        _("Aspartate aminotransferase (AST) increased"),
        INVESTIGATIONS,
        (1, 4),
    ),
    Term(
        "Alkaline phosphatase increased",
        _("Alkaline phosphatase increased"),
        INVESTIGATIONS,
        (1, 4),
    ),
    Term("Blood bilirubin increased", _("Blood bilirubin increased"), INVESTIGATIONS, (1, 4)),
    Term("GGT increased", _("GGT increased"), INVESTIGATIONS, (1, 4)),
    Term("Creatinine increased", _("Creatinine increased"), INVESTIGATIONS, (1, 4)),
    Term("Weight loss", _("Weight loss"), INVESTIGATIONS, (1, 3)),
    # Gastrointestinal
    Term("Nausea", _("Nausea"), GI, (1, 3)),
    Term("Vomiting", _("Vomiting"), GI),
    Term("Diarrhea", _("Diarrhoea"), GI),
    Term("Constipation", _("Constipation"), GI),
    Term("Mucositis oral", _("Oral mucositis"), GI),
    Term("Abdominal pain", _("Abdominal pain"), GI, (1, 3)),
    Term("Dyspepsia", _("Dyspepsia"), GI, (1, 3)),
    Term("Ascites", _("Ascites"), GI),
    Term("Upper gastrointestinal hemorrhage", _("Upper gastrointestinal haemorrhage"), GI),
    # Nervous system
    Term("Peripheral sensory neuropathy", _("Peripheral sensory neuropathy"), NERVOUS),
    Term("Peripheral motor neuropathy", _("Peripheral motor neuropathy"), NERVOUS),
    Term("Dysgeusia", _("Dysgeusia (taste change)"), NERVOUS, (1, 2)),
    # General
    Term("Fatigue", _("Fatigue"), GENERAL, (1, 3)),
    Term("Fever", _("Fever"), GENERAL),
    Term("Edema limbs", _("Oedema of the limbs"), GENERAL, (1, 3)),
    Term("Infusion related reaction", _("Infusion-related reaction"), GENERAL),
    # Infections
    Term("Biliary tract infection", _("Biliary tract infection (cholangitis)"), INFECTIONS, (2, 5)),
    Term("Sepsis", _("Sepsis"), INFECTIONS, (4, 5)),
    Term("Lung infection", _("Lung infection (pneumonia)"), INFECTIONS, (2, 5)),
    Term("Catheter related infection", _("Catheter-related infection"), INFECTIONS, (2, 5)),
    Term("Urinary tract infection", _("Urinary tract infection"), INFECTIONS, (2, 5)),
    # Hepatobiliary
    Term("Cholecystitis", _("Cholecystitis"), HEPATOBILIARY, (2, 5)),
    Term("Bile duct stenosis", _("Bile duct stenosis (stent obstruction)"), HEPATOBILIARY, (2, 5)),
    Term("Hepatic failure", _("Hepatic failure"), HEPATOBILIARY, (3, 5)),
    # Vascular
    Term("Thromboembolic event", _("Thromboembolic event"), VASCULAR),
    Term("Hypertension", _("Hypertension"), VASCULAR),
    # Skin
    Term("Alopecia", _("Alopecia"), SKIN, (1, 2)),
    Term("Rash maculo-papular", _("Rash maculo-papular"), SKIN, (1, 3)),
    Term(
        "Palmar-plantar erythrodysesthesia syndrome",
        _("Palmar-plantar erythrodysaesthesia (hand-foot syndrome)"),
        SKIN,
        (1, 3),
    ),
    # Metabolism and nutrition
    Term("Anorexia", _("Anorexia"), METABOLISM),
    Term("Dehydration", _("Dehydration"), METABOLISM),
    Term("Hypokalemia", _("Hypokalaemia"), METABOLISM),
    Term("Hyponatremia", _("Hyponatraemia"), METABOLISM),
    Term("Hyperglycemia", _("Hyperglycaemia"), METABOLISM),
    Term("Hypoalbuminemia", _("Hypoalbuminaemia"), METABOLISM),
    # Respiratory
    Term("Pneumonitis", _("Pneumonitis"), RESPIRATORY),
    Term("Dyspnea", _("Dyspnoea"), RESPIRATORY),
    # Immune
    Term("Allergic reaction", _("Allergic reaction"), IMMUNE),
    # Anything else
    Term(OTHER, _("Other, specify"), OTHER_SOC),
)

TERMS_BY_CODE: dict[str, Term] = {term.term: term for term in TERMS}


def term_get(code: str) -> Term | None:
    """The catalogue entry of a stored term, or None if it is not in the catalogue."""
    return TERMS_BY_CODE.get(code)


def term_label(code: str, other: str = "") -> str:
    """What to show for a stored term: the translated label, or the typed name for "other"."""
    if code == OTHER:
        return other or str(TERMS_BY_CODE[OTHER].label)
    term = TERMS_BY_CODE.get(code)
    return str(term.label) if term else code


def grouped_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Choices for a <select> grouped by system organ class (SOC), in catalogue order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for term in TERMS:
        groups.setdefault(str(term.soc), []).append((term.term, str(term.label)))
    return list(groups.items())
