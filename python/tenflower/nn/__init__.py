"""tenflower.nn (placeholder until the Module layer lands)."""
