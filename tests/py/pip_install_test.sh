#!/usr/bin/env bash
# pip install --no-build-isolation . into a fresh venv (--system-site-packages, for numpy),
# offline, then import the installed package from outside the source tree and run a few ops.
# Usage: pip_install_test.sh SOURCE_DIR PYTHON [CMAKE_BUILD_DIR]
# With CMAKE_BUILD_DIR the extension comes from that configured build tree (fast); without
# it, setup.py configures and builds the library from scratch (slow).
set -euo pipefail
src="$1"; py="$2"; reuse="${3:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$src"/. "$work/src"
rm -rf "$work/src/build" "$work/src/.git"
"$py" -m venv --system-site-packages "$work/venv"
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONPATH  # the installed package, not a build tree (the sanitizer env sets one)
if [ -n "$reuse" ]; then export TFW_CMAKE_BUILD_DIR="$reuse"; fi
export TFW_BUILD_JOBS="${TFW_BUILD_JOBS:-2}"
"$work/venv/bin/python" -m pip install -q --no-build-isolation "$work/src"
cd "$work"
"$work/venv/bin/python" - <<'PY'
import os, tenflower as tf
assert "venv" in tf.__file__, tf.__file__
x = tf.arange(6, dtype=tf.float32).reshape(2, 3)
assert (x @ x.T).tolist() == [[5.0, 14.0], [14.0, 50.0]]
import numpy as np
assert np.asarray(x).sum() == 15
print("pip install OK:", tf.__version__, os.path.dirname(tf.__file__))
PY
