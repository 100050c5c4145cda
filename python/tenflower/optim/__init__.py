"""tenflower.optim: PyTorch-style optimizers over the C library's fused optimizers
(include/tenflower/optim.h), with param groups as dicts, and optim.lr_scheduler."""
from .optimizer import (  # noqa: F401
    Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad, AdaBelief, Lion, Adadelta,
)
from . import lr_scheduler  # noqa: F401
