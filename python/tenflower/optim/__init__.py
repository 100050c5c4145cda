"""tenflower.optim (placeholder)."""
