"""Reads of the analytics app: the analysis dataset of the patients a user may see.

The survival API, the dashboards and the exports enter here, so every one of them is scoped to
the user's sites by the same helper (`trial.scoping`) and built by the same function
(`analytics.dataset.build`). Both reads are cached by a stamp of the data (`analytics.cache`):
asked again while no input table has changed, they cost three small queries instead of a build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from analytics import cache, dataset
from patients.models import Patient
from trial.scoping import scope_to_user_sites, site_ids_for

if TYPE_CHECKING:
    import pandas as pd


def _build(user: AbstractBaseUser | AnonymousUser, origin: dataset.Origin) -> list[dict]:
    patients = scope_to_user_sites(Patient.objects.active(), user)
    return dataset.build(patients=patients, origin=origin)


def analysis_rows(
    *,
    user: AbstractBaseUser | AnonymousUser,
    origin: dataset.Origin | str = dataset.Origin.ENROLLMENT,
) -> list[dict]:
    """The analysis rows (`analytics.dataset.build`) of the enrolled patients at the user's
    sites, ordered by subject code; [] for a user without a site. `origin` is an
    `analytics.dataset.Origin` value ("enrollment", "diagnosis", "first_cycle"); any other
    value raises ValueError. A fixed number of queries, whatever the number of patients."""
    origin = dataset.Origin(origin)
    key = cache.cache_key(site_ids=site_ids_for(user), kind="rows", origin=origin.value)
    return cache.cached(key, lambda: _build(user, origin))


def analysis_frame(
    *,
    user: AbstractBaseUser | AnonymousUser,
    origin: dataset.Origin | str = dataset.Origin.ENROLLMENT,
) -> pd.DataFrame:
    """`analysis_rows` as a pandas DataFrame (one row per patient, the dataset's columns in
    their order, even when there are no rows). Cached as a frame: unpickling one costs half
    of unpickling the rows and a third of building the frame from them."""
    import pandas as pd  # heavy; only the analyses need it

    origin = dataset.Origin(origin)
    key = cache.cache_key(site_ids=site_ids_for(user), kind="frame", origin=origin.value)
    return cache.cached(
        key,
        lambda: pd.DataFrame.from_records(_build(user, origin), columns=dataset.COLUMNS),
    )
