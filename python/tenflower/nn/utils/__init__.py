"""tenflower.nn.utils: gradient clipping (the C library's clip_grad_norm_ / clip_grad_value_),
parameters_to_vector."""
from ... import _C

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]


def _params(parameters):
    if isinstance(parameters, _C.Tensor):
        return [parameters]
    return list(parameters)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scales all gradients together so that their norm_type-norm is at most max_norm;
    returns the total norm before clipping (a 0-d tensor, as PyTorch)."""
    total = _C._clip_grad_norm(_params(parameters), float(max_norm), float(norm_type),
                               error_if_nonfinite)
    return _C.tensor(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    _C._clip_grad_value(_params(parameters), float(clip_value))


def parameters_to_vector(parameters):
    return _C.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    prev = _C._set_grad_enabled(False)
    try:
        k = 0
        for p in parameters:
            n = p.numel()
            p.copy_(vec[k:k + n].view(p.shape))
            k += n
    finally:
        _C._set_grad_enabled(prev)
