"""Forms of the imaging and evaluation pages. RECIST rules live in `assessments.recist` and
the services; these forms only parse the grid and give each field's own errors."""

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from assessments.models import ImagingStudy, LabPanel, ResponseEvaluation, TargetLesion
from trial.forms import CRFForm

MAX_LESIONS = 5
LESION_FIELDS = ("label", "organ", "diameter")


def _name(index: int, part: str) -> str:
    return f"lesion_{index}_{part}"


class ImagingStudyForm(CRFForm):
    """An imaging study with a grid of up to 5 target lesions (label, organ, diameter).

    On a follow-up study the grid is prefilled with the baseline's labels and organs, so only
    the diameters are typed; a row left without a diameter is a target not measured. After
    `is_valid()`, `lesions` holds the unsaved TargetLesion rows for the service.
    """

    fieldsets = [
        (pgettext_lazy("imaging", "Study"), ["performed_on", "modality", "is_baseline"]),
        (_("Non-target and new lesions"), ["non_target", "new_lesions"]),
        (_("Radiologist's reading"), ["radiologist_response", "notes"]),
    ]

    class Meta:
        model = ImagingStudy
        fields = [
            "performed_on",
            "modality",
            "is_baseline",
            "non_target",
            "new_lesions",
            "radiologist_response",
            "notes",
        ]
        widgets = {
            "modality": forms.RadioSelect,
            "non_target": forms.RadioSelect,
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(
        self,
        *args,
        targets: list[TargetLesion] | None = None,
        lesions: list[TargetLesion] | None = None,
        **kwargs,
    ):
        """`targets`: the baseline's lesions (prefill a follow-up); `lesions`: this study's."""
        super().__init__(*args, **kwargs)
        self.lesions: list[TargetLesion] = []
        self.lesion_errors: list[str] = []
        self.fields["radiologist_response"].help_text = _(
            "As written in the report; a disagreement with the computed response is shown."
        )
        organs = [("", "—"), *TargetLesion.Organ.choices]
        for index in range(1, MAX_LESIONS + 1):
            self.fields[_name(index, "label")] = forms.CharField(
                label=_("Lesion %(n)s label") % {"n": index}, max_length=8, required=False
            )
            self.fields[_name(index, "organ")] = forms.ChoiceField(
                label=_("Lesion %(n)s organ") % {"n": index}, choices=organs, required=False
            )
            self.fields[_name(index, "diameter")] = forms.DecimalField(
                label=_("Lesion %(n)s diameter (mm)") % {"n": index},
                max_digits=5,
                decimal_places=1,
                min_value=Decimal(0),
                max_value=Decimal(400),
                required=False,
                widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
            )
        if not self.is_bound:
            self._prefill(targets or [], lesions or [])

    def _prefill(self, targets: list[TargetLesion], lesions: list[TargetLesion]) -> None:
        measured = {lesion.label: lesion for lesion in lesions}
        if self.instance.pk:
            baseline = self.instance.is_baseline
        else:
            baseline = not targets
            self.initial["is_baseline"] = baseline
        rows: list[tuple[str, str, Decimal | None]] = []
        if baseline:
            rows = [(x.label, x.organ, x.diameter_mm) for x in lesions]
            used = {label for label, _organ, _d in rows}
            rows += [(f"T{n}", "", None) for n in range(1, 9) if f"T{n}" not in used]
        else:
            for target in targets:
                lesion = measured.pop(target.label, None)
                rows.append((target.label, target.organ, lesion.diameter_mm if lesion else None))
            rows += [(x.label, x.organ, x.diameter_mm) for x in measured.values()]
        for index, (label, organ, diameter) in enumerate(rows[:MAX_LESIONS], start=1):
            self.initial[_name(index, "label")] = label
            self.initial[_name(index, "organ")] = organ
            self.initial[_name(index, "diameter")] = diameter

    def lesion_rows(self) -> list[tuple[int, forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (index, *(self[_name(index, part)] for part in LESION_FIELDS))
            for index in range(1, MAX_LESIONS + 1)
        ]

    def grouped(self):
        return [
            (legend, [field for field in fields if not field.name.startswith("lesion_")])
            for legend, fields in super().grouped()
            if any(not field.name.startswith("lesion_") for field in fields)
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        baseline = bool(cleaned.get("is_baseline"))
        self.lesions = []
        seen: dict[str, int] = {}
        for index in range(1, MAX_LESIONS + 1):
            label = (cleaned.get(_name(index, "label")) or "").strip().upper()
            organ = cleaned.get(_name(index, "organ")) or ""
            diameter = cleaned.get(_name(index, "diameter"))
            if _name(index, "diameter") in self.errors:
                continue
            if not organ and diameter is None:
                continue  # an empty row (a prefilled label alone is not a lesion)
            if diameter is None:
                if baseline:
                    self.add_error(
                        _name(index, "diameter"),
                        _("Give the diameter of %(label)s.") % {"label": label or index},
                    )
                continue  # a follow-up target left empty: not measured
            if not label:
                self.add_error(_name(index, "label"), _("Give the lesion a label, e.g. T1."))
                continue
            if not organ:
                self.add_error(
                    _name(index, "organ"), _("Give the organ of %(label)s.") % {"label": label}
                )
                continue
            if label in seen:
                message = _("%(label)s is already in row %(row)s.")
                params = {"label": label, "row": seen[label]}
                self.add_error(_name(index, "label"), message % params)
                continue
            seen[label] = index
            self.lesions.append(TargetLesion(label=label, organ=organ, diameter_mm=diameter))
        return cleaned

    def add_service_error(self, error: ValidationError) -> None:
        """The service's `lesions` errors (each naming its lesion) go above the grid."""
        if hasattr(error, "error_dict") and "lesions" in error.error_dict:
            for item in error.error_dict["lesions"]:
                self.lesion_errors.extend(item.messages)
            rest = {k: v for k, v in error.error_dict.items() if k != "lesions"}
            if not rest:
                return
            error = ValidationError(rest)
        super().add_service_error(error)

    def has_grid_errors(self) -> bool:
        return bool(self.lesion_errors) or any(name.startswith("lesion_") for name in self.errors)


class _ImagingChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: ImagingStudy) -> str:
        response = obj.get_response_display() or "—"
        return f"{obj.performed_on:%Y-%m-%d} · {obj.get_modality_display()} · {response}"


class _PanelChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: LabPanel) -> str:
        return f"{obj.sampled_on:%Y-%m-%d} · {obj.get_context_display()}"


class ResponseEvaluationForm(CRFForm):
    """A response evaluation: its date, imaging, lab panel and the clinical decision."""

    fieldsets = [
        (_("Evaluation"), ["evaluated_on", "imaging", "lab_panel"]),
        (_("Decision"), ["decision", "notes"]),
    ]

    class Meta:
        model = ResponseEvaluation
        fields = ["evaluated_on", "imaging", "lab_panel", "decision", "notes"]
        field_classes = {"imaging": _ImagingChoice, "lab_panel": _PanelChoice}
        widgets = {
            "decision": forms.RadioSelect,
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, choices: dict, **kwargs):
        """`choices`: {"imaging": queryset, "lab_panel": queryset} of the patient."""
        super().__init__(*args, **kwargs)
        self.fields["imaging"].queryset = choices["imaging"]
        self.fields["lab_panel"].queryset = choices["lab_panel"]
        # The service explains a missing imaging study better than "This field is required."
        self.fields["imaging"].required = False
        self.fields["imaging"].empty_label = _("— choose the follow-up study —")
        self.fields["imaging"].help_text = _(
            "The patient's follow-up studies (not the RECIST baseline), newest first."
        )
        self.fields["lab_panel"].empty_label = _("— none —")
        self.fields["lab_panel"].help_text = _("The panel taken for this evaluation (CA19-9).")
