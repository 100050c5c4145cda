"""Autograd from Python against torch: backward, grad, no_grad, grad_fn, hooks of state."""
import numpy as np
import pytest
import torch

import tenflower as tf


def pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return tf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def close(x, r, tol=1e-4):
    np.testing.assert_allclose(x.detach().numpy(), r.detach().numpy(), rtol=tol, atol=tol)


def test_backward_matches_torch():
    x, rx = pair((3, 4))
    w, rw = pair((4, 2), 1)
    y = (x @ w).tanh().sum(1).pow(2).mean()
    ry = (rx @ rw).tanh().sum(1).pow(2).mean()
    y.backward()
    ry.backward()
    close(y, ry)
    close(x.grad, rx.grad)
    close(w.grad, rw.grad)
    assert x.is_leaf and not y.is_leaf and y.grad_fn.name() == "MeanBackward0"
    assert x.grad_fn is None and y.requires_grad


def test_grad_accumulates_and_resets():
    x, _ = pair((3,))
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0, 5.0]
    x.grad = None
    assert x.grad is None
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_autograd_grad_and_create_graph():
    x, rx = pair((5,))
    y = (x ** 3).sum()
    (g,) = tf.autograd.grad(y, x, create_graph=True)
    ry = (rx ** 3).sum()
    (rg,) = torch.autograd.grad(ry, rx, create_graph=True)
    close(g, rg)
    (gg,) = tf.autograd.grad(g.sum(), x)
    (rgg,) = torch.autograd.grad(rg.sum(), rx)
    close(gg, rgg)
    assert x.grad is None
    z, _ = pair((2,))
    with pytest.raises(ValueError):
        tf.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = tf.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx.tolist() == [2.0] * 5


def test_backward_with_gradient_argument():
    x, rx = pair((2, 3))
    g = np.arange(6, dtype=np.float32).reshape(2, 3)
    (x.sigmoid() * 3).backward(tf.tensor(g))
    (rx.sigmoid() * 3).backward(torch.tensor(g))
    close(x.grad, rx.grad)
    with pytest.raises(tf.StateError):
        tf.ones(2).sum().backward()


def test_no_grad_enable_grad():
    x, _ = pair((2,))
    with tf.no_grad():
        y = x * 2
        assert not tf.is_grad_enabled()
        with tf.enable_grad():
            z = x * 2
    assert tf.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and z.requires_grad

    @tf.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with tf.set_grad_enabled(False):
        assert not (x * 1).requires_grad
    assert tf.is_grad_enabled()


def test_detach_and_requires_grad_():
    x, _ = pair((2,))
    d = x.detach()
    assert not d.requires_grad and d.data_ptr() == x.data_ptr()
    t = tf.ones(3)
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad = False
    assert not t.requires_grad
    with pytest.raises(tf.StateError):
        (x * 2).requires_grad_(False)


def test_indexing_is_differentiable():
    x, rx = pair((4, 5))
    idx = [3, 0, 3]
    y = x[1:, ::2].sum() + x[tf.tensor(idx)].pow(2).sum() + x[x > 0].sum()
    ry = rx[1:, ::2].sum() + rx[torch.tensor(idx)].pow(2).sum() + rx[rx > 0].sum()
    y.backward()
    ry.backward()
    close(x.grad, rx.grad)
