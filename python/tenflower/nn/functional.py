"""tenflower.nn.functional: PyTorch's torch.nn.functional names and signatures over the C
library's functionals (include/tenflower/nn_functional_*.h), which run with the GIL released."""
from .. import _C

_Tensor = _C.Tensor


def _pair(v):
    if isinstance(v, (tuple, list)):
        return tuple(v)
    return (v, v)


def _single(v):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"expected one value, got {v!r}")
        return v[0]
    return v


# ---- linear, convolution, pooling --------------------------------------------------------------

def linear(input, weight, bias=None):
    # matmul with the transposed view + add, as the C library's Linear (the GEMM reads the
    # weight transposed; addmm would be slower in backward)
    out = _C.matmul(input, weight.t())
    return out if bias is None else out + bias


def bilinear(input1, input2, weight, bias=None):
    out = _C.einsum("...i,oij,...j->...o", input1, weight, input2)
    return out if bias is None else out + bias


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            return _C._conv1d_same(input, weight, bias, _single(dilation), groups)
        else:
            raise ValueError(f"Invalid padding string {padding!r}")
    return _C._conv1d(input, weight, bias, _single(stride), _single(padding), _single(dilation),
                      groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            return _C._conv2d_same(input, weight, bias, _pair(dilation), groups)
        else:
            raise ValueError(f"Invalid padding string {padding!r}")
    return _C._conv2d(input, weight, bias, _pair(stride), _pair(padding), _pair(dilation), groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _C._conv_transpose1d(input, weight, bias, _single(stride), _single(padding),
                                _single(output_padding), groups, _single(dilation))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _C._conv_transpose2d(input, weight, bias, _pair(stride), _pair(padding),
                                _pair(output_padding), groups, _pair(dilation))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    k = _single(kernel_size)
    s = k if stride is None or stride == [] else _single(stride)
    return _C._max_pool1d(input, k, s, _single(padding), _single(dilation), ceil_mode,
                          return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    k = _pair(kernel_size)
    s = k if stride is None or stride == [] else _pair(stride)
    return _C._max_pool2d(input, k, s, _pair(padding), _pair(dilation), ceil_mode, return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    k = _single(kernel_size)
    s = k if stride is None or stride == [] else _single(stride)
    return _C._avg_pool1d(input, k, s, _single(padding), ceil_mode, count_include_pad)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    k = _pair(kernel_size)
    s = k if stride is None or stride == [] else _pair(stride)
    return _C._avg_pool2d(input, k, s, _pair(padding), ceil_mode, count_include_pad,
                          divisor_override or 0)


def adaptive_avg_pool2d(input, output_size):
    osz = _pair(output_size)
    osz = tuple(input.shape[-2 + i] if v is None else v for i, v in enumerate(osz))
    return _C._adaptive_avg_pool2d(input, osz)


# ---- normalisation, embedding, dropout ------------------------------------------------------

def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _C._layer_norm(input, tuple(normalized_shape), weight, bias, eps)


_EPS = {"float32": 1.1920928955078125e-07, "float64": 2.220446049250313e-16,
        "float16": 0.0009765625, "bfloat16": 0.0078125}


def rms_norm(input, normalized_shape, weight=None, eps=None):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    if eps is None:
        eps = _EPS.get(input.dtype.name, 1.1920928955078125e-07)
    return _C._rms_norm(input, tuple(normalized_shape), weight, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    return _C._group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    return _C._batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    # instance norm = group norm with one channel per group (no running stats)
    return group_norm(input, input.shape[1], weight, bias, eps)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    return _C._embedding(input, weight, padding_idx, max_norm or 0.0, norm_type)


def one_hot(tensor, num_classes=-1):
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1
    classes = _C.arange(num_classes, dtype=tensor.dtype)
    return _C.eq(tensor.unsqueeze(-1), classes).to(_C.int64)


def dropout(input, p=0.5, training=True, inplace=False):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return _C._dropout(input, p, training)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    return _C._sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale or 0.0)


def pad(input, pad, mode="constant", value=None):
    return _C._pad(input, pad, mode, 0.0 if value is None else value)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    n = _C.norm(input, p, dim, True).clamp(eps)
    return input / n


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    n1 = _C.norm(x1, 2, dim).clamp(eps)
    n2 = _C.norm(x2, 2, dim).clamp(eps)
    return (x1 * x2).sum(dim) / (n1 * n2)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    return _C.norm(x1 - x2 + eps, p, -1, keepdim)


# ---- activations ------------------------------------------------------------------------------

def relu(input, inplace=False):
    return _C.relu(input)


def relu6(input, inplace=False):
    return _C.clamp(input, 0.0, 6.0)


def gelu(input, approximate="none"):
    if approximate == "tanh":
        return _C._act("gelu_tanh", input)
    return _C.gelu(input)


def tanh(input):
    return _C.tanh(input)


def sigmoid(input):
    return _C.sigmoid(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _C._act("leaky_relu", input, negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return _C._act("elu", input, alpha)


def selu(input, inplace=False):
    return _C._act("selu", input)


def celu(input, alpha=1.0, inplace=False):
    return _C._act("celu", input, alpha)


def silu(input, inplace=False):
    return _C._act("silu", input)


def mish(input, inplace=False):
    return _C._act("mish", input)


def hardswish(input, inplace=False):
    return _C._act("hardswish", input)


def hardsigmoid(input, inplace=False):
    return _C._act("hardsigmoid", input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _C.clamp(input, min_val, max_val)


def softplus(input, beta=1.0, threshold=20.0):
    return _C._act("softplus", input, beta, threshold)


def softsign(input):
    return _C._act("softsign", input)


def glu(input, dim=-1):
    return _C._act("glu", input, dim)


def logsigmoid(input):
    return -softplus(-input)


def _softmax_dim(ndim):
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return _C.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        dim = _softmax_dim(input.ndim)
    return _C.log_softmax(input, dim, dtype=dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return softmax(-input, dim, dtype=dtype)


# ---- losses -------------------------------------------------------------------------------------

def _red(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    return _C._cross_entropy(input, target, weight, _red(size_average, reduce, reduction),
                             ignore_index, label_smoothing)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    return _C._nll_loss(input, target, weight, _red(size_average, reduce, reduction),
                        ignore_index)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return _C._loss2("mse", input, target, _red(size_average, reduce, reduction))


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    return _C._loss2("l1", input, target, _red(size_average, reduce, reduction))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    return _C._loss2("smooth_l1", input, target, _red(size_average, reduce, reduction), beta)


def huber_loss(input, target, reduction="mean", delta=1.0):
    return _C._loss2("huber", input, target, reduction, delta)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    return _C._loss2("kl_div", input, target, _red(size_average, reduce, reduction),
                     1.0 if log_target else 0.0)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    return _C._bce(input, target, weight, _red(size_average, reduce, reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    return _C._bce_logits(input, target, weight, pos_weight,
                          _red(size_average, reduce, reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    return _C._margin_loss("cosine_embedding", input1, input2, target, margin,
                           _red(size_average, reduce, reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    return _C._margin_loss("margin_ranking", input1, input2, target, margin,
                           _red(size_average, reduce, reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    return _C._triplet(anchor, positive, negative, margin, p, eps, swap,
                       _red(size_average, reduce, reduction))
