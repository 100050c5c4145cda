"""Tensor methods written in Python (installed on the C type by _install)."""
from . import _C


def reshape(self, *shape):
    return _C.reshape(self, *shape)


def flatten(self, start_dim=0, end_dim=-1):
    return _C.flatten(self, start_dim, end_dim)


def split(self, split_size, dim=0):
    return _C.split(self, split_size, dim)


def chunk(self, chunks, dim=0):
    return _C.chunk(self, chunks, dim)


def where(self, condition, other):
    return _C.where(condition, self, other)


def view_as(self, other):
    return self.view(other.shape)


def expand_as(self, other):
    return self.expand(other.shape)


def reshape_as(self, other):
    return _C.reshape(self, other.shape)


def type_as(self, other):
    return self.to(other.dtype)


def new_zeros(self, *size, dtype=None, requires_grad=False):
    return _C.zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)


def new_ones(self, *size, dtype=None, requires_grad=False):
    return _C.ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)


def new_full(self, size, fill_value, dtype=None, requires_grad=False):
    return _C.full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)


def new_tensor(self, data, dtype=None, requires_grad=False):
    return _C.tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)


def __rpow__(self, other):
    return _C.pow(other, self)


def __format__(self, spec):
    if self.ndim == 0 and spec:
        return format(self.item(), spec)
    return str(self)


def __reversed__(self):
    return self.flip(0)


def __deepcopy__(self, memo):
    out = self.detach().clone()
    if self.requires_grad:
        out.requires_grad_(True)
    return out


def __copy__(self):
    return self


_METHODS = [reshape, flatten, split, chunk, where, view_as, expand_as, reshape_as, type_as,
            new_zeros, new_ones, new_full, new_tensor, __rpow__, __format__,
            __reversed__, __deepcopy__, __copy__]


def _install():
    for fn in _METHODS:
        _C._add_method(fn.__name__, fn)
