"""The lab panel form: the panel's own fields (a CRF with version and reason for change) and one
grid of every analyte of the catalogue (value, unit, and a confirmation for extreme values).

Tab order goes down the value column: the panel fields first, then every value, then the units
and confirmations, then the notes, the reason and the buttons (`TAB` below).
"""

from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from assessments import analytes
from assessments.analytes import Analyte
from assessments.models import LabPanel, LabResult
from trial.forms import CRFForm

# tabindex bases: a data-entry grid is filled down its value column.
TAB = {"head": 1, "value": 10, "unit": 100, "confirm": 200, "tail": 300}
HEAD_FIELDS = ("sampled_on", "context", "postop_day")


def unit_field(code: str) -> str:
    return f"{code}__unit"


def confirm_field(code: str) -> str:
    return f"{code}__confirm"


@dataclass
class GridRow:
    analyte: Analyte
    value: forms.BoundField
    unit: forms.BoundField | None  # None when the SI unit is the only one accepted
    confirm: forms.BoundField | None  # shown for extreme values only
    reference: str
    errors: list[str]
    saved: object = None  # the saved value (a selectors Cell) after an edit conflict

    @property
    def si_unit(self) -> str:
        return analytes.unit_label(self.analyte.unit)


class LabPanelForm(CRFForm):
    class Meta:
        model = LabPanel
        fields = ["sampled_on", "context", "postop_day", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"postop_day": _("Only for a postoperative panel (day 1, 3, 5, 7, 30 …).")}

    def __init__(self, *args, sex: str, results: dict[str, LabResult] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sex = sex
        self.results = results or {}
        # After an edit conflict, the values saved meanwhile by the other user, by code.
        self.saved_now: dict | None = None
        for index, name in enumerate(HEAD_FIELDS):
            self.fields[name].widget.attrs["tabindex"] = TAB["head"] + index
        self.fields["notes"].widget.attrs["tabindex"] = TAB["tail"]
        self.fields["change_reason"].widget.attrs["tabindex"] = TAB["tail"] + 1
        for index, analyte in enumerate(analytes.ANALYTES):
            self._add_analyte(index, analyte)

    def _add_analyte(self, index: int, analyte: Analyte) -> None:
        code = analyte.code
        self.fields[code] = forms.DecimalField(
            label=analyte.label,
            required=False,
            max_digits=12,
            decimal_places=4,
            widget=forms.TextInput(
                attrs={
                    "inputmode": "decimal",
                    "autocomplete": "off",
                    "class": "lab-value",
                    "tabindex": TAB["value"] + index,
                }
            ),
        )
        self.fields[unit_field(code)] = forms.ChoiceField(
            label=_("Unit of %(analyte)s") % {"analyte": analyte.label},
            required=False,
            choices=[(unit, analytes.unit_label(unit)) for unit in analyte.unit_codes],
            widget=forms.Select(attrs={"tabindex": TAB["unit"] + index, "class": "lab-unit"}),
        )
        self.fields[confirm_field(code)] = forms.BooleanField(
            label=_("confirm"),
            required=False,
            widget=forms.CheckboxInput(attrs={"tabindex": TAB["confirm"] + index}),
        )
        result = self.results.get(code)
        if result is not None and not self.is_bound:
            self.initial[code] = Decimal(analytes.number(result.entered_value))
            self.initial[unit_field(code)] = result.entered_unit
            self.initial[confirm_field(code)] = result.extreme_confirmed

    def clean(self) -> dict:
        cleaned = super().clean()
        # The same per-value checks as the service, so every row's error shows at once even
        # when another field of the form is invalid (the service is not called then).
        for analyte in analytes.ANALYTES:
            value = cleaned.get(analyte.code)
            if value is None:
                continue
            unit = cleaned.get(unit_field(analyte.code)) or None
            si_value = analytes.to_si(analyte, value, unit)
            if analytes.is_impossible(analyte, si_value):
                self.add_error(
                    analyte.code, analytes.impossible_message(analyte, value, unit, si_value)
                )
        return cleaned

    # --- what the service needs -------------------------------------------------------

    def analyte_values(self) -> dict[str, tuple[Decimal, str | None]]:
        """{code: (value as typed, unit as chosen or None for the SI unit)} of the filled rows."""
        data = self.cleaned_data
        return {
            analyte.code: (data[analyte.code], data.get(unit_field(analyte.code)) or None)
            for analyte in analytes.ANALYTES
            if data.get(analyte.code) is not None
        }

    def confirmed_extremes(self) -> frozenset[str]:
        data = self.cleaned_data
        return frozenset(a.code for a in analytes.ANALYTES if data.get(confirm_field(a.code)))

    # --- what the page shows ----------------------------------------------------------

    def _needs_confirm(self, analyte: Analyte) -> bool:
        code = analyte.code
        if not self.is_bound:
            result = self.results.get(code)
            return bool(result and result.extreme_confirmed)
        if self.data.get(self.add_prefix(confirm_field(code))):
            return True
        # From the raw input: a field with an error is no longer in cleaned_data.
        try:
            value = Decimal(str(self.data.get(self.add_prefix(code), "")).strip())
            unit = self.data.get(self.add_prefix(unit_field(code))) or None
            return analytes.is_extreme(analyte, analytes.to_si(analyte, value, unit))
        except (ArithmeticError, KeyError, ValueError):
            return False

    def grid(self) -> list[tuple[str, list[GridRow]]]:
        """The analyte rows by catalogue group, each with its fields and errors."""
        groups = []
        for group, members in analytes.by_group():
            rows = []
            for analyte in members:
                value = self[analyte.code]
                errors = [
                    *self.errors.get(analyte.code, []),
                    *self.errors.get(unit_field(analyte.code), []),
                ]
                if errors:
                    value.field.widget.attrs["aria-invalid"] = "true"
                    value.field.widget.attrs["aria-describedby"] = f"{value.auto_id}_errors"
                rows.append(
                    GridRow(
                        analyte=analyte,
                        value=value,
                        unit=self[unit_field(analyte.code)] if analyte.alternatives else None,
                        confirm=self[confirm_field(analyte.code)]
                        if self._needs_confirm(analyte)
                        else None,
                        reference=analyte.reference_for(self.sex).display(),
                        errors=errors,
                        saved=(self.saved_now or {}).get(analyte.code),
                    )
                )
            groups.append((str(group.label), rows))
        return groups

    def head_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in HEAD_FIELDS]
