"""Patient-page panels of imaging, evaluations and the treatment timeline (registered on import)."""
