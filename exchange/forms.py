"""The upload form of the retrospective import."""

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from exchange import parsing
from trial.models import Site

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File (.csv or .xlsx)"),
        help_text=gettext_lazy("At most 5 MB; the template is docs/import-template.csv."),
    )
    site = forms.ModelChoiceField(
        label=gettext_lazy("Site"),
        queryset=Site.objects.none(),
        required=False,
        empty_label=gettext_lazy("From each subject code"),
    )
    waiver_reference = forms.CharField(
        label=gettext_lazy("Ethics reference of the consent waiver"),
        max_length=64,
        required=False,
        help_text=gettext_lazy("For the rows without a waiver_reference column value."),
    )
    dry_run = forms.BooleanField(
        label=gettext_lazy("Dry run: check the file and write nothing"),
        required=False,
        initial=True,
    )
    update = forms.BooleanField(
        label=gettext_lazy("Update patients imported before"), required=False
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is %(size)s MB: at most 5 MB.")
                % {"size": f"{upload.size / 1024 / 1024:.1f}"}
            )
        content = upload.read()
        try:
            parsing.kind_of(content, upload.name)
        except parsing.FileUnreadable as error:
            raise forms.ValidationError(str(error)) from error
        self.content = content
        return upload
