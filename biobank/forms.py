"""Forms of the biobank pages: recording a specimen (a CRF) and the custody actions."""

import re

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from biobank.models import Box, Specimen
from trial.forms import CRFForm


class DateTimeInput(forms.DateTimeInput):
    """A native date-and-time picker (YYYY-MM-DDTHH:MM)."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class SpecimenForm(CRFForm):
    """A specimen taken at the patient's index operation."""

    confirm_weight = forms.BooleanField(
        label=gettext_lazy("Weight confirmed"),
        required=False,
        help_text=gettext_lazy("Tick to save a weight outside the usual 10–2000 mg."),
    )

    class Meta:
        model = Specimen
        fields = [
            "operation",
            "kind",
            "origin",
            "weight_mg",
            "collected_at",
            "warm_ischaemia_min",
            "cold_ischaemia_min",
            "preservation",
            "notes",
        ]
        widgets = {
            "kind": forms.RadioSelect,
            "origin": forms.RadioSelect,
            "preservation": forms.RadioSelect,
            "collected_at": DateTimeInput,
        }

    fieldsets = [
        (gettext_lazy("Specimen"), ["operation", "kind", "origin", "weight_mg", "confirm_weight"]),
        (
            gettext_lazy("Collection"),
            ["collected_at", "warm_ischaemia_min", "cold_ischaemia_min", "preservation"],
        ),
        ("", ["notes"]),
    ]

    def __init__(self, *args, operations=None, **kwargs):
        super().__init__(*args, **kwargs)
        if operations is not None:
            self.fields["operation"].queryset = operations
            self.fields["operation"].empty_label = None
        self.fields["collected_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        self.fields["weight_mg"].widget.attrs.setdefault("step", "0.1")


POSITION_RE = re.compile(r"^\s*([A-Za-z])\s*-?\s*(\d{1,2})\s*$")


def parse_position(text: str) -> tuple[int, int] | None:
    """ "B7" (row letter, column number) → (2, 7); None when it is not of that form."""
    match = POSITION_RE.match(text or "")
    if not match:
        return None
    return ord(match.group(1).upper()) - ord("A") + 1, int(match.group(2))


class _EventForm(forms.Form):
    at = forms.DateTimeField(
        label=gettext_lazy("When"),
        widget=DateTimeInput,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=gettext_lazy("Leave empty for now."),
        required=False,
    )
    notes = forms.CharField(label=gettext_lazy("Notes"), max_length=500, required=False)

    def add_service_error(self, error) -> None:
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                for item in errors:
                    for message in item.messages:
                        self.add_error(field if field in self.fields else None, message)
        else:
            for message in error.messages:
                self.add_error(None, message)


class PlaceForm(_EventForm):
    """Store or move: a box of the specimen's site and a position such as B7."""

    box = forms.ModelChoiceField(label=gettext_lazy("Box"), queryset=Box.objects.none())
    position = forms.CharField(
        label=gettext_lazy("Position"),
        max_length=4,
        help_text=gettext_lazy("Row letter and column number, e.g. B7."),
    )

    field_order = ["box", "position", "at", "notes"]

    def __init__(self, *args, boxes=None, **kwargs):
        super().__init__(*args, **kwargs)
        if boxes is not None:
            self.fields["box"].queryset = boxes
        self.fields["box"].label_from_instance = lambda box: (
            f"{box.rack.freezer.name} / {box.rack.name} / {box.name}"
        )

    def clean_position(self) -> tuple[int, int]:
        parsed = parse_position(self.cleaned_data["position"])
        if parsed is None:
            raise forms.ValidationError(
                _("Give the position as a row letter and a column number, e.g. B7 (entered: %s).")
                % self.cleaned_data["position"]
            )
        return parsed


class AliquotForm(_EventForm):
    count = forms.IntegerField(label=gettext_lazy("Number of aliquots"), min_value=1, max_value=20)
    weight_mg_each = forms.DecimalField(
        label=gettext_lazy("Weight of each (mg)"), max_digits=7, decimal_places=1
    )
    preservation = forms.ChoiceField(
        label=gettext_lazy("Preservation"),
        choices=[("", gettext_lazy("Same as the parent")), *Specimen.Preservation.choices],
        required=False,
    )

    field_order = ["count", "weight_mg_each", "preservation", "at", "notes"]


class ThawForm(_EventForm):
    pass


class ShipForm(_EventForm):
    destination = forms.CharField(label=gettext_lazy("Destination laboratory"), max_length=200)

    field_order = ["destination", "at", "notes"]


class DestroyForm(_EventForm):
    reason = forms.CharField(
        label=gettext_lazy("Reason for the destruction"),
        max_length=500,
        help_text=gettext_lazy("e.g. biobank consent withdrawn; kept in the chain of custody."),
    )

    field_order = ["reason", "at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["notes"]


class SearchForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Specimen or subject code"), required=False, max_length=32
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Type"),
        required=False,
        choices=[("", gettext_lazy("Any")), *Specimen.Kind.choices],
    )
    state = forms.ChoiceField(
        label=gettext_lazy("Custody status"),
        required=False,
        choices=[("", gettext_lazy("Any")), *Specimen.State.choices],
    )


def default_now() -> str:
    return timezone.localtime().strftime("%Y-%m-%dT%H:%M")
