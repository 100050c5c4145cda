#!/usr/bin/env bash
# Runs every fuzz target in BUILD_DIR for SECONDS each, starting from its seed corpus
# (tests/fuzz/corpus/<target>/); new inputs go to a scratch copy, crashes to
# tests/fuzz/crashes/. Exits non-zero if any target finds a crash.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
status=0
mkdir -p "$here/crashes"
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work="$here/corpus-work/$name"
  mkdir -p "$work" "$here/corpus/$name"
  cp -n "$here/corpus/$name"/* "$work"/ 2>/dev/null || true
  echo "== $name: ${secs}s"
  if ! ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$here/crashes/$name-" "$work" > "$work.log" 2>&1; then
    echo "   CRASH: see $work.log and tests/fuzz/crashes/"
    tail -30 "$work.log"
    status=1
  else
    grep -E "^#[0-9]+ *DONE" "$work.log" | tail -1 || true
  fi
done
exit $status
