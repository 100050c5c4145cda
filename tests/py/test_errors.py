"""Bad input raises the mapped exception class with the C message; nothing crashes."""
import pytest

import tenflower as tf


def test_exception_hierarchy():
    assert issubclass(tf.ShapeError, ValueError) and issubclass(tf.ShapeError, tf.TenflowerError)
    assert issubclass(tf.DTypeError, TypeError)
    assert issubclass(tf.DeviceError, RuntimeError)
    assert issubclass(tf.FormatError, ValueError)
    assert issubclass(tf.OutOfMemoryError, MemoryError)
    assert issubclass(tf.TensorIndexError, IndexError)
    assert issubclass(tf.UnsupportedError, NotImplementedError)
    assert issubclass(tf.StateError, RuntimeError)


def test_messages_come_from_c():
    with pytest.raises(tf.ShapeError, match=r"matmul.*\[2, 3\].*\[4, 5\]") as e:
        tf.matmul(tf.zeros(2, 3), tf.zeros(4, 5))
    assert e.value.status == "TFW_ESHAPE"
    with pytest.raises(tf.ShapeError, match="broadcast"):
        tf.zeros(2, 3) + tf.zeros(4)
    with pytest.raises(tf.TensorIndexError, match="dim"):
        tf.zeros(2, 3).sum(5)
    with pytest.raises(tf.DTypeError):
        tf.tensor([1, 2]).mean()
    with pytest.raises(tf.DTypeError):
        tf.tensor([1.0]) & tf.tensor([1.0])
    with pytest.raises(tf.ShapeError):
        tf.zeros(6).view(4, 2)
    with pytest.raises(tf.TensorIndexError):
        tf.zeros(3).gather(0, tf.tensor([5]))
    with pytest.raises(tf.DTypeError):
        tf.tensor([1, 2]).requires_grad_()
    with pytest.raises(tf.InvalidArgumentError):
        tf.arange(0, 1, 0)


def test_out_of_memory():
    with pytest.raises(tf.OutOfMemoryError):
        tf.empty(2**40, 2**20)


def test_bad_python_arguments():
    with pytest.raises(TypeError):
        tf.zeros("a")
    with pytest.raises(TypeError):
        tf.tensor(["a"])
    with pytest.raises(ValueError):
        tf.tensor([[1, 2], [3]])
    with pytest.raises(TypeError):
        tf.sum(tf.zeros(2), nonsense=1)
    with pytest.raises(TypeError):
        tf.sum()
    with pytest.raises(TypeError):
        tf.zeros(2) + "x"
    with pytest.raises(TypeError):
        tf.zeros(2, dtype="float128")
    with pytest.raises(ValueError):
        tf.zeros(*([1] * 9))
    assert (tf.zeros(2) == None) is False  # noqa: E711
