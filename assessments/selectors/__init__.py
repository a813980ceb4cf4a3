"""Reads of the assessments app: `labs` and `imaging`."""
