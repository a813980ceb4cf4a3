"""The project's URLs plus three for the middleware tests: one without a rule, one without a
name, and one whose view checks nothing (so only the middleware can refuse it)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def plain(request: HttpRequest) -> HttpResponse:
    """Answers every method with 200: no permission check of its own."""
    return HttpResponse("plain")


urlpatterns = [
    *project_urlpatterns,
    path("access-test/guarded/", plain, name="access-test-guarded"),
    path("access-test/unruled/", plain, name="access-test-unruled"),
    path("access-test/unnamed/", plain),
]
