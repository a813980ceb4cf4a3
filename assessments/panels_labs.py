"""Patient-page panels of the lab results (registered on import)."""
