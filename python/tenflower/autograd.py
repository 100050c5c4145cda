"""Autograd: grad mode context managers, tenflower.autograd.grad, anomaly mode."""
import functools

from . import _C

__all__ = ["grad", "backward", "no_grad", "enable_grad", "set_grad_enabled", "detect_anomaly",
           "set_detect_anomaly"]


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of outputs with respect to inputs (a tuple), without touching ``.grad``."""
    return _C._autograd_grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                             allow_unused)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    if isinstance(tensors, _C.Tensor):
        tensors = [tensors]
        grad_tensors = [grad_tensors] if grad_tensors is not None else None
    for k, t in enumerate(tensors):
        g = grad_tensors[k] if grad_tensors is not None else None
        t.backward(g, retain_graph=retain_graph, create_graph=create_graph)


class _GradMode:
    """Base of the grad-mode context managers; also usable as decorators."""

    _mode = True

    def __enter__(self):
        self._prev = _C._set_grad_enabled(self._mode)
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager (and decorator) that turns recording off in this thread."""
    _mode = False


class enable_grad(_GradMode):
    """Context manager (and decorator) that turns recording on in this thread."""
    _mode = True


class set_grad_enabled(_GradMode):
    """set_grad_enabled(mode): sets grad mode now; as a context manager, restores it on exit."""

    def __init__(self, mode):
        self._mode = bool(mode)
        self._prev = _C._set_grad_enabled(self._mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False


class detect_anomaly:
    """Anomaly mode: ops producing NaN/Inf from finite inputs raise, naming the op."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = _C._set_anomaly_enabled(self.check_nan)
        return self

    def __exit__(self, *exc):
        _C._set_anomaly_enabled(self._prev)
        return False


def set_detect_anomaly(mode):
    return _C._set_anomaly_enabled(mode)


from . import _autograd_functional as functional  # noqa: E402,F401
