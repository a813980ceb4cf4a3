from django.http import HttpRequest

from trial.models import Role


def study(request: HttpRequest) -> dict:
    """The user's role names for the navigation (groups are prefetched once per request)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": []}
    labels = dict(Role.choices)
    names = sorted(g.name for g in user.groups.all())
    return {"user_roles": [labels.get(name, name) for name in names]}
