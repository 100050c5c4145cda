#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t th_rand_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double th_rand_uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * ((double)(th_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0));
}

static double draw(tfw_dtype dt, uint64_t *st, double lo, double hi) {
  double v = th_rand_uniform(st, lo, hi);
  if (dt == TFW_DTYPE_BOOL) return (th_rand_u64(st) & 1) ? 1.0 : 0.0;
  if (tfw_dtype_is_integral(dt)) return floor(v);
  return v;
}

tfw_tensor *th_random(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                      uint64_t seed) {
  tfw_tensor *t = tfw_empty(dt, ndim, shape);
  cr_assert(t != NULL, "th_random: %s", tfw_last_error());
  int64_t n = tfw_tensor_numel(t);
  uint64_t st = seed * 7919 + 17;
  int64_t idx[TFW_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i;
    for (int d = ndim - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    cr_assert(tfw_tensor_set(t, idx, draw(dt, &st, lo, hi)) == TFW_OK);
  }
  return t;
}

tfw_tensor *th_random_strided(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                              uint64_t seed) {
  if (ndim == 0) return th_random(dt, ndim, shape, lo, hi, seed);
  /* big: shape reversed, first (after transpose: last) dim doubled */
  int64_t big[TFW_MAX_DIMS];
  for (int d = 0; d < ndim; d++) big[d] = shape[ndim - 1 - d];
  big[ndim - 1] = shape[0] * 2;
  tfw_tensor *b = th_random(dt, ndim, big, lo, hi, seed + 1000);
  int perm[TFW_MAX_DIMS];
  for (int d = 0; d < ndim; d++) perm[d] = ndim - 1 - d;
  tfw_tensor *p = tfw_permute(b, ndim, perm);
  cr_assert(p != NULL, "th_random_strided permute: %s", tfw_last_error());
  tfw_tensor *s = tfw_slice(p, 0, 0, shape[0] * 2, 2);
  cr_assert(s != NULL, "th_random_strided slice: %s", tfw_last_error());
  tfw_release(b);
  tfw_release(p);
  return s;
}

double *th_values(const tfw_tensor *t) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *shape = tfw_tensor_shape(t);
  int64_t n = tfw_tensor_numel(t);
  double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  int64_t idx[TFW_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i;
    for (int d = nd - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    cr_assert(tfw_tensor_get(t, idx, &v[i]) == TFW_OK);
  }
  return v;
}

double th_eps(tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: return 1e-5;
  case TFW_DTYPE_F64: return 1e-12;
  case TFW_DTYPE_F16: return 2e-3;
  case TFW_DTYPE_BF16: return 1.6e-2;
  default: return 0;
  }
}

void th_expect_close(const tfw_tensor *t, tfw_dtype dt, int ndim, const int64_t *shape,
                     const double *ref, double rtol, double atol, const char *what) {
  cr_assert(t != NULL, "%s: result is NULL: %s", what, tfw_last_error());
  cr_assert_eq(tfw_tensor_dtype(t), dt, "%s: dtype %s, expected %s", what,
               tfw_dtype_name(tfw_tensor_dtype(t)), tfw_dtype_name(dt));
  cr_assert_eq(tfw_tensor_ndim(t), ndim, "%s: ndim %d, expected %d", what, tfw_tensor_ndim(t), ndim);
  for (int d = 0; d < ndim; d++)
    cr_assert_eq(tfw_tensor_shape(t)[d], shape[d], "%s: dim %d is %lld, expected %lld", what, d,
                 (long long)tfw_tensor_shape(t)[d], (long long)shape[d]);
  double *v = th_values(t);
  int64_t n = tfw_tensor_numel(t);
  int bad = 0;
  int64_t first = -1;
  for (int64_t i = 0; i < n; i++) {
    double a = v[i], b = ref[i];
    bool ok;
    if (isnan(b)) ok = isnan(a);
    else if (isinf(b)) ok = a == b;
    else ok = fabs(a - b) <= atol + rtol * fabs(b);
    if (!ok) {
      if (bad < 5) fprintf(stderr, "%s: element %lld: got %.9g, expected %.9g\n", what, (long long)i, a, b);
      if (first < 0) first = i;
      bad++;
    }
  }
  free(v);
  cr_assert(bad == 0, "%s: %d of %lld elements differ (first at %lld)", what, bad, (long long)n,
            (long long)first);
}

void th_expect_error(tfw_status got, tfw_status code, const char *needle, const char *what) {
  cr_assert_eq(got, code, "%s: status %s, expected %s (message: %s)", what, tfw_status_name(got),
               tfw_status_name(code), tfw_last_error());
  if (needle)
    cr_assert(strstr(tfw_last_error(), needle) != NULL, "%s: message '%s' does not contain '%s'",
              what, tfw_last_error(), needle);
}

void th_expect_no_leaks(void) {
  tfw_memory_stats s;
  tfw_memory_stats_get(&s);
  cr_assert_eq(s.live_tensors, 0, "%lld tensors still alive", (long long)s.live_tensors);
  cr_assert_eq(s.live_bytes, 0, "%lld storage bytes still alive", (long long)s.live_bytes);
}

/* ---- PyTorch reference ------------------------------------------------------------------------ */
#include <sys/stat.h>
#include <unistd.h>

bool th_torch_available(void) {
  static int avail = -1;
  if (avail < 0)
    avail = system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") == 0;
  return avail == 1;
}

void th_require_torch(void) {
  if (!th_torch_available()) cr_skip_test("PyTorch (python3-torch) is not installed: run scripts/deps.sh");
}

static const char *TORCH_PRELUDE =
    "import sys, numpy as np, torch\n"
    "import torch.nn.functional as F\n"
    "torch.set_num_threads(1)\n"
    "d = sys.argv[1]\n"
    "x = []\n"
    "for line in open(d + '/in.txt'):\n"
    "    f = line.split()\n"
    "    kind, nd = f[0], int(f[1])\n"
    "    shape = [int(v) for v in f[2:2 + nd]]\n"
    "    a = np.fromfile(d + '/in%d.bin' % len(x), dtype={'f': np.float64, 'i': np.int64, 'b': np.bool_}[kind]).reshape(shape)\n"
    "    t = torch.from_numpy(a.copy())\n"
    "    if kind == 'f': t.requires_grad_(True)\n"
    "    x.append(t)\n"
    "out = None\n";

static const char *TORCH_EPILOGUE =
    "\nwith open(d + '/out.txt', 'w') as m:\n"
    "    for k, o in enumerate(out):\n"
    "        o = torch.as_tensor(o).detach().to(torch.float64).contiguous()\n"
    "        o.numpy().tofile(d + '/out%d.bin' % k)\n"
    "        m.write('%d %s\\n' % (o.dim(), ' '.join(str(s) for s in o.shape)))\n";

void th_torch_run(const char *code, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  char dir[] = "/tmp/tfw_torch_XXXXXX";
  cr_assert(mkdtemp(dir) != NULL, "mkdtemp failed");
  char path[512];
  snprintf(path, sizeof path, "%s/in.txt", dir);
  FILE *meta = fopen(path, "w");
  cr_assert(meta);
  for (int i = 0; i < n_in; i++) {
    tfw_dtype dt = tfw_tensor_dtype(in[i]);
    char kind = tfw_dtype_is_floating(dt) ? 'f' : (dt == TFW_DTYPE_BOOL ? 'b' : 'i');
    tfw_tensor *c = tfw_to_dtype(in[i], kind == 'f' ? TFW_DTYPE_F64 : (kind == 'b' ? TFW_DTYPE_BOOL : TFW_DTYPE_I64));
    cr_assert(c != NULL);
    fprintf(meta, "%c %d", kind, tfw_tensor_ndim(c));
    for (int d = 0; d < tfw_tensor_ndim(c); d++) fprintf(meta, " %lld", (long long)tfw_tensor_shape(c)[d]);
    fprintf(meta, "\n");
    snprintf(path, sizeof path, "%s/in%d.bin", dir, i);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    size_t nb = (size_t)tfw_tensor_numel(c) * tfw_dtype_size(tfw_tensor_dtype(c));
    if (nb) cr_assert(fwrite(tfw_tensor_data(c), 1, nb, f) == nb);
    fclose(f);
    tfw_release(c);
  }
  fclose(meta);
  snprintf(path, sizeof path, "%s/script.py", dir);
  FILE *s = fopen(path, "w");
  cr_assert(s);
  fprintf(s, "%s%s\n%s", TORCH_PRELUDE, code, TORCH_EPILOGUE);
  fclose(s);
  char cmd[1200];
  /* a reference script that hangs (seen: torch stuck at exit after an exception) must fail
   * the test, not stall the suite: 600 s is far above any script's run time */
  snprintf(cmd, sizeof cmd, "timeout -k 10 600 /usr/bin/python3 %s/script.py %s > %s/log.txt 2>&1",
           dir, dir, dir);
  int rc = system(cmd);
  if (rc != 0) {
    snprintf(cmd, sizeof cmd, "cat %s/log.txt >&2", dir);
    if (system(cmd)) {}
    cr_assert_fail("PyTorch reference script failed (exit %d); code:\n%s", rc, code);
  }
  snprintf(path, sizeof path, "%s/out.txt", dir);
  FILE *om = fopen(path, "r");
  cr_assert(om);
  for (int k = 0; k < n_out; k++) {
    int nd;
    int64_t shape[TFW_MAX_DIMS];
    cr_assert(fscanf(om, "%d", &nd) == 1, "reference gave fewer than %d outputs", n_out);
    for (int d = 0; d < nd; d++) {
      long long v;
      cr_assert(fscanf(om, "%lld", &v) == 1);
      shape[d] = v;
    }
    out[k] = tfw_empty(TFW_DTYPE_F64, nd, shape);
    snprintf(path, sizeof path, "%s/out%d.bin", dir, k);
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    size_t nb = (size_t)tfw_tensor_numel(out[k]) * 8;
    if (nb) cr_assert(fread(tfw_tensor_data(out[k]), 1, nb, f) == nb);
    fclose(f);
  }
  fclose(om);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) {}
}

/* ---- files ----------------------------------------------------------------------------- */
uint8_t *th_read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "cannot open %s: %s", path, strerror(errno));
  cr_assert(fseek(f, 0, SEEK_END) == 0, "cannot seek in %s", path);
  long len = ftell(f);
  cr_assert(len >= 0, "cannot size %s", path);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)len + 1);
  cr_assert(p, "out of memory reading %s (%ld bytes)", path, len);
  cr_assert(fread(p, 1, (size_t)len, f) == (size_t)len, "short read of %s", path);
  fclose(f);
  p[len] = 0;
  if (n) *n = (size_t)len;
  return p;
}

void th_write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f, "cannot write %s: %s", path, strerror(errno));
  if (n) cr_assert(fwrite(p, 1, n, f) == n, "short write to %s", path);
  cr_assert(fclose(f) == 0, "cannot close %s: %s", path, strerror(errno));
}
