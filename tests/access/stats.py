"""The counts of the access-matrix test, reported at the end of the run (conftest.py)."""

from collections import Counter

COUNTS: Counter = Counter()
FAILURES: list[str] = []
