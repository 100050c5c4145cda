"""Reference counts and memory do not grow over 10,000 iterations of common calls."""
import gc
import sys
import tracemalloc

import numpy as np

import tenflower as tf


def run(fn, n=10000):
    for _ in range(200):  # warm caches
        fn()
    gc.collect()
    live = tf.memory_stats()["live_tensors"]
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(n):
        fn()
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    assert tf.memory_stats()["live_tensors"] == live
    assert grown < 64 * 1024, f"Python memory grew by {grown} bytes"


def test_ops_and_indexing_do_not_leak():
    x = tf.ones(4, 4)
    m = x > 0
    ix = tf.tensor([0, 2])
    rc = [sys.getrefcount(o) for o in (x, m, ix)]

    def body():
        y = x + 1.5
        y = y.sum(1, keepdim=True)
        z = x[1:, ::2]
        z = x[ix]
        z = x[m]
        x[0, 0] = 1.0
        x[ix] = 1.0
        _ = y.tolist(), z.shape, x.dtype, repr(z)
        _ = x.max(1)
        try:
            x @ tf.ones(3)
        except tf.ShapeError:
            pass

    run(body)
    assert [sys.getrefcount(o) for o in (x, m, ix)] == rc


def test_interop_and_autograd_do_not_leak():
    a = np.ones((3, 3), dtype=np.float32)
    rc = sys.getrefcount(a)

    def body():
        t = tf.from_numpy(a)
        _ = t.numpy()
        _ = tf.from_dlpack(a)
        _ = np.from_dlpack(t)
        w = tf.ones(3, requires_grad=True)
        (w * t).sum().backward()
        _ = w.grad

    run(body, n=5000)
    assert sys.getrefcount(a) == rc


def test_nn_optim_checkpoint_loops_do_not_leak():
    """Module forward/backward, optimizer + scheduler steps, state_dict, checkpointing (the
    Python callable held by the graph node is released with it), jvp tangents."""
    import tenflower.nn as nn
    from tenflower.utils.checkpoint import checkpoint
    m = nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.LayerNorm(4), nn.Linear(4, 2))
    opt = tf.optim.AdamW(m.parameters(), lr=1e-3)
    sched = tf.optim.lr_scheduler.CosineAnnealingLR(opt, 100000)
    x = tf.ones(3, 4)

    def fn(a):
        return (a * 2).tanh()

    def body():
        opt.zero_grad()
        y = m(x).sum() + checkpoint(fn, m(x)).sum()
        y.backward()
        opt.step()
        sched.step()
        m.state_dict()
        tf.autograd.functional.jvp(fn, x, x)

    rc = sys.getrefcount(fn)
    run(body, 2000)
    assert sys.getrefcount(fn) == rc
