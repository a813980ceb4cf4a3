"""Forms of the lifecycle pages: source-data verification, signature, lock and unlock.

They only parse what the browser sent; the rules (drafts, locks, versions, the password) are
the services' (`trial.lifecycle`), whose errors land on these forms' fields.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


class ServiceErrorsMixin:
    def add_service_error(self, error: ValidationError) -> None:
        """Put a service's ValidationError on the field it names, or on the whole form."""
        by_field = error.error_dict if hasattr(error, "error_dict") else {None: [error]}
        for name, errors in by_field.items():
            target = name if name in self.fields else None
            for item in errors:
                for message in item.messages:
                    self.add_error(target, message)


class VerifyForm(ServiceErrorsMixin, forms.Form):
    """Verify the whole form (button "verify_whole") or the ticked fields."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    fields = forms.MultipleChoiceField(
        label=_("Fields verified against the source"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fields"].choices = choices


class SignForm(ServiceErrorsMixin, forms.Form):
    """Re-enter the password to sign (21 CFR 11.200: the signature's two components)."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Re-enter your password to sign."),
    )


class ReasonForm(ServiceErrorsMixin, forms.Form):
    """A lock or unlock: the reason is kept in the audit trail."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the audit trail."),
    )
