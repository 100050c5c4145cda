#!/usr/bin/env python3
"""Issue 7's speed lines for the Python package, side by side with PyTorch (same threads):

  py_import          wall time of `python3 -c "import tenflower"` vs `import torch`
                     (min of N fresh interpreters);               target ratio <= 0.1
  py_add_overhead_10k  10,000 `a + b` on tiny tensors ([4] f32) from Python, tenflower vs
                     torch (min of 5 repeats, each in its own subprocess); target ratio <= 0.5
  py_mnist_cnn_step  the MNIST example CNN, batch 64, training mode: forward + nll_loss +
                     backward + zero_grad from Python vs bench_autograd's mnist_cnn_fwd_bwd (the
                     same step from C);                           target ratio <= 1.1

Usage: python_speed.py --build BUILD [--threads N] [--python PY] [--no-torch]
Prints one JSON line per case. bench/run.py runs it for the "python" cases."""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

ADD = r"""
import sys, time
lib = sys.argv[1]; threads = int(sys.argv[2])
if lib == "torch":
    import torch as m
    m.set_num_threads(threads)
else:
    import tenflower as m
    m.set_num_threads(threads)
a, b = m.ones(4), m.ones(4)
for _ in range(1000):
    a + b
best = 1e9
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(10000):
        a + b
    best = min(best, time.perf_counter() - t0)
print(best * 1e3)
"""

STEP = r"""
import sys, time
import tenflower as tf
import tenflower.nn as nn
import tenflower.nn.functional as F
tf.set_num_threads(int(sys.argv[1]))
min_time = float(sys.argv[2])
tf.manual_seed(11)
net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(1), nn.Linear(9216, 128),
                    nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
net.train()
x = tf.randn(64, 1, 28, 28)
t = tf.randint(0, 10, (64,))
def step():
    F.nll_loss(F.log_softmax(net(x), 1), t).backward()
    net.zero_grad(set_to_none=True)
step(); step()
t0 = time.perf_counter(); step(); est = time.perf_counter() - t0
reps = max(5, int(min_time / max(est, 1e-7)) + 1)
ts = []
for _ in range(reps):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
ts.sort()
print(ts[0] * 1e3, ts[len(ts) // 2] * 1e3, reps)
"""


def env_for(build, threads):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(build, "python")
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TFW_NUM_THREADS"):
        env[k] = str(threads)
    return env


def import_time(py, module, env, n):
    best = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([py, "-c", "import " + module], env=env, check=True)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def run_py(py, code, args, env):
    out = subprocess.run([py, "-c", code] + [str(a) for a in args], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return [float(v) for v in out.split()]


def rows(build, threads, py, no_torch=False, min_time=0.3, n_import=5):
    env = env_for(build, threads)
    out = []
    ours = import_time(py, "tenflower", env, n_import)
    ref = None if no_torch else import_time(py, "torch", env, n_import)
    out.append({"case": "py_import", "ours_ms": ours, "ref_ms": ref, "target_ratio": 0.1})
    ours = run_py(py, ADD, ["tenflower", threads], env)[0]
    ref = None if no_torch else run_py(py, ADD, ["torch", threads], env)[0]
    out.append({"case": "py_add_overhead_10k", "ours_ms": ours, "ref_ms": ref,
                "target_ratio": 0.5, "per_op_us": ours * 1e3 / 10000,
                "ref_per_op_us": ref * 1e3 / 10000 if ref else None})
    pmin, pmed, reps = run_py(py, STEP, [threads, min_time], env)
    c = subprocess.run([os.path.join(build, "bench_autograd"), "--threads", str(threads),
                        "--min-time", str(min_time), "--only", "mnist_cnn_fwd_bwd"], env=env,
                       stdout=subprocess.PIPE, text=True)
    cm = None
    for line in c.stdout.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("case") == "mnist_cnn_fwd_bwd" and "ours_ms" in d:
            cm = d["ours_ms"]
    out.append({"case": "py_mnist_cnn_step", "ours_ms": pmin, "ours_median_ms": pmed,
                "ref_ms": cm, "reference": "the same step from C (bench_autograd)",
                "target_ratio": 1.1})
    for r in out:
        r["kind"] = "python"
        r["threads"] = threads
        r["ratio"] = r["ours_ms"] / r["ref_ms"] if r.get("ref_ms") else None
        r["meets_target"] = None if r["ratio"] is None else r["ratio"] <= r["target_ratio"]
        r["target"] = "ratio <= %g" % r["target_ratio"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    for r in rows(os.path.abspath(a.build), a.threads, a.python, a.no_torch, a.min_time):
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    sys.exit(main())
