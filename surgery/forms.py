"""Forms of the surgery pages (CRFs with version and reason for change)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from assessments.forms.labs import LabPanelForm
from surgery.models import Complication, Discharge, MdtDecision, Operation, Pathology
from trial.forms import CRFForm


class EvaluationChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.evaluated_on:%Y-%m-%d} · {obj.get_decision_display()}"


class MdtDecisionForm(CRFForm):
    fieldsets = [
        (_("Meeting"), ["decided_on", "evaluations"]),
        (
            _("Attendees"),
            [
                "attended_surgeon",
                "attended_oncologist",
                "attended_radiologist",
                "attended_pathologist",
                "attended_other",
            ],
        ),
        (_("Decision"), ["decision", "rationale"]),
        (
            _("Planned procedures (radical surgery)"),
            [
                "planned_pancreatic",
                "planned_liver_wedge",
                "planned_liver_segmentectomy",
                "planned_liver_hemihepatectomy",
                "planned_liver_ablation",
            ],
        ),
    ]

    evaluations = EvaluationChoiceField(
        label=_("Response evaluations discussed"),
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The evaluations dated on or before the MDT that the decision rests on."),
    )

    class Meta:
        model = MdtDecision
        fields = [
            "decided_on",
            "attended_surgeon",
            "attended_oncologist",
            "attended_radiologist",
            "attended_pathologist",
            "attended_other",
            "decision",
            "rationale",
            "planned_pancreatic",
            "planned_liver_wedge",
            "planned_liver_segmentectomy",
            "planned_liver_hemihepatectomy",
            "planned_liver_ablation",
        ]
        widgets = {"rationale": forms.Textarea(attrs={"rows": 3}), "decision": forms.RadioSelect}

    def __init__(self, *args, evaluations, initial_evaluations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evaluations"].queryset = evaluations
        if not self.is_bound:
            self.initial["evaluations"] = list(initial_evaluations)


class OperationForm(CRFForm):
    fieldsets = [
        (_("MDT"), ["mdt_decision", "mdt_document_missing", "mdt_missing_reason"]),
        (_("Operation"), ["operated_on", "pancreatic_procedure", "vascular_resection"]),
        (
            _("Liver"),
            [
                "liver_wedge",
                "liver_segmentectomy",
                "liver_hemihepatectomy",
                "liver_ablation",
                "liver_lesions_resected",
                "liver_lesions_ablated",
            ],
        ),
        (
            _("Approach and course"),
            [
                "approach",
                "converted",
                "operative_minutes",
                "blood_loss_ml",
                "transfusion_units",
                "findings",
            ],
        ),
    ]

    class Meta:
        model = Operation
        fields = [
            "mdt_decision",
            "mdt_document_missing",
            "mdt_missing_reason",
            "operated_on",
            "pancreatic_procedure",
            "liver_wedge",
            "liver_segmentectomy",
            "liver_hemihepatectomy",
            "liver_ablation",
            "liver_lesions_resected",
            "liver_lesions_ablated",
            "vascular_resection",
            "approach",
            "converted",
            "operative_minutes",
            "blood_loss_ml",
            "transfusion_units",
            "findings",
        ]
        widgets = {"findings": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, decisions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mdt_decision"].queryset = decisions
        self.fields["mdt_decision"].label_from_instance = lambda d: (
            f"{d.decided_on:%Y-%m-%d} · {d.get_decision_display()}"
        )


class PathologyForm(CRFForm):
    fieldsets = [
        (_("Report"), ["reported_on", "ypt", "ypn", "differentiation", "regression_grade"]),
        (_("Margins"), ["margin_pancreas", "margin_liver"]),
        (
            _("Lymph nodes and invasion"),
            ["nodes_examined", "nodes_positive", "perineural_invasion", "lymphovascular_invasion"],
        ),
    ]

    class Meta:
        model = Pathology
        fields = [
            "reported_on",
            "ypt",
            "ypn",
            "margin_pancreas",
            "margin_liver",
            "nodes_examined",
            "nodes_positive",
            "regression_grade",
            "differentiation",
            "perineural_invasion",
            "lymphovascular_invasion",
        ]


class ComplicationForm(CRFForm):
    fieldsets = [
        (_("Complication"), ["onset_on", "kind", "description"]),
        (_("Grading"), ["clavien_dindo", "isgps_grade", "drain_amylase_u_l"]),
    ]

    class Meta:
        model = Complication
        fields = [
            "onset_on",
            "kind",
            "description",
            "clavien_dindo",
            "isgps_grade",
            "drain_amylase_u_l",
        ]
        help_texts = {
            "isgps_grade": _(
                "Fistula: BL, B or C (ISGPS 2016, no grade A); DGE and haemorrhage: A, B or C; "
                "empty for other complications."
            ),
            "drain_amylase_u_l": _("Fistula only: above 405 U/L (3 × the serum ULN of 135)."),
        }


class DischargeForm(CRFForm):
    fieldsets = [
        (_("Discharge"), ["discharged_on"]),
        (_("Readmission"), ["readmitted_on", "readmission_reason"]),
    ]

    class Meta:
        model = Discharge
        fields = ["discharged_on", "readmitted_on", "readmission_reason"]


class PostopLabForm(LabPanelForm):
    """The assessments lab grid for a postoperative panel: the context and day are derived
    from the operation date, so the form asks for the sample date only (and a confirmation
    when the sample falls outside its day's window)."""

    confirm_out_of_window = forms.BooleanField(
        label=_("Record it outside its window"),
        required=False,
        help_text=_("Tick when the sample was taken outside the window of its day on purpose."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["context"]
        del self.fields["postop_day"]

    def head_fields(self) -> list[forms.BoundField]:
        return [self["sampled_on"], self["confirm_out_of_window"]]
