/* Helpers shared by the data-format tests: temp dirs, Python (numpy) as the truth (whole-file
 * reads and writes are th_read_file / th_write_file in harness.h). */
#ifndef TFW_TEST_FORMATS_UTIL_H
#define TFW_TEST_FORMATS_UTIL_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FMT_TESTDATA "/work/shared/testdata/formats"

static inline void fu_tmpdir(char *dir, size_t cap) {
  snprintf(dir, cap, "/tmp/tfw_fmt_XXXXXX");
  cr_assert(mkdtemp(dir) != NULL, "mkdtemp failed");
}
static inline void fu_rmdir(const char *dir) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {}
}
/* Runs python code (with sys.argv[1] = dir) in /usr/bin/python3; fails the test on error. */
static inline void fu_python(const char *dir, const char *code) {
  char path[300], cmd[900];
  snprintf(path, sizeof path, "%s/gen.py", dir);
  th_write_file(path, code, strlen(code));
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s > %s/py.log 2>&1", path, dir, dir);
  int rc = system(cmd);
  if (rc != 0) {
    snprintf(cmd, sizeof cmd, "cat %s/py.log >&2", dir);
    if (system(cmd)) {}
  }
  cr_assert_eq(rc, 0, "python script failed (exit %d)", rc);
}
/* Reads n little-endian f64 written by python into a malloc'd array (n from the file size). */
static inline double *fu_read_f64(const char *path, size_t *n) {
  size_t bytes;
  uint8_t *p = th_read_file(path, &bytes);
  *n = bytes / 8;
  double *d = malloc(bytes + 8);
  memcpy(d, p, bytes);
  free(p);
  return d;
}
/* The bytes of a text/ragged record as a C string (malloc'd). */
static inline char *fu_str(const tfw_tensor *t) {
  cr_assert_eq(tfw_tensor_dtype(t), TFW_DTYPE_U8);
  cr_assert_eq(tfw_tensor_ndim(t), 1);
  int64_t n = tfw_tensor_shape(t)[0];
  char *s = malloc((size_t)n + 1);
  const uint8_t *p = tfw_tensor_data(t);
  int64_t st = tfw_tensor_strides(t)[0];
  for (int64_t i = 0; i < n; i++) s[i] = (char)p[i * st];
  s[n] = 0;
  return s;
}
static inline void fu_expect_str(const tfw_tensor *t, const char *want, const char *what) {
  char *s = fu_str(t);
  cr_expect_str_eq(s, want, "%s: got '%s', want '%s'", what, s, want);
  free(s);
}

#endif
