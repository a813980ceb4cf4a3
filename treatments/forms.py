"""Forms of the treatments app. Row rules are in the models, cross-record rules in the services.

The regimen line's "reason for the change of regimen" is a model field named `change_reason`,
which is also the name of the CRF's reason-for-change (audit) field; on the form it is
`switch_reason`, and the line services key the audit reason `reason`. `LineForm` maps both.
"""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext_lazy as _

from treatments import ctcae_terms, regimens
from treatments.models import AdverseEvent, ChemoCycle, CycleDose, Drug, RegimenLine
from trial.forms import CRFForm

_YES_NO = [(True, _("Yes")), (False, _("No"))]
GRADES = [
    (1, _("1 — Mild")),
    (2, _("2 — Moderate")),
    (3, _("3 — Severe")),
    (4, _("4 — Life-threatening")),
    (5, _("5 — Death")),
]


class LineForm(CRFForm):
    """Start or edit a regimen line; `line_number` decides whether a reason for the change of
    regimen is asked (every line after the first)."""

    switch_reason = forms.ChoiceField(
        label=_("Reason for the change of regimen"),
        choices=RegimenLine.ChangeReason.choices,
        widget=forms.RadioSelect,
        required=False,
    )

    class Meta:
        model = RegimenLine
        fields = [
            "regimen",
            "regimen_other",
            "cycle_length_days",
            "started_on",
            "change_reason_detail",
        ]
        widgets = {"regimen": forms.RadioSelect}

    # Error keys of the model and the services → fields of this form.
    _KEYS = {"change_reason": "switch_reason", "reason": "change_reason"}

    def __init__(self, *args, line_number: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.line_number = line_number
        cycle_length = self.fields["cycle_length_days"]
        cycle_length.required = False
        cycle_length.help_text = _(
            "Only for an other regimen: AG is 28 days, (m)FOLFIRINOX and NALIRIFOX 14 days."
        )
        self.fields["regimen_other"].help_text = _("Only for an other regimen, e.g. GnP-S1.")
        if line_number == 1:
            del self.fields["switch_reason"]
            del self.fields["change_reason_detail"]
        else:
            self.fields["switch_reason"].required = True
            self.fields["switch_reason"].error_messages["required"] = _(
                "Give the reason for changing the regimen (line %(number)s)."
            ) % {"number": line_number}
            self.initial.setdefault("switch_reason", self.instance.change_reason)
        self.fieldsets = [
            (
                _("Line %(number)s") % {"number": line_number},
                ["regimen", "regimen_other", "cycle_length_days", "started_on"],
            ),
        ]
        if line_number > 1:
            self.fieldsets.append(
                (_("Why the regimen changes"), ["switch_reason", "change_reason_detail"])
            )

    def clean(self) -> dict:
        cleaned = super().clean()
        spec = regimens.regimen_spec(cleaned.get("regimen", ""))
        if spec:
            cleaned["cycle_length_days"] = spec.cycle_length_days
        self.instance.change_reason = cleaned.get("switch_reason", "") or ""
        if self.line_number == 1:
            self.instance.change_reason_detail = ""
        return cleaned

    def _remap(self, error: ValidationError) -> ValidationError:
        if not hasattr(error, "error_dict"):
            return error
        remapped: dict = {}
        for key, items in error.error_dict.items():
            target = self._KEYS.get(key, key)
            if target != NON_FIELD_ERRORS and target not in self.fields:
                target = NON_FIELD_ERRORS
            remapped.setdefault(target, []).extend(items)
        return ValidationError(remapped)

    def _update_errors(self, errors: ValidationError) -> None:
        super()._update_errors(self._remap(errors))

    def add_service_error(self, error: ValidationError) -> None:
        super().add_service_error(self._remap(error))


class CycleForm(CRFForm):
    fieldsets = [
        (_("Cycle"), ["given_on", "weight_kg", "delay_days", "delay_reason"]),
        # `adjuvant` is derived from the operation date (surgery/refresh.py), never typed.
        (_("Supportive care"), ["gcsf"]),
        (_("Dose reduction"), ["dose_reduction_reason"]),
    ]

    class Meta:
        model = ChemoCycle
        fields = [
            "given_on",
            "weight_kg",
            "delay_days",
            "delay_reason",
            "gcsf",
            "dose_reduction_reason",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["given_on"].widget.attrs["autofocus"] = True
        self.fields["delay_days"].help_text = _(
            "Days later than planned (0 when on time); give the reason below."
        )
        self.fields["dose_reduction_reason"].help_text = _(
            # xgettext:no-python-format
            "Required when a drug is given below 95% of the planned dose for the BSA, or on "
            "fewer days than planned."
        )


class DoseForm(CRFForm):
    """One row of the cycle's dose grid.

    `fixed_drug`: the drug is set by the regimen (or by the saved row) and shown as text.
    `optional`: a row the user may leave empty (other regimens); an empty row is skipped, and
    emptying a saved row removes the drug from the cycle.
    """

    class Meta:
        model = CycleDose
        fields = ["drug", "drug_other", "planned_mg_m2", "given_mg", "planned_days", "given_days"]

    def __init__(self, *args, fixed_drug: bool = False, optional: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_drug = fixed_drug
        self.optional = optional
        del self.fields["change_reason"]
        if fixed_drug:
            self.fields["drug"].disabled = True
            self.fields["drug_other"].disabled = True
        else:
            self.fields["drug"].choices = [("", "—"), *Drug.choices]
            self.fields["drug"].required = not optional
        if optional:
            self.empty_permitted = True
            self.use_required_attribute = False
            for name in ("planned_mg_m2", "given_mg"):
                self.fields[name].required = False
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("aria-label", str(field.label))
            if name in ("planned_days", "given_days"):
                field.widget.attrs.update({"min": 0, "max": 31, "class": "num-short"})
            elif name in ("planned_mg_m2", "given_mg"):
                field.widget.attrs.update({"class": "num"})

    @property
    def drug_label(self) -> str:
        instance = self.instance
        return instance.drug_name if instance.drug else ""

    def is_blank(self) -> bool:
        """An optional row with no doses: skipped (new) or removed from the cycle (saved)."""
        if not self.optional:
            return False
        if not self.instance.pk and not self.has_changed():
            return True
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return data.get("planned_mg_m2") is None and data.get("given_mg") is None

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.optional and not self.is_blank():
            for name in ("drug", "planned_mg_m2", "given_mg"):
                if cleaned.get(name) in (None, "") and name not in self.errors:
                    self.add_error(name, _("This field is required."))
        return cleaned


class AdverseEventForm(CRFForm):
    fieldsets = [
        (_("Event"), ["term", "term_other", "grade", "serious"]),
        (_("Dates"), ["onset_on", "resolved_on"]),
        (_("Relation to treatment"), ["line", "attribution", "action_taken", "outcome"]),
    ]

    term = forms.ChoiceField(label=_("CTCAE v5.0 term"))
    grade = forms.TypedChoiceField(
        label=_("Grade (CTCAE v5.0)"), choices=GRADES, coerce=int, widget=forms.RadioSelect
    )
    serious = forms.TypedChoiceField(
        label=_("Serious adverse event"),
        choices=_YES_NO,
        coerce=lambda v: v in (True, "True"),
        widget=forms.RadioSelect,
        help_text=_("Fatal, life-threatening, hospitalisation or its prolongation, disability."),
    )

    class Meta:
        model = AdverseEvent
        fields = [
            "term",
            "term_other",
            "grade",
            "serious",
            "onset_on",
            "resolved_on",
            "line",
            "attribution",
            "action_taken",
            "outcome",
        ]

    def __init__(self, *args, patient=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["term"].choices = [("", "—"), *ctcae_terms.grouped_choices()]
        self.fields["term"].widget.attrs["autofocus"] = True
        self.fields["term"].help_text = _(
            "Grouped by organ class; type the first letters to jump to a term."
        )
        self.fields["term_other"].help_text = _("Only for “Other, specify”.")
        line = self.fields["line"]
        line.queryset = RegimenLine.objects.active().filter(patient=patient).order_by("line_number")
        line.label_from_instance = lambda obj: _("Line %(number)s · %(regimen)s (from %(on)s)") % {
            "number": obj.line_number,
            "regimen": obj.name,
            "on": obj.started_on.isoformat(),
        }
        line.empty_label = _("— by the onset date —")
        line.help_text = _("Left empty, the line given at the onset date is taken.")
