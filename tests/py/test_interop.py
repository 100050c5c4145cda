"""Zero-copy interop: buffer protocol, numpy, DLPack (numpy and torch), lifetimes."""
import gc
import sys

import numpy as np
import pytest
import torch
import torch.utils.dlpack

import tenflower as tf

DTYPES = ["float32", "float64", "float16", "int8", "uint8", "int32", "int64", "bool"]


@pytest.mark.parametrize("dt", DTYPES)
def test_numpy_view_is_zero_copy(dt):
    x = tf.arange(6).to(getattr(tf, dt)).reshape(2, 3)
    a = x.numpy()
    assert a.dtype == np.dtype(dt) and a.shape == (2, 3)
    assert a.ctypes.data == x.data_ptr()
    np.testing.assert_array_equal(a, np.arange(6).astype(dt).reshape(2, 3))
    if dt != "bool":
        x[0, 0] = 5
        assert a[0, 0] == 5  # same memory


def test_numpy_keeps_tensor_alive_and_strided():
    x = tf.arange(12, dtype=tf.float32).reshape(3, 4)
    t = x.T
    a = t.numpy()
    assert a.strides == (4, 16)
    del x, t
    gc.collect()
    np.testing.assert_array_equal(a, np.arange(12, dtype=np.float32).reshape(3, 4).T)
    e = tf.tensor([1.0, 2.0]).expand(3, 2).numpy()
    assert e.strides == (0, 4)
    np.testing.assert_array_equal(e, [[1, 2]] * 3)


def test_numpy_errors():
    with pytest.raises(tf.StateError):
        tf.ones(2, requires_grad=True).numpy()
    with pytest.raises(tf.DTypeError):
        tf.ones(2, dtype=tf.bfloat16).numpy()
    # __array__ converts bfloat16 (a copy) and detaches
    np.testing.assert_array_equal(np.asarray(tf.ones(2, dtype=tf.bfloat16)), [1.0, 1.0])
    a = np.array(tf.tensor([1.5, 2.5]), dtype=np.float64)
    assert a.dtype == np.float64 and a.tolist() == [1.5, 2.5]


def test_from_numpy_zero_copy_and_lifetime():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = tf.from_numpy(a)
    assert x.data_ptr() == a.ctypes.data and x.dtype == tf.float32 and x.shape == (2, 3)
    a[0, 0] = 42
    assert x[0, 0].item() == 42
    before = sys.getrefcount(a)
    y = tf.from_numpy(a)
    assert sys.getrefcount(a) > before  # the tensor holds the array's buffer
    del y
    gc.collect()
    assert sys.getrefcount(a) == before
    b = np.arange(4, dtype=np.int64)
    z = tf.from_numpy(b)
    del b
    gc.collect()
    assert z.tolist() == [0, 1, 2, 3]  # the source died, the data stays valid
    s = tf.from_numpy(np.arange(10, dtype=np.float64)[::3])
    assert s.stride() == (3,) and s.tolist() == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="negative"):
        tf.from_numpy(np.arange(3.0)[::-1])
    with pytest.raises(tf.DTypeError):
        tf.from_numpy(np.arange(3, dtype=np.int16))
    with pytest.raises(tf.DTypeError):
        tf.from_numpy(np.arange(3, dtype=">f4"))


def test_buffer_protocol():
    x = tf.tensor([[1, 2], [3, 4]], dtype=tf.int32)
    m = memoryview(x)
    assert m.format == "i" and m.shape == (2, 2) and m.strides == (8, 4) and not m.readonly
    assert m.tolist() == [[1, 2], [3, 4]]
    m[0, 1] = 9
    assert x[0, 1].item() == 9
    with pytest.raises(BufferError):
        memoryview(tf.ones(2, dtype=tf.bfloat16))
    t = x.T
    assert memoryview(t).strides == (4, 8)
    assert bytes(t) == bytes(t.contiguous())  # strided export, copied by the consumer
    with pytest.raises(BufferError):
        np.frombuffer(t, dtype=np.int32)  # asks for a simple (contiguous) buffer
    assert bytes(tf.tensor([1, 2], dtype=tf.uint8)) == b"\x01\x02"


def test_array_interface():
    x = tf.arange(6, dtype=tf.float64).reshape(2, 3)
    ai = x.__array_interface__
    assert ai["typestr"] == "<f8" and ai["shape"] == (2, 3) and ai["version"] == 3
    assert ai["data"][0] == x.data_ptr()


# numpy 1.24 and torch 1.13 predate DLPack's kDLBool: bool goes tenflower <-> tenflower only
NOBOOL = [d for d in DTYPES if d != "bool"]


def test_dlpack_bool_between_tenflower_tensors():
    x = tf.tensor([True, False, True])
    y = tf.from_dlpack(x.__dlpack__())
    assert y.dtype == tf.bool and y.tolist() == [True, False, True] and y.data_ptr() == x.data_ptr()


@pytest.mark.parametrize("dt", NOBOOL)
def test_dlpack_numpy_round_trip(dt):
    a = (np.arange(12) % 3).astype(dt).reshape(3, 4)
    x = tf.from_dlpack(a)
    assert x.data_ptr() == a.ctypes.data
    assert x.tolist() == a.tolist()
    b = np.from_dlpack(x)
    assert b.ctypes.data == a.ctypes.data
    del a, x
    gc.collect()
    assert b.tolist() == ((np.arange(12) % 3).astype(dt).reshape(3, 4)).tolist()


@pytest.mark.parametrize("dt", NOBOOL + ["bfloat16"])
def test_dlpack_torch_round_trip(dt):
    src = torch.arange(12).reshape(3, 4).to(getattr(torch, dt))
    x = tf.from_dlpack(src)
    assert x.data_ptr() == src.data_ptr() and x.dtype.name == dt
    assert x.float().tolist() == src.float().tolist()
    back = torch.from_dlpack(x)
    assert back.data_ptr() == src.data_ptr() and back.dtype == src.dtype
    cap = torch.utils.dlpack.to_dlpack(src[:, 1:3])
    y = tf.from_dlpack(cap)
    assert y.stride() == (4, 1) and y.float().tolist() == src[:, 1:3].float().tolist()
    with pytest.raises(BufferError):
        tf.from_dlpack(cap)  # consumed already
    # tenflower -> torch via a capsule, source deleted
    z = tf.arange(5).to(getattr(tf, dt))
    ref = z.float().tolist()
    t = torch.utils.dlpack.from_dlpack(z.__dlpack__())
    del z
    gc.collect()
    assert t.float().tolist() == ref


def test_dlpack_capsule_rules():
    x = tf.arange(4, dtype=tf.float32)
    cap = x.__dlpack__()
    assert "dltensor" in repr(cap)
    del cap  # unconsumed: the destructor calls the deleter (no leak, no crash)
    vcap = x.__dlpack__(max_version=(1, 0))
    assert '"dltensor_versioned"' in repr(vcap)
    y = tf.from_dlpack(vcap)
    assert '"used_dltensor_versioned"' in repr(vcap)
    assert y.data_ptr() == x.data_ptr()
    assert x.__dlpack_device__() == (1, 0)
    c = tf.from_dlpack(x.__dlpack__(max_version=(1, 0), copy=True))
    assert c.data_ptr() != x.data_ptr() and c.tolist() == x.tolist()
    with pytest.raises(BufferError):
        x.__dlpack__(dl_device=(2, 0))
    with pytest.raises(ValueError):
        x.__dlpack__(stream=0)
    with pytest.raises(tf.StateError):
        tf.ones(2, requires_grad=True).__dlpack__()
    with pytest.raises(BufferError):
        tf.from_dlpack(x, device="cuda")
    with pytest.raises(TypeError):
        tf.from_dlpack(object())


def test_dlpack_lifetime_many():
    live = tf.memory_stats()["live_tensors"]
    for _ in range(200):
        a = np.ones((4, 4), dtype=np.float32)
        x = tf.from_dlpack(a)
        cap = x.__dlpack__()
        t = torch.utils.dlpack.from_dlpack(cap)
        del a, x
        t.add_(1)
        del t, cap
    gc.collect()
    assert tf.memory_stats()["live_tensors"] == live
