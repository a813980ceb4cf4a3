"""Patient-page panels of the surgery app (registered on import)."""
