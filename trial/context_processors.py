from django.conf import settings
from django.http import HttpRequest

from trial.models import Role


def study(request: HttpRequest) -> dict:
    """The study code and the user's role names for the navigation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": [], "study_code": settings.STUDY_CODE}
    labels = dict(Role.choices)
    names = sorted(g.name for g in user.groups.all())
    return {
        "user_roles": [labels.get(name, name) for name in names],
        "study_code": settings.STUDY_CODE,
    }
