"""The form side of the CRF base: version and reason-for-change fields, fieldsets, errors."""

from functools import cached_property, partial

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from trial.query_selectors import open_queries_by_field


class DateInput(forms.DateInput):
    """A native date picker: keyboard-friendly and unambiguous (YYYY-MM-DD)."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class VoidForm(forms.Form):
    """Void a record entered in error: the row and its history stay, marked void."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    void_reason = forms.CharField(
        label=_("Reason for voiding"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("e.g. entered for the wrong patient; kept in the audit trail."),
    )


class CRFForm(forms.ModelForm):
    """A ModelForm for a clinical record.

    Adds the hidden `version` the form was built from (optimistic locking) and the reason for
    change, which the service requires once the record is complete. `fieldsets` groups the
    fields on the page: a list of (legend, [field names]).
    """

    fieldsets: list[tuple[str, list[str]]] = []

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    change_reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Required when you change a completed form; kept in the audit trail."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["version"] = self.instance.version
        for field in self.fields.values():
            widget = field.widget
            if isinstance(field, forms.DateField) and not isinstance(widget, DateInput):
                field.widget = DateInput(attrs=widget.attrs)
            if isinstance(widget, forms.RadioSelect) and field.required:
                # An unanswered radio group is shown as no choice, not as a "-----" option.
                field.choices = [c for c in field.choices if c[0] not in ("", None)]
            if isinstance(field, forms.DecimalField):
                field.widget.attrs.setdefault("inputmode", "decimal")
        for name, field in self.fields.items():
            # Read by templates/trial/partials/_field.html as `field.field.open_queries`; a
            # callable, so the record's queries are looked up only when a field is rendered.
            field.open_queries = partial(self.field_queries, name)

    @cached_property
    def open_queries(self) -> dict[str, list]:
        """The record's queries not yet closed, by field ("" for the whole form). One query,
        the first time it is read; none for a new record."""
        if not self.instance.pk:
            return {}
        return open_queries_by_field(self.instance)

    def field_queries(self, name: str) -> list:
        """The unresolved queries on field `name` (the marker next to the field)."""
        return self.open_queries.get(name, [])

    def form_queries(self) -> list:
        """The unresolved queries on the whole form, and on fields this form does not show
        (shown at the top of the form by templates/trial/partials/_form_queries.html)."""
        shown = {name for name, field in self.fields.items() if not field.widget.is_hidden}
        return [
            query
            for name, queries in self.open_queries.items()
            if name not in shown
            for query in queries
        ]

    @property
    def asks_reason(self) -> bool:
        return bool(self.instance.pk and self.instance.is_complete)

    def grouped(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The visible fields by fieldset; fields in no fieldset come last."""
        placed: set[str] = set()
        groups = []
        for legend, names in self.fieldsets:
            bound = [self[name] for name in names if name in self.fields]
            placed.update(names)
            groups.append((legend, bound))
        rest = [
            self[name]
            for name in self.fields
            if name not in placed
            and name not in {"version", "change_reason"}
            and not self.fields[name].widget.is_hidden
        ]
        if rest:
            groups.append(("", rest))
        return groups

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.instance.pk and cleaned.get("version") is None:
            # Without the version the form was built from, a stale edit could not be detected.
            self.add_error(None, _("The form is missing its version: reload the page."))
        return cleaned

    def _label(self, field: str) -> str:
        try:
            return str(self._meta.model._meta.get_field(field).verbose_name)
        except Exception:  # noqa: BLE001 - a field of another model: show its name
            return field.replace("_", " ")

    def add_service_error(self, error: ValidationError) -> None:
        """Attach a service's ValidationError to the fields it names, or to the whole form."""
        if hasattr(error, "error_dict"):
            for field, errors in error.error_dict.items():
                target = field if field in self.fields else None
                for item in errors:
                    messages = item.messages
                    if target is None and field != "__all__":
                        messages = [f"{self._label(field)}: {m}" for m in messages]
                    for message in messages:
                        self.add_error(target, message)
        else:
            for message in error.messages:
                self.add_error(None, message)


# --- data queries (trial/views_queries.py) ----------------------------------------------------


class QueryRaiseForm(forms.Form):
    """Raise a query on a field of a record (or on the whole form)."""

    field = forms.ChoiceField(label=_("Field"), required=False)
    text = forms.CharField(
        label=_("Question"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What the site should check or correct, with the values you saw."),
    )

    def __init__(self, *args, fields: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["field"].choices = [("", _("Whole form")), *fields]


class QueryActionForm(forms.Form):
    """One step of a query's thread: answer, close or re-open, with a message."""

    ANSWER, CLOSE, REOPEN = "answer", "close", "reopen"

    action = forms.ChoiceField(
        choices=[(ANSWER, ANSWER), (CLOSE, CLOSE), (REOPEN, REOPEN)], widget=forms.HiddenInput
    )
    text = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class QueryFilterForm(forms.Form):
    """The filters of the query list; every one optional."""

    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(label=_("Raised by"), required=False)
    rule = forms.ChoiceField(label=_("Check"), required=False)
    site = forms.ModelChoiceField(label=_("Site"), queryset=None, required=False)
    age = forms.ChoiceField(label=_("Age"), required=False)
    sort = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, sites, statuses, kinds, rules, ages, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        self.fields["site"].empty_label = _("All my sites")
        self.fields["status"].choices = [("", _("Any status")), *statuses]
        self.fields["kind"].choices = [("", _("Anyone")), *kinds]
        self.fields["rule"].choices = [("", _("Any check")), *rules]
        self.fields["age"].choices = [("", _("Any age")), *ages]
