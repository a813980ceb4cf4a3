"""Small request helpers shared by the apps' views."""

from django.http import HttpRequest


def is_htmx(request: HttpRequest) -> bool:
    """True when htmx sent the request (it sets the HX-Request header)."""
    return request.headers.get("HX-Request") == "true"
