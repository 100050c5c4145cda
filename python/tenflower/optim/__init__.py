"""tenflower.optim: not bound yet (docs/python.md, "Not done yet")."""
