"""The one place that decides which sites a user sees. Every view and selector scopes through it."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from trial.models import Site, SiteMembership

_CACHE_ATTR = "_plm_site_ids"


def site_ids_for(user: AbstractBaseUser | AnonymousUser) -> frozenset[int]:
    """Ids of the active sites `user` works at (all sites for a superuser), cached on the user."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if not user.is_authenticated or not user.is_active:
        ids: frozenset[int] = frozenset()
    elif user.is_superuser:
        ids = frozenset(Site.objects.filter(is_active=True).values_list("id", flat=True))
    else:
        ids = frozenset(
            SiteMembership.objects.filter(user=user, site__is_active=True).values_list(
                "site_id", flat=True
            )
        )
    setattr(user, _CACHE_ATTR, ids)
    return ids


def forget_site_ids(user: AbstractBaseUser) -> None:
    """Drop the cached site ids (after a membership changes)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def sites_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Site]:
    """The sites `user` works at, ordered by code."""
    return Site.objects.filter(id__in=site_ids_for(user)).order_by("code")


def scope_to_user_sites(
    queryset: QuerySet,
    user: AbstractBaseUser | AnonymousUser,
    *,
    site_field: str = "site",
) -> QuerySet:
    """Filter `queryset` to rows whose `site_field` is one of the user's sites."""
    return queryset.filter(**{f"{site_field}__in": site_ids_for(user)})
