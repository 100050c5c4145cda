"""Tensor basics: creation, properties, printing, operators, indexing against torch."""
import math

import numpy as np
import pytest
import torch

import tenflower as tf


def tt(x):
    """tenflower tensor -> torch tensor (through numpy, a copy)."""
    return torch.from_numpy(np.array(x.detach().numpy()))


def same(a, b, atol=1e-6, rtol=1e-5):
    """a tenflower tensor equals a torch tensor in shape, dtype name and values."""
    assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
    assert a.dtype.name == str(b.dtype).replace("torch.", ""), (a.dtype, b.dtype)
    np.testing.assert_allclose(np.asarray(a.detach().float().numpy() if a.dtype.name == "bfloat16" else a.detach().numpy(), dtype=np.float64),
                               b.detach().double().numpy(), atol=atol, rtol=rtol, equal_nan=True)


def test_creation_matches_torch():
    same(tf.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 4]]))
    same(tf.tensor([1.5, 2]), torch.tensor([1.5, 2]))
    same(tf.tensor([True, False]), torch.tensor([True, False]))
    same(tf.tensor(3.5), torch.tensor(3.5))
    same(tf.tensor([[1, 2]], dtype=tf.float64), torch.tensor([[1, 2]], dtype=torch.float64))
    same(tf.zeros(2, 3), torch.zeros(2, 3))
    same(tf.ones((2, 3), dtype=tf.int32), torch.ones((2, 3), dtype=torch.int32))
    same(tf.full((2, 2), 7), torch.full((2, 2), 7))
    same(tf.full((2, 2), 7.5), torch.full((2, 2), 7.5))
    same(tf.arange(5), torch.arange(5))
    same(tf.arange(1, 2, 0.25), torch.arange(1, 2, 0.25))
    same(tf.arange(10, 0, -3), torch.arange(10, 0, -3))
    same(tf.linspace(0, 1, 5), torch.linspace(0, 1, 5))
    same(tf.eye(3), torch.eye(3))
    same(tf.eye(2, 4, dtype=tf.int64), torch.eye(2, 4, dtype=torch.int64))
    assert tf.empty(2, 0).shape == (2, 0)
    assert tf.tensor([]).shape == (0,) and tf.tensor([]).dtype == tf.float32
    assert tf.tensor([[]]).shape == (1, 0)
    big = 2**62 + 1
    assert tf.tensor([big]).item() == big  # int64 exact, no float round trip


def test_random_seeded_and_ranges():
    tf.manual_seed(5)
    a = tf.rand(1000)
    tf.manual_seed(5)
    b = tf.rand(1000)
    assert a.tolist() == b.tolist()
    assert 0 <= a.min().item() and a.max().item() < 1
    n = tf.randn(20000)
    assert abs(n.mean().item()) < 0.05 and abs(n.std().item() - 1) < 0.05
    r = tf.randint(3, 7, (1000,))
    assert r.dtype == tf.int64 and r.min().item() == 3 and r.max().item() == 6
    r = tf.randint(4, size=(10,))
    assert r.max().item() < 4


def test_properties():
    x = tf.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24
    assert x.stride() == (12, 4, 1) and x.stride(1) == 4
    assert x.transpose(0, 2).stride() == (1, 4, 12)
    assert x.dtype is tf.float32 and x.dtype.itemsize == 4 and x.dtype.is_floating_point
    assert str(x.device) == "cpu" and x.device == tf.device("cpu")
    assert x.is_contiguous() and not x.transpose(0, 1).is_contiguous()
    assert repr(tf.int64) == "tenflower.int64"
    assert len(x) == 2
    with pytest.raises(TypeError):
        len(tf.tensor(1.0))


def test_item_tolist_conversions():
    assert tf.tensor(2.5).item() == 2.5
    assert isinstance(tf.tensor(3).item(), int)
    assert tf.tensor(True).item() is True
    assert tf.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert tf.tensor([[1, 2], [3, 4]]).T.tolist() == [[1, 3], [2, 4]]
    assert tf.tensor([0.5], dtype=tf.float16).tolist() == [0.5]
    assert tf.tensor([0.5], dtype=tf.bfloat16).tolist() == [0.5]
    assert float(tf.tensor([1.5])) == 1.5 and int(tf.tensor(7)) == 7
    assert [1, 2, 3][tf.tensor(1)] == 2  # __index__
    with pytest.raises(ValueError):
        tf.tensor([1, 2]).item()
    with pytest.raises(ValueError):
        bool(tf.tensor([1, 2]))
    assert bool(tf.tensor([0])) is False


def test_repr_like_torch():
    for data in ([1.5, 2.0], [[1, 2], [3, 4]], [True, False], [1e-8, 1.0], [[0.1234567, 100.0]]):
        assert repr(tf.tensor(data)) == repr(torch.tensor(data))
    for dt in ("float64", "int32", "float16"):
        assert repr(tf.tensor([1.0, 2.0], dtype=getattr(tf, dt))) == \
            repr(torch.tensor([1.0, 2.0], dtype=getattr(torch, dt))).replace("torch.", "tenflower.")
    x = tf.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"


OPS = ["__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__pow__",
       "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtypes", [("float32", "float32"), ("int64", "int64"), ("int32", "float64"),
                                    ("float16", "float32"), ("int64", "bool")])
def test_binary_operators_broadcast_promote(op, dtypes):
    rng = np.random.default_rng(0)
    a = rng.integers(1, 5, size=(3, 1, 4)).astype(dtypes[0])
    b = rng.integers(1, 4, size=(2, 4)).astype(dtypes[1])
    if op in ("__floordiv__", "__mod__") and "bool" in dtypes:
        pytest.skip("torch rejects bool divisors")
    ta, tb = tf.tensor(a), tf.tensor(b)
    ra, rb = torch.tensor(a), torch.tensor(b)
    check_like_torch(lambda: getattr(ta, op)(tb), lambda: getattr(ra, op)(rb),
                     atol=1e-2 if "float16" in dtypes else 1e-6)


def check_like_torch(f_tf, f_torch, atol=1e-6):
    """Same result as torch, or an error where torch raises one."""
    try:
        ref = f_torch()
    except RuntimeError:
        with pytest.raises((ValueError, TypeError, RuntimeError)):
            f_tf()
        return
    same(f_tf(), ref, atol=atol)


@pytest.mark.parametrize("scalar", [2, 2.5, True, -3])
@pytest.mark.parametrize("dt", ["float32", "int32", "float16", "bool", "int64"])
def test_python_scalars_promote_like_torch(scalar, dt):
    a = np.array([1, 0, 3]).astype(dt)
    ta, ra = tf.tensor(a), torch.tensor(a)
    for op in ("__add__", "__mul__", "__radd__", "__rmul__", "__sub__", "__rsub__", "__truediv__",
               "__rtruediv__", "__pow__", "__rpow__", "__lt__", "__ge__"):
        check_like_torch(lambda: getattr(ta, op)(scalar), lambda: getattr(ra, op)(scalar), atol=1e-2)


def test_unary_operators():
    a = tf.tensor([[-1.5, 2.0], [0.0, 3.0]])
    assert (-a).tolist() == [[1.5, -2.0], [-0.0, -3.0]]
    assert abs(a).tolist() == [[1.5, 2.0], [0.0, 3.0]]
    assert (+a) is a
    assert (~tf.tensor([True, False])).tolist() == [False, True]
    assert (~tf.tensor([0, 5])).tolist() == [-1, -6]
    assert (tf.tensor([6]) & 3).tolist() == [2]
    assert (tf.tensor([6]) | 1).tolist() == [7]
    assert (tf.tensor([6]) ^ 2).tolist() == [4]
    m = tf.tensor([[1.0, 2.0], [3.0, 4.0]])
    same(m @ m, torch.tensor([[1.0, 2.0], [3.0, 4.0]]) @ torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    same(2 ** tf.tensor([1.0, 3.0]), 2 ** torch.tensor([1.0, 3.0]))


def test_inplace_operators_keep_identity_and_storage():
    x = tf.zeros(2, 3)
    v = x[0]
    ident = id(x)
    x += 1
    x *= tf.tensor([1.0, 2.0, 3.0])
    x -= 0.5
    x /= 2
    assert id(x) == ident
    assert x.tolist() == [[0.25, 0.75, 1.25]] * 2
    assert v.tolist() == [0.25, 0.75, 1.25]  # the view saw the writes
    i = tf.tensor([1, 2])
    i += 1
    assert i.tolist() == [2, 3] and i.dtype == tf.int64
    with pytest.raises(tf.DTypeError, match="can't be cast"):
        i += 0.5
    with pytest.raises(tf.ShapeError):
        small = tf.zeros(3)
        small += tf.zeros(2, 3)
    y = tf.ones(3)
    y.add_(tf.ones(3), alpha=2).mul_(2)
    assert y.tolist() == [6.0, 6.0, 6.0]
    y.clamp_(max=4.0).sqrt_()
    assert y.tolist() == [2.0, 2.0, 2.0]


def _check_index(x_np, key, tkey=None):
    tkey = key if tkey is None else tkey
    x = tf.tensor(x_np)
    got = x[key]
    ref = torch.tensor(x_np)[tkey]
    same(got, ref)


@pytest.mark.parametrize("key", [
    0, -1, (1, 2), slice(None), slice(1, None), slice(None, None, 2), slice(-3, -1),
    (slice(None), 1), (Ellipsis, 1), (None, 0), (0, None, slice(None, None, 3)),
    (slice(1, 3), Ellipsis, None), (Ellipsis,), (slice(10, 20),), (1, slice(None), -1),
    ([0, 2],), ([[0, 1], [1, 0]],), (slice(None), [3, 0, 1]), ([0, 1], [1, 2]),
    ([0, 1], slice(None), [1, 2]), (slice(None), [0, 2], [1, 3]), (Ellipsis, [0, 0]),
    (None, [1, 2]), ([-1, -2],), (slice(None), None, [1]),
])
def test_getitem_matches_torch(key):
    x = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    tkey = key
    if isinstance(key, tuple):
        tkey = tuple(torch.tensor(k) if isinstance(k, list) else k for k in key)
        key = tuple(tf.tensor(k) if isinstance(k, list) else k for k in key)
    _check_index(x, key, tkey)


def test_getitem_bool_masks_and_views():
    x_np = np.arange(12, dtype=np.float32).reshape(3, 4)
    x, r = tf.tensor(x_np), torch.tensor(x_np)
    same(x[x > 5], r[r > 5])
    same(x[tf.tensor([True, False, True])], r[torch.tensor([True, False, True])])
    same(x[:, tf.tensor([True, False, True, True])], r[:, torch.tensor([True, False, True, True])])
    same(x[x > 100], r[r > 100])
    v = x[1:, ::2]
    assert v.stride() == (4, 2)
    v[0, 0] = 100.0
    assert x[1, 0].item() == 100.0  # basic indexing is a view
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError):
        x[0, 0, 0]
    with pytest.raises(IndexError):
        x[tf.tensor([0, 5])]
    with pytest.raises(IndexError):
        x[tf.tensor([True, False])]
    with pytest.raises(ValueError):
        x[::-1]
    with pytest.raises(IndexError):
        x[tf.tensor([0.5])]
    with pytest.raises(IndexError):
        x["a"]


@pytest.mark.parametrize("key,value", [
    ((0,), 5.0), ((slice(None), 1), -1.0), ((Ellipsis, slice(None, None, 2)), 7.0),
    (([0, 2],), 3.0), ((slice(None), [1, 3]), [[1.0], [2.0]]), (([0, 1], [2, 3]), [[9.0], [8.0]]),
    (([0, 1], slice(None), [0, 1]), 4.0), ((1,), [1.0, 2.0, 3.0, 4.0, 5.0]),
])
def test_setitem_matches_torch(key, value):
    x_np = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    x, r = tf.tensor(x_np), torch.tensor(x_np)
    tkey = tuple(torch.tensor(k) if isinstance(k, list) else k for k in key)
    key = tuple(tf.tensor(k) if isinstance(k, list) else k for k in key)
    x[key] = tf.tensor(value) if isinstance(value, list) else value
    r[tkey] = torch.tensor(value) if isinstance(value, list) else value
    same(x, r)


def test_setitem_mask_and_errors():
    x = tf.tensor([[1.0, -2.0], [-3.0, 4.0]])
    x[x < 0] = 0.0
    assert x.tolist() == [[1.0, 0.0], [0.0, 4.0]]
    with pytest.raises(tf.ShapeError):
        x[0] = tf.tensor([1.0, 2.0, 3.0])
    leaf = tf.ones(2, requires_grad=True)
    with pytest.raises(tf.StateError):
        leaf[0] = 3.0
    with tf.no_grad():
        leaf[0] = 3.0
    assert leaf.tolist() == [3.0, 1.0]


def test_iteration_and_contains():
    x = tf.tensor([[1, 2], [3, 4]])
    rows = [r.tolist() for r in x]
    assert rows == [[1, 2], [3, 4]]
    assert 3 in x and 7 not in x


def test_dtype_conversions():
    x = tf.tensor([1.7, -2.2])
    assert x.int().tolist() == [1, -2] and x.long().dtype == tf.int64
    assert x.to(tf.float64).dtype == tf.float64
    assert x.to("cpu") is x
    assert x.double().float().dtype == tf.float32
    assert x.half().dtype == tf.float16 and x.bfloat16().dtype == tf.bfloat16
    with pytest.raises(tf.DeviceError):
        x.to("cuda")
