"""tenflower.utils: checkpointing (tenflower.utils.checkpoint) and data loading
(tenflower.utils.data)."""
from . import checkpoint  # noqa: F401
from . import data  # noqa: F401
