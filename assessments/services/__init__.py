"""Writes of the assessments app: `labs` (panels and results) and `imaging` (imaging studies,
RECIST, response evaluations)."""
