"""tenflower: a C11 deep-learning framework, with a PyTorch-like Python API.

The tensor type, the ops and autograd live in the C extension ``tenflower._C`` (written
against the CPython C API); this package adds the pure-Python parts (context managers,
nn, optim, serialization). See docs/python.md.
"""
from . import _C
from ._C import (  # noqa: F401
    Tensor, dtype, __version__,
    float32, float64, float16, bfloat16, int8, uint8, int32, int64,
    tensor, zeros, ones, empty, full, arange, linspace, eye, rand, randn, randint,
    manual_seed, initial_seed, get_rng_state, set_rng_state, is_grad_enabled,
    from_numpy, from_dlpack, set_num_threads, get_num_threads, memory_stats, promote_types,
    reshape, flatten, split, chunk, einsum,
    TenflowerError, ShapeError, DTypeError, DeviceError, InvalidArgumentError, TensorIndexError,
    OutOfMemoryError, TensorIOError, FormatError, UnsupportedError, StateError, InternalError,
)

# PyTorch's aliases
float = float32
double = float64
half = float16
long = int64
int = int32
bool = _C.bool
short = None  # int16 does not exist in tenflower
del short


class device:
    """A device: tenflower builds here have the CPU only."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        if ":" in type:
            type, _, idx = type.partition(":")
            index = __builtins__["int"](idx) if isinstance(__builtins__, dict) else __import__("builtins").int(idx)
        self.type = type
        self.index = index

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


_C._register(device_cpu=device("cpu"))


class _GradFn:
    """The autograd node that produced a tensor (``tensor.grad_fn``)."""

    __slots__ = ("_name", "op")

    def __init__(self, name, op):
        self._name = name
        self.op = op

    def name(self):
        return self._name

    def __repr__(self):
        return f"<{self._name}>"


Tensor._register_grad_fn_factory(_GradFn)

# the registry's ops with PyTorch names are attributes of _C (generated from the binding
# table in python/src/ops.c); export them all
for _name, _op, _spec, _is_func, _is_method in _C._bindings():
    if _is_func:
        globals()[_name] = getattr(_C, _name)
del _name, _op, _spec, _is_func, _is_method

from ._tensor import _install as _install_tensor  # noqa: E402
_install_tensor()
del _install_tensor

from .autograd import no_grad, enable_grad, set_grad_enabled  # noqa: E402,F401
from . import autograd  # noqa: E402,F401
from . import nn  # noqa: E402,F401
from . import optim  # noqa: E402,F401
from . import amp  # noqa: E402,F401
from . import utils  # noqa: E402,F401
from . import data  # noqa: E402,F401
from .serialization import save, load  # noqa: E402,F401


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


def _like(fn):
    def like(input, *, dtype=None, requires_grad=False, **kw):
        return fn(input.shape, dtype=dtype if dtype is not None else input.dtype,
                  requires_grad=requires_grad)
    like.__name__ = fn.__name__ + "_like"
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input, fill_value, *, dtype=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype if dtype is not None else input.dtype,
                requires_grad=requires_grad)


def pad(input, pad, mode="constant", value=0.0):
    return _C._pad(input, pad, mode, value)
