"""Every analytics test starts and ends with an empty cache: the analysis dataset is cached by a
stamp of its tables (analytics.cache), and a database rolled back between tests could, in
principle, give a later test the same stamp for other rows."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()
