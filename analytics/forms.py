"""The choices of the analysis pages (GET forms: a page's address is the analysis it shows)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from analytics.dataset import Origin
from analytics.survival import GROUPINGS
from analytics.survival_surgery import DEFAULT_LANDMARKS

ENDPOINTS = {"os": ("os_days", "os_event"), "rfs": ("rfs_days", "rfs_event")}
ENDPOINT_CHOICES = [
    ("os", _("Overall survival (OS)")),
    ("rfs", _("Recurrence-free survival (RFS), resected patients")),
]
ORIGIN_CHOICES = [
    (Origin.ENROLLMENT.value, _("Enrollment")),
    (Origin.DIAGNOSIS.value, _("Diagnosis")),
    (Origin.FIRST_CYCLE.value, _("First chemotherapy cycle")),
]
MAX_LANDMARKS = 4


def group_choices() -> list[tuple[str, str]]:
    return [("", _("No grouping (all patients)"))] + [
        (name, grouping.label) for name, grouping in GROUPINGS.items()
    ]


class SurvivalForm(forms.Form):
    endpoint = forms.ChoiceField(
        label=_("Endpoint"), choices=ENDPOINT_CHOICES, required=False, initial="os"
    )
    group_by = forms.ChoiceField(label=_("Compare by"), choices=group_choices, required=False)
    origin = forms.ChoiceField(
        label=_("Time zero for OS"),
        choices=ORIGIN_CHOICES,
        required=False,
        initial=Origin.ENROLLMENT.value,
        help_text=_("RFS always starts at the operation."),
    )

    def clean_endpoint(self) -> str:
        return self.cleaned_data.get("endpoint") or "os"

    def clean_origin(self) -> str:
        return self.cleaned_data.get("origin") or Origin.ENROLLMENT.value


class SurgeryEffectForm(forms.Form):
    origin = forms.ChoiceField(
        label=_("Time zero"),
        choices=ORIGIN_CHOICES,
        required=False,
        initial=Origin.ENROLLMENT.value,
    )
    landmarks = forms.CharField(
        label=_("Landmark days"),
        required=False,
        initial=",".join(str(day) for day in DEFAULT_LANDMARKS),
        help_text=_("Days after time zero, separated by commas (for example 90,180,270)."),
        max_length=40,
    )

    def clean_origin(self) -> str:
        return self.cleaned_data.get("origin") or Origin.ENROLLMENT.value

    def clean_landmarks(self) -> tuple[int, ...]:
        from analytics.survival import SurvivalError, parse_days

        text = self.cleaned_data.get("landmarks") or ""
        if not text.strip():
            return DEFAULT_LANDMARKS
        try:
            days = parse_days(text, field="landmarks")
        except SurvivalError as error:
            raise forms.ValidationError(error.message) from None
        if len(days) > MAX_LANDMARKS:
            raise forms.ValidationError(
                _("At most %(max)d landmark days at once; %(count)d were given.")
                % {"max": MAX_LANDMARKS, "count": len(days)}
            )
        if 0 in days:
            raise forms.ValidationError(_("A landmark is a day after time zero: 0 is not one."))
        return days


class WaterfallKindForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("recist", _("RECIST")), ("ca19_9", _("CA19-9"))], required=False
    )

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or "recist"
