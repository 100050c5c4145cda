"""tenflower.amp: autocast (the C library's per-thread autocast policy, include/tenflower/amp.h)
and GradScaler-like loss scaling is in the C library (optim.h)."""
import functools

from . import _C


class autocast:
    """autocast(device_type="cpu", dtype=tenflower.bfloat16, enabled=True): inside the region,
    matmuls and convolutions run in dtype, reductions/softmax/norms/losses in float32.
    Usable as a context manager and a decorator; restores the previous state on exit."""

    def __init__(self, device_type="cpu", dtype=None, enabled=True, cache_enabled=None):
        if device_type not in ("cpu", "cuda"):
            raise ValueError(f"autocast: unknown device_type {device_type!r}")
        self.device_type = device_type
        self.fast_dtype = dtype if dtype is not None else _C.bfloat16
        self.enabled = enabled

    def __enter__(self):
        self._prev = _C._autocast_set(self.enabled, self.fast_dtype)
        return self

    def __exit__(self, *exc):
        _C._autocast_restore(*self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*a, **k)
        return wrapper


def is_autocast_enabled():
    return _C._autocast_get()[0]


def get_autocast_dtype():
    return _C._autocast_get()[1]
