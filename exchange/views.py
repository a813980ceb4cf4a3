"""The upload page of the retrospective import, for data managers."""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from exchange import selectors, services
from exchange.forms import ImportUploadForm
from trial.scoping import sites_for


@login_required
@permission_required("exchange.run_import", raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    """Upload a file, run the import (or a dry run) and show its report; the earlier runs
    below. A refused upload (size, type) shows the form's errors with status 400."""
    sites = sites_for(request.user)
    result = None
    status = 200
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES, sites=sites)
        if form.is_valid():
            result = services.import_file(
                content=form.content,
                file_name=form.cleaned_data["file"].name,
                user=request.user,
                site=form.cleaned_data["site"],
                dry_run=form.cleaned_data["dry_run"],
                update=form.cleaned_data["update"],
                waiver_reference=form.cleaned_data["waiver_reference"].strip(),
            )
        else:
            status = 400
    else:
        form = ImportUploadForm(sites=sites)
    context = {
        "form": form,
        "result": result,
        "runs": selectors.import_run_list(user=request.user),
    }
    return render(request, "exchange/import.html", context, status=status)
