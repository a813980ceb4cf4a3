"""Registers the assessments sections of the patient page (labs; imaging, evaluations and the
treatment timeline)."""

from assessments import panels_imaging, panels_labs  # noqa: F401 - each registers its panels
