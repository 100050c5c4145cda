#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a tiny program against it with
# pkg-config (shared and static) and with CMake's find_package, then runs them.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$root/$build" --prefix "$tmp/prefix" > "$tmp/install.log"
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -1)
libdir=$(dirname "$libdir")
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cat > "$tmp/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <tenflower/tenflower.h>
int main(void) {
  int64_t shape[2] = {2, 3};
  tfw_tensor *a = tfw_ones(TFW_DTYPE_F32, 2, shape);
  tfw_tensor *b = tfw_add_scalar(a, 1.5);
  double v = 0;
  int64_t idx[2] = {1, 2};
  if (!b || tfw_tensor_get(b, idx, &v) != TFW_OK || v != 2.5) return 1;
  tfw_release(a);
  tfw_release(b);
  printf("installed tenflower %s ok\n", tfw_version());
  return strcmp(tfw_version(), "") == 0;
}
C
cc "$tmp/app.c" -o "$tmp/app_shared" $(pkg-config --cflags --libs tenflower) -Wl,-rpath,"$libdir"
"$tmp/app_shared"
cc "$tmp/app.c" -o "$tmp/app_static" $(pkg-config --cflags tenflower) "$libdir/libtenflower.a" \
  $(pkg-config --static --libs-only-other --libs-only-l tenflower | sed 's/-ltenflower//')
"$tmp/app_static"
# SONAME
readelf -d "$libdir/libtenflower.so" | grep -q 'SONAME.*libtenflower.so.0' || { echo "bad SONAME"; exit 1; }
# CMake package
mkdir -p "$tmp/cm"
cp "$tmp/app.c" "$tmp/cm/app.c"
cat > "$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(app C)
find_package(tenflower 0.1 CONFIG REQUIRED)
add_executable(app app.c)
target_link_libraries(app PRIVATE tenflower::tenflower)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" > "$tmp/cm.log"
cmake --build "$tmp/cm/build" > "$tmp/cmb.log"
LD_LIBRARY_PATH="$libdir" "$tmp/cm/build/app"
# tfw-report is installed and runs
mkdir -p "$tmp/run"
printf 'step,loss\n1,0.5\n2,0.25\n' > "$tmp/run/log.csv"
"$tmp/prefix/bin/tfw-report" "$tmp/run" > /dev/null
grep -q '<svg' "$tmp/run/report.html" || { echo "tfw-report wrote no plot"; exit 1; }
echo "install: 4 passed, 0 failed"
