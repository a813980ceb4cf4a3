"""Patient-page panels of the treatments app (registered on import)."""
