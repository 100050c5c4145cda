"""save/load on safetensors (checked by parsing the file with json + numpy), autocast,
checkpointing, autograd.functional against torch.autograd.functional, the data API (IDX files
parsed independently with numpy, the C loader)."""
import gzip
import json
import os
import struct

import numpy as np
import pytest
import torch

import tenflower as tf
import tenflower.nn as nn
from tenflower.utils.checkpoint import checkpoint, checkpoint_sequential


def arr(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    dt = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "U8": np.uint8}
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out, meta


def test_save_load_safetensors(tmp_path):
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    sd = m.state_dict()
    p = tmp_path / "m.safetensors"
    tf.save(sd, p, metadata={"format": "pt", "epoch": "3"})
    ref, meta = read_safetensors(p)
    assert meta == {"format": "pt", "epoch": "3"}
    assert set(ref) == set(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(ref[k], v.numpy())
    back, meta2 = tf.load(p, with_metadata=True)
    assert meta2 == meta
    m2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    m2.load_state_dict(back)
    for k, v in m2.state_dict().items():
        assert v.tolist() == sd[k].tolist()
    with pytest.raises(TypeError):
        tf.save([tf.ones(1)], p)
    with pytest.raises(tf.TensorIOError):
        tf.load(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(tf.FormatError):
        tf.load(tmp_path / "bad.safetensors")


def test_autocast():
    a, b = tf.randn(4, 3), tf.randn(3, 2)
    assert not tf.amp.is_autocast_enabled()
    with tf.amp.autocast(dtype=tf.bfloat16):
        assert tf.amp.is_autocast_enabled()
        y = a @ b
        s = y.sum()
        with tf.amp.autocast(enabled=False):
            assert (a @ b).dtype == tf.float32
    assert y.dtype == tf.bfloat16 and s.dtype == tf.float32
    assert not tf.amp.is_autocast_enabled()
    ref = (torch.tensor(a.numpy()).bfloat16() @ torch.tensor(b.numpy()).bfloat16()).float()
    np.testing.assert_allclose(y.float().numpy(), ref.numpy(), rtol=2e-2, atol=2e-2)

    @tf.amp.autocast(dtype=tf.float16)
    def f(x):
        return x @ b
    assert f(a).dtype == tf.float16
    with pytest.raises(tf.InvalidArgumentError):
        with tf.amp.autocast(dtype=tf.float64):
            pass


def test_checkpoint_gradients_identical():
    lin = nn.Linear(6, 6)
    drop = nn.Dropout(0.3)

    def block(x):
        return drop(lin(x).tanh()) * 2

    x = tf.tensor(arr((5, 6)), requires_grad=True)
    state = tf.get_rng_state()
    y = block(x)
    y.sum().backward()
    gx, gw = x.grad.tolist(), lin.weight.grad.tolist()
    x.grad = None
    lin.zero_grad()
    tf.set_rng_state(state)
    y2 = checkpoint(block, x, params=list(lin.parameters()))
    assert y2.tolist() == y.tolist()
    y2.sum().backward()
    assert x.grad.tolist() == gx and lin.weight.grad.tolist() == gw
    # a closure over parameters that are not declared: refused, naming the problem
    with pytest.raises(tf.InvalidArgumentError, match="not among the inputs"):
        checkpoint(block, x).sum().backward()
    # a Module: its parameters are inputs automatically
    seq = nn.Sequential(nn.Linear(6, 3), nn.GELU())
    seq(x).sum().backward()
    g0 = seq[0].weight.grad.tolist()
    seq.zero_grad()
    checkpoint(seq, x).sum().backward()
    assert seq[0].weight.grad.tolist() == g0

    def two(a, b):
        return a * b, a + b
    a = tf.tensor(arr((3,)), requires_grad=True)
    b = tf.tensor(arr((3,), 1), requires_grad=True)
    p, s = checkpoint(two, a, b)
    (p.sum() + s.sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), b.detach().numpy() + 1, rtol=1e-6)
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    xi = tf.tensor(arr((2, 4)), requires_grad=True)
    out = checkpoint_sequential(seq, 2, xi)
    out.sum().backward()
    assert seq[0].weight.grad is not None
    np.testing.assert_allclose(out.detach().numpy(), seq(xi).detach().numpy(), rtol=1e-6)
    with pytest.raises(tf.InvalidArgumentError, match="raised ZeroDivisionError"):
        checkpoint(lambda t: t * (1 / 0), a)


def test_autograd_functional_vs_torch():
    TAF = torch.autograd.functional
    x, v = arr((4,)), arr((4,), 1)
    f = lambda t: (t.sin() * t).exp()[:3] * 2  # noqa: E731
    fs = lambda t: (t ** 3).sum() + (t[0] * t[1])  # noqa: E731
    for ours, theirs, fn, vv in [
        (tf.autograd.functional.jvp, TAF.jvp, f, v),
        (tf.autograd.functional.vjp, TAF.vjp, f, v[:3]),
        (tf.autograd.functional.hvp, TAF.hvp, fs, v),
        (tf.autograd.functional.vhp, TAF.vhp, fs, v),
    ]:
        o, g = ours(fn, tf.tensor(x), tf.tensor(vv))
        ro, rg = theirs(fn, torch.tensor(x), torch.tensor(vv))
        np.testing.assert_allclose(o.numpy(), ro.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g.numpy(), rg.numpy(), rtol=1e-5, atol=1e-6)
    J = tf.autograd.functional.jacobian(f, tf.tensor(x))
    np.testing.assert_allclose(J.numpy(), TAF.jacobian(f, torch.tensor(x)).numpy(), rtol=1e-5,
                               atol=1e-6)
    H = tf.autograd.functional.hessian(fs, tf.tensor(x))
    np.testing.assert_allclose(H.numpy(), TAF.hessian(fs, torch.tensor(x)).numpy(), rtol=1e-5,
                               atol=1e-6)
    # two inputs
    o, (ga, gb) = tf.autograd.functional.vjp(lambda a, b: a * b, (tf.ones(2), tf.full((2,), 3.0)),
                                             tf.ones(2))
    assert ga.tolist() == [3.0, 3.0] and gb.tolist() == [1.0, 1.0]


def write_idx(path, a):
    code = {np.uint8: 0x08}[a.dtype.type]
    head = struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(head + a.tobytes())


def test_idx_mnist_and_loader(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (50,), dtype=np.uint8)
    for split, n in (("train", 50), ("t10k", 20)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", imgs[:n])
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels[:n])
    t = tf.data.idx_read(tmp_path / "train-images-idx3-ubyte")
    assert t.dtype == tf.uint8 and t.numpy().tolist() == imgs.tolist()
    ds = tf.data.MNIST(tmp_path, train=False)
    assert len(ds) == 20 and ds.targets.tolist() == labels[:20].tolist()
    x, y = ds.tensors()
    ref = (imgs[:20].astype(np.float32) / 255 - np.float32(0.1307)) / np.float32(0.3081)
    np.testing.assert_allclose(x.numpy()[:, 0], ref, rtol=1e-6)
    dl = tf.data.DataLoader(tf.data.TensorDataset(x, y), batch_size=6, shuffle=True, seed=1)
    assert len(dl) == 4
    for _ in range(2):  # two epochs: each a permutation of all rows
        seen = []
        for bx, by in dl:
            assert bx.shape[1:] == (1, 28, 28) and bx.shape[0] == by.shape[0]
            seen += by.tolist()
        assert sorted(seen) == sorted(labels[:20].tolist())
    (tmp_path / "junk").write_bytes(b"\x07\x00\x08\x01" + b"\x00" * 8)
    with pytest.raises(tf.FormatError):
        tf.data.idx_read(tmp_path / "junk")
    with pytest.raises(tf.TensorIOError):
        tf.data.mnist_load(tmp_path / "nowhere")


def test_mnist_example_runs(tmp_path):
    """examples/mnist.py end to end on a tiny IDX set (2 epochs, StepLR, save)."""
    import subprocess
    import sys
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, (128,), dtype=np.uint8)
    imgs = (labels[:, None, None] * 25 + rng.integers(0, 20, (128, 28, 28))).astype(np.uint8)
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", imgs)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", labels)
    ex = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mnist.py")
    r = subprocess.run([sys.executable, ex, "--epochs", "2", "--batch-size", "32",
                        "--test-batch-size", "64", "--data-dir", str(tmp_path), "--save-model",
                        "--log-interval", "2"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(
                           os.path.dirname(os.path.abspath(tf.__file__)))))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Test set: Average loss") == 2
    assert "Train Epoch: 2 [64/128 (50%)]" in r.stdout
    sd = tf.load(tmp_path / "mnist_cnn.safetensors")
    assert tuple(sd["fc1.weight"].shape) == (128, 9216)
