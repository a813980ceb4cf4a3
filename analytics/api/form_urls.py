"""/api/v1/forms/: the read endpoints of every CRF (analytics.api.forms), one path per form
of the export registry, included by config/api.py."""

from django.urls import path

from analytics.api import forms
from analytics.exports.forms import FORMS

app_name = "forms_api"

urlpatterns = [
    path("", forms.FormList.as_view(), name="list"),
    *(path(f"{form.name}/", forms.form_view(form), name=form.name) for form in FORMS),
    path("<str:form>/", forms.UnknownForm.as_view(), name="unknown"),
]
