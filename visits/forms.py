"""Forms of the visits app: the worklist filters and the reason a visit was missed."""

from django import forms
from django.utils.translation import gettext_lazy as _

from trial.models import Site
from visits.models import VisitKind, VisitStatus
from visits.selectors import DEFAULT_ORDER, ORDERS

ORDER_CHOICES = [(key, key) for key in ORDERS] + [(f"-{key}", f"-{key}") for key in ORDERS]


class WorklistFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("All kinds")), *VisitKind.choices]
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("Due and overdue")),
            (VisitStatus.DUE, VisitStatus.DUE.label),
            (VisitStatus.OVERDUE, VisitStatus.OVERDUE.label),
        ],
    )
    site = forms.ModelChoiceField(
        label=_("Site"), required=False, queryset=Site.objects.none(), empty_label=_("All sites")
    )
    order = forms.ChoiceField(required=False, choices=ORDER_CHOICES, widget=forms.HiddenInput)

    def __init__(self, *args, sites=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites if sites is not None else Site.objects.none()

    def criteria(self) -> dict:
        """The valid filters (an invalid one is dropped, not an error: it is a bookmark)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        site = data.get("site")
        return {
            "kind": data.get("kind") or None,
            "status": data.get("status") or None,
            "site": site.pk if site else None,
            "order": data.get("order") or DEFAULT_ORDER,
        }


class VisitCloseForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason the visit was missed"),
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2, "autofocus": True}),
        help_text=_(
            "e.g. the patient did not come and could not be reached; kept in the audit trail."
        ),
    )
