"""End-to-end benchmarks for bench/run.py: whole programs, timed from outside.

mnist_epoch_e2e: one MNIST epoch (data loading, training, evaluation on the 10k test
images) with the demo's recipe, tenflower's examples/mnist.c against bench/mnist_torch.py
(the same network, recipe and evaluation in PyTorch, eval batches of 64 on both sides),
same threads. Reports wall time,
test accuracy and peak RSS of each process (getrusage of the child)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _measure(cmd, env, timeout):
    """Runs cmd in a fresh Python process that reports the child's peak RSS (ru_maxrss of
    RUSAGE_CHILDREN in a process with no other children is exactly that child's)."""
    probe = ("import json,resource,subprocess,sys,time\n"
             "t=time.time();p=subprocess.run(sys.argv[1:],capture_output=True,text=True)\n"
             "w=time.time()-t;r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024.0\n"
             "print(json.dumps({'rc':p.returncode,'wall':w,'rss_mb':r,'out':p.stdout,"
             "'err':p.stderr[-2000:]}))\n")
    try:
        p = subprocess.run(["/usr/bin/python3", "-c", probe] + cmd, env=env, capture_output=True,
                           text=True, timeout=timeout)
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError) as e:
        return None, None, "", "measurement failed: %s" % e
    if r["rc"] != 0:
        tail = r["err"].strip().splitlines()[-1:] if r["err"].strip() else []
        return r["wall"], r["rss_mb"], r["out"], "exit status %d%s" % (
            r["rc"], (": " + tail[0]) if tail else "")
    return r["wall"], r["rss_mb"], r["out"], None


def mnist_data_dir():
    d = os.environ.get("TFW_MNIST_DIR")
    if d:
        return d
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch_mnist.sh")],
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def mnist_epoch(build, threads, py, no_torch=False):
    row = {"case": "mnist_epoch_e2e", "kind": "e2e", "threads": threads,
           "target": "ratio <= 0.5 and accuracy >= torch's and rss_ratio <= 0.3"}
    data = mnist_data_dir()
    if not data:
        row["error"] = "MNIST not available (scripts/fetch_mnist.sh failed; set TFW_MNIST_DIR)"
        return row
    env = dict(os.environ)
    env.update({"TFW_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
                "OPENBLAS_NUM_THREADS": str(threads), "TFW_PROGRESS": "off"})
    run_dir = tempfile.mkdtemp(prefix="tfw_bench_mnist_")
    try:
        wall, rss, out, err = _measure([os.path.join(build, "example_mnist"), "--data", data,
                                        "--epochs", "1", "--run-dir", run_dir], env, 900)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if err:
        row["error"] = "tenflower: " + err
    else:
        m = re.search(r"test accuracy ([0-9.]+)%", out)
        row.update({"ours_ms": 1e3 * wall, "ours_rss_mb": rss,
                    "ours_accuracy": float(m.group(1)) / 100 if m else None})
    if not no_torch:
        wall, rss, out, err = _measure([py, os.path.join(HERE, "mnist_torch.py"), data,
                                        "--epochs", "1", "--threads", str(threads)], env, 900)
        if err:
            row["ref_error"] = "torch: " + err
        else:
            r = json.loads(out.strip().splitlines()[-1])
            row.update({"ref_ms": 1e3 * wall, "ref_rss_mb": rss, "ref_accuracy": r["accuracy"]})
    if row.get("ours_ms") and row.get("ref_ms"):
        row["ratio"] = row["ours_ms"] / row["ref_ms"]
        row["rss_ratio"] = row["ours_rss_mb"] / row["ref_rss_mb"]
        row["meets_target"] = bool(row["ratio"] <= 0.5 and row["rss_ratio"] <= 0.3 and
                                   (row["ours_accuracy"] or 0) >= row["ref_accuracy"])
    else:
        row["ratio"] = None
        row["meets_target"] = False if row.get("error") else None
    return row
