"""tenflower.nn.init: in-place initialisers (PyTorch's torch.nn.init), run by the C library
under no-grad."""
import math

from .. import _C

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "trunc_normal_", "orthogonal_"]


def calculate_gain(nonlinearity, param=None):
    return _C._calculate_gain(nonlinearity, 0.01 if param is None else float(param))


def _calculate_fan_in_and_fan_out(tensor):
    return _C._fans(tensor)


def uniform_(tensor, a=0.0, b=1.0):
    _C._init("uniform_", tensor, a, b)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    _C._init("normal_", tensor, mean, std)
    return tensor


def constant_(tensor, val):
    _C._init("constant_", tensor, val)
    return tensor


def zeros_(tensor):
    _C._init("zeros_", tensor)
    return tensor


def ones_(tensor):
    _C._init("ones_", tensor)
    return tensor


def xavier_uniform_(tensor, gain=1.0):
    _C._init("xavier_uniform_", tensor, gain)
    return tensor


def xavier_normal_(tensor, gain=1.0):
    _C._init("xavier_normal_", tensor, gain)
    return tensor


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    _C._init("kaiming_uniform_", tensor, a, 0, 0, 0, nonlinearity, mode == "fan_out")
    return tensor


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    _C._init("kaiming_normal_", tensor, a, 0, 0, 0, nonlinearity, mode == "fan_out")
    return tensor


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    _C._init("trunc_normal_", tensor, mean, std, a, b)
    return tensor


def orthogonal_(tensor, gain=1):
    _C._init("orthogonal_", tensor, gain)
    return tensor


def _default_weight_bias(weight, bias):
    """PyTorch's reset_parameters of Linear / ConvNd: kaiming_uniform(a=sqrt(5)) and
    bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _C._fans(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)
