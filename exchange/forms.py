"""The upload form of the retrospective import."""

import io
import zipfile

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from exchange import parsing
from trial.models import Site

ALLOWED_EXTENSIONS = (".csv", ".xlsx")


def max_upload_bytes() -> int:
    """The largest import file accepted (IMPORT_MAX_BYTES, 10 MB unless configured)."""
    return settings.IMPORT_MAX_BYTES


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".removesuffix(".0")


def _help_text() -> str:
    return _("At most %(limit)s MB; the template is docs/import-template.csv.") % {
        "limit": _megabytes(max_upload_bytes())
    }


def check_upload_content(content: bytes, file_name: str) -> str:
    """ "csv" or "xlsx" when the bytes are what the name says; else a ValidationError saying
    what is wrong. The extension alone is not trusted: an XLSX workbook is a ZIP archive (it
    starts with "PK"), and a CSV must be UTF-8 text (a BOM allowed) without NUL bytes."""
    name = file_name.lower()
    if not name.endswith(ALLOWED_EXTENSIONS):
        raise forms.ValidationError(
            _(
                "Upload a .csv or .xlsx file, not %(name)s "
                "(the template is docs/import-template.csv)."
            )
            % {"name": file_name}
        )
    if name.endswith(".xlsx"):
        if not content.startswith(parsing.XLSX_SIGNATURE) or not zipfile.is_zipfile(
            io.BytesIO(content)
        ):
            raise forms.ValidationError(
                _("The file is named .xlsx but is not an Excel (XLSX) workbook.")
            )
        return "xlsx"
    if content.startswith(parsing.XLSX_SIGNATURE):
        raise forms.ValidationError(
            _(
                "The file is named .csv but is not a text file: it looks like an Excel "
                "workbook (name it .xlsx, or save it as CSV)."
            )
        )
    if b"\x00" in content:
        raise forms.ValidationError(_("The file is named .csv but is not a text file."))
    try:
        content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError(
            _("The file is not UTF-8 text: save the CSV as UTF-8.")
        ) from None
    return "csv"


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File (.csv or .xlsx)"),
        help_text=gettext_lazy("The template is docs/import-template.csv."),
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
        self.fields["file"].help_text = _help_text()

    def clean_file(self):
        """The size first (before the file is read into memory), then the type from the name
        checked against the content."""
        upload = self.cleaned_data["file"]
        limit = max_upload_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is %(size)s MB: at most %(limit)s MB.")
                % {"size": f"{upload.size / 1024 / 1024:.1f}", "limit": _megabytes(limit)}
            )
        content = upload.read()
        check_upload_content(content, upload.name)
        self.content = content
        return upload
