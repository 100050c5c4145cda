"""nn.Parameter: a Tensor subclass that modules register automatically."""
from .. import _C


class Parameter(_C.Tensor):
    """Parameter(data=None, requires_grad=True): shares data's storage (detached), as a leaf."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = _C.empty(0)
        p = _C.Tensor.__new__(cls, data)
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (Parameter, (self.detach().clone(), self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(self.detach().clone(), self.requires_grad)
        memo[id(self)] = out
        return out


def _as_parameter(t):
    """A Parameter over the very same C tensor as t (for parameters owned by C modules)."""
    return _C._wrap_as(Parameter, t)
