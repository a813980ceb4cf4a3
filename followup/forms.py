"""Forms of the follow-up pages (CRFs with version and reason for change)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from followup.models import Death, FollowUpContact, LostToFollowUp, Recurrence, TreatmentEnd
from trial.forms import CRFForm


class ContactForm(CRFForm):
    fieldsets = [
        (_("Contact"), ["contacted_on", "mode", "reached"]),
        (_("Patient"), ["vital_status", "ecog", "recurrence"]),
        (
            _("Treatment since the last contact"),
            ["subsequent_therapy", "subsequent_therapy_detail"],
        ),
        (_("Notes"), ["notes"]),
    ]

    class Meta:
        model = FollowUpContact
        fields = [
            "contacted_on",
            "mode",
            "reached",
            "vital_status",
            "ecog",
            "recurrence",
            "subsequent_therapy",
            "subsequent_therapy_detail",
            "notes",
        ]
        widgets = {
            "mode": forms.RadioSelect,
            "vital_status": forms.RadioSelect,
            "ecog": forms.RadioSelect,
            "notes": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "recurrence": _("Yes opens the recurrence / progression form after saving."),
            "vital_status": _("Dead opens the death form after saving."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The model's null boolean: unknown / yes / no, as three radio buttons.
        self.fields["recurrence"] = forms.NullBooleanField(
            label=self.fields["recurrence"].label,
            required=False,
            help_text=self.fields["recurrence"].help_text,
            widget=forms.RadioSelect(
                choices=[("", _("Not asked / unknown")), ("True", _("Yes")), ("False", _("No"))]
            ),
        )
        self.fields["ecog"].choices = [("", _("Not assessed")), *self.fields["ecog"].choices[1:]]


class RecurrenceForm(CRFForm):
    fieldsets = [
        (_("Recurrence / progression"), ["detected_on", "kind", "detected_by", "contact"]),
        (
            _("Sites"),
            [
                "site_local",
                "site_liver",
                "site_peritoneum",
                "site_lung",
                "site_distant_nodes",
                "site_other",
                "site_other_detail",
            ],
        ),
        (_("Notes"), ["notes"]),
    ]

    class Meta:
        model = Recurrence
        fields = [
            "detected_on",
            "kind",
            "detected_by",
            "contact",
            "site_local",
            "site_liver",
            "site_peritoneum",
            "site_lung",
            "site_distant_nodes",
            "site_other",
            "site_other_detail",
            "notes",
        ]
        widgets = {
            "kind": forms.RadioSelect,
            "detected_by": forms.RadioSelect,
            "notes": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "kind": _(
                "Recurrence: disease after the resection (ends RFS). Progression: the patient "
                "was not resected before it."
            ),
            "contact": _("The follow-up contact that reported it, if any."),
        }

    def __init__(self, *args, contacts, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["contact"]
        field.queryset = contacts
        field.label_from_instance = lambda c: f"{c.contacted_on:%Y-%m-%d} · {c.get_mode_display()}"


class DeathForm(CRFForm):
    fieldsets = [
        (_("Death"), ["died_on", "source"]),
        (_("Cause"), ["cause", "cause_detail"]),
        (_("Notes"), ["notes"]),
    ]

    class Meta:
        model = Death
        fields = ["died_on", "source", "cause", "cause_detail", "notes"]
        widgets = {
            "cause": forms.RadioSelect,
            "source": forms.RadioSelect,
            "notes": forms.Textarea(attrs={"rows": 2}),
        }


class LostForm(CRFForm):
    fieldsets = [(_("Loss to follow-up"), ["declared_on", "notes"])]

    class Meta:
        model = LostToFollowUp
        fields = ["declared_on", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "declared_on": _(
                "At least three contact attempts that reached nobody, after the last "
                "successful contact, are needed on or before this date."
            )
        }


class TreatmentEndForm(CRFForm):
    fieldsets = [(_("End of treatment"), ["ended_on", "reason", "reason_detail"])]

    class Meta:
        model = TreatmentEnd
        fields = ["ended_on", "reason", "reason_detail"]
        widgets = {"reason": forms.RadioSelect}
