"""tenflower.nn: not bound yet (docs/python.md, "Not done yet"); the registry ops are reachable
through tenflower._C._op."""
