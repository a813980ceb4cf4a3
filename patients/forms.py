"""Forms of the patients app. Row rules are in the models, cross-form rules in the services."""

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.models import (
    Baseline,
    Consent,
    Enrollment,
    Patient,
    PatientIdentity,
    Screening,
    Sex,
    Withdrawal,
)
from trial.forms import CRFForm, DateInput
from trial.models import Cohort, Site

_YES_NO = [(True, _("Yes")), (False, _("No"))]


def _yes_no(field: forms.Field) -> None:
    """Turn a checkbox into an explicit Yes / No answer: an unanswered item is not a 'no'."""
    field.widget = forms.RadioSelect(choices=_YES_NO)


class PatientFilterForm(forms.Form):
    q = forms.CharField(label=_("Subject code"), required=False, max_length=16)
    cohort = forms.ChoiceField(
        label=_("Cohort"),
        required=False,
        choices=[("", _("All cohorts")), *Cohort.choices],
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All statuses")), *Patient.Status.choices],
    )
    site = forms.ModelChoiceField(
        label=_("Site"),
        required=False,
        queryset=Site.objects.none(),
        empty_label=_("All sites"),
    )

    def __init__(self, *args, sites=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites if sites is not None else Site.objects.none()


class IdentityForm(CRFForm):
    """PHI and sex; shown on the screening page, saved to PatientIdentity and Patient."""

    sex = forms.ChoiceField(label=_("Sex"), choices=Sex.choices, widget=forms.RadioSelect)

    fieldsets = [
        (
            _("Identity (kept confidential)"),
            ["full_name", "hospital_record_number", "date_of_birth", "phone", "sex"],
        )
    ]

    class Meta:
        model = PatientIdentity
        fields = ["full_name", "hospital_record_number", "date_of_birth", "phone"]
        widgets = {"date_of_birth": DateInput()}


class ScreeningForm(CRFForm):
    fieldsets = [
        (_("Screening"), ["screened_on", "intended_cohort"]),
        (
            _("Eligibility checklist"),
            [
                "confirmation",
                "is_pdac",
                "synchronous_liver_metastases",
                "imaging_on",
                "prior_systemic_therapy",
            ],
        ),
        (_("Notes"), ["notes"]),
    ]

    class Meta:
        model = Screening
        fields = [
            "screened_on",
            "intended_cohort",
            "confirmation",
            "is_pdac",
            "synchronous_liver_metastases",
            "imaging_on",
            "prior_systemic_therapy",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in (
            "is_pdac",
            "synchronous_liver_metastases",
            "prior_systemic_therapy",
        ):
            self.fields[name] = forms.TypedChoiceField(
                label=self.fields[name].label,
                help_text=self.fields[name].help_text,
                choices=_YES_NO,
                coerce=lambda v: v in (True, "True"),
                widget=forms.RadioSelect,
            )

    @property
    def asks_reason(self) -> bool:
        # The page also edits the identity and sex, which are never drafts: changing them needs
        # a reason even while the screening itself is a draft, so the field is always offered.
        return bool(self.instance.pk)


class ConsentForm(CRFForm):
    fieldsets = [
        (
            _("Consent"),
            ["basis", "consented_on", "consent_version", "waiver_reference"],
        ),
        (_("Answers"), ["study_consent", "biobank_consent"]),
    ]

    class Meta:
        model = Consent
        fields = [
            "basis",
            "consented_on",
            "consent_version",
            "waiver_reference",
            "study_consent",
            "biobank_consent",
        ]
        widgets = {"basis": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("study_consent", "biobank_consent"):
            self.fields[name] = forms.TypedChoiceField(
                label=self.fields[name].label,
                help_text=self.fields[name].help_text,
                choices=_YES_NO,
                coerce=lambda v: v in (True, "True"),
                widget=forms.RadioSelect,
            )


class EnrollmentForm(CRFForm):
    fieldsets = [(_("Enrollment"), ["enrolled_on", "cohort", "diagnosed_on"])]

    class Meta:
        model = Enrollment
        fields = ["enrolled_on", "cohort", "diagnosed_on"]
        widgets = {"cohort": forms.RadioSelect}


class BaselineForm(CRFForm):
    fieldsets = [
        (_("Patient"), ["assessed_on", "ecog", "height_cm", "weight_kg"]),
        (_("Primary tumour"), ["primary_site", "primary_size_mm", "ajcc_t", "ajcc_n"]),
        (
            _("Vascular involvement"),
            ["vascular_smv_pv", "vascular_sma", "vascular_celiac", "vascular_cha"],
        ),
        (
            _("Liver metastases"),
            ["liver_met_count", "liver_met_largest_mm", "liver_met_distribution"],
        ),
        (
            _("Other metastatic sites"),
            [
                "other_met_peritoneum",
                "other_met_lung",
                "other_met_distant_nodes",
                "other_met_bone",
                "other_met_other",
            ],
        ),
        (_("Tumour markers"), ["ca19_9_u_ml", "cea_ng_ml", "ca125_u_ml"]),
        (_("Biliary drainage"), ["biliary_stent", "biliary_stent_type"]),
        (
            _("Comorbidities"),
            [
                "comorbid_diabetes",
                "comorbid_hypertension",
                "comorbid_coronary",
                "comorbid_liver",
                "comorbid_kidney",
                "comorbid_other",
            ],
        ),
    ]

    class Meta:
        model = Baseline
        fields = [
            "assessed_on",
            "ecog",
            "height_cm",
            "weight_kg",
            "primary_site",
            "primary_size_mm",
            "ajcc_t",
            "ajcc_n",
            "vascular_smv_pv",
            "vascular_sma",
            "vascular_celiac",
            "vascular_cha",
            "liver_met_count",
            "liver_met_largest_mm",
            "liver_met_distribution",
            "other_met_peritoneum",
            "other_met_lung",
            "other_met_distant_nodes",
            "other_met_bone",
            "other_met_other",
            "ca19_9_u_ml",
            "cea_ng_ml",
            "ca125_u_ml",
            "biliary_stent",
            "biliary_stent_type",
            "comorbid_diabetes",
            "comorbid_hypertension",
            "comorbid_coronary",
            "comorbid_liver",
            "comorbid_kidney",
            "comorbid_other",
        ]
        widgets = {
            "liver_met_distribution": forms.RadioSelect,
        }


class WithdrawalForm(CRFForm):
    fieldsets = [
        (
            _("Withdrawal / drop-out"),
            ["withdrawn_on", "kind", "reason", "reason_detail"],
        ),
        (_("Last medication"), ["last_medication_on", "no_medication_given"]),
    ]

    class Meta:
        model = Withdrawal
        fields = [
            "withdrawn_on",
            "kind",
            "reason",
            "reason_detail",
            "last_medication_on",
            "no_medication_given",
        ]
