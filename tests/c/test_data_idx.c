/* IDX reader/writer and MNIST loading. The truth is a Python script (numpy + struct +
 * gzip, not tenflower) run at test time: it writes IDX files and the same values as raw
 * little-endian f64, and it parses the files tenflower writes with its own code. Bad files
 * are handcrafted here, byte by byte. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char g_dir[64];
static const char *tmpdir(void) {
  strcpy(g_dir, "/tmp/tfw_idx_XXXXXX");
  cr_assert(mkdtemp(g_dir) != NULL, "mkdtemp failed");
  return g_dir;
}
static void rmdir_all(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) {}
}
static void run_python(const char *dir, const char *code, const char *arg) {
  char path[256], cmd[700];
  snprintf(path, sizeof path, "%s/gen.py", dir);
  th_write_file(path, code, strlen(code));
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s > %s/py.log 2>&1", path, dir, arg, dir);
  int rc = system(cmd);
  if (rc != 0) {
    snprintf(cmd, sizeof cmd, "cat %s/py.log >&2", dir);
    if (system(cmd)) {}
  }
  cr_assert_eq(rc, 0, "python script failed (exit %d)", rc);
}

/* numpy writes each case: c<k>.idx (plain), c<k>.idx.gz, c<k>.f64 (values), c<k>.meta
 * ("code ndim dims..."). */
static const char *GEN_PY =
    "import sys, struct, gzip, numpy as np\n"
    "d = sys.argv[1]\n"
    "rng = np.random.default_rng(20240607)\n"
    "T = {'u8': (0x08, '>u1'), 'i8': (0x09, '>i1'), 'i16': (0x0B, '>i2'), 'i32': (0x0C, '>i4'),\n"
    "     'f32': (0x0D, '>f4'), 'f64': (0x0E, '>f8')}\n"
    "cases = [('u8', (3, 5, 7)), ('i8', (11,)), ('i16', (4, 6)), ('i32', (2, 3, 4)),\n"
    "         ('f32', (5, 9)), ('f64', (2, 2, 2, 3)), ('u8', (0, 28, 28)), ('f32', ()),\n"
    "         ('i32', (1, 1, 1, 1, 1, 1, 1, 2)), ('u8', (100, 28, 28))]\n"
    "for k, (name, shape) in enumerate(cases):\n"
    "    code, dt = T[name]\n"
    "    if name[0] == 'f':\n"
    "        a = np.asarray(rng.standard_normal(shape) * 1e3).astype(dt)\n"
    "        flat = a.reshape(-1)\n"
    "        sp = [np.inf, -np.inf, -0.0, 1e-40 if name == 'f32' else 1e-310, np.finfo(dt).max]\n"
    "        flat[:min(len(sp), flat.size)] = sp[:min(len(sp), flat.size)]\n"
    "    else:\n"
    "        i = np.iinfo(dt)\n"
    "        a = np.asarray(rng.integers(i.min, i.max, size=shape, endpoint=True)).astype(dt)\n"
    "        flat = a.reshape(-1)\n"
    "        if flat.size >= 2: flat[0], flat[1] = i.min, i.max\n"
    "    raw = struct.pack('>BBBB', 0, 0, code, len(shape))\n"
    "    raw += b''.join(struct.pack('>I', s) for s in shape) + a.tobytes()\n"
    "    open(f'{d}/c{k}.idx', 'wb').write(raw)\n"
    "    with gzip.open(f'{d}/c{k}.idx.gz', 'wb') as g: g.write(raw)\n"
    "    a.astype('<f8').tofile(f'{d}/c{k}.f64')\n"
    "    open(f'{d}/c{k}.meta', 'w').write(' '.join(map(str, [code, len(shape), *shape])))\n"
    "# two gzip members concatenated (gzip -d reads them as one stream)\n"
    "raw = open(f'{d}/c0.idx', 'rb').read()\n"
    "open(f'{d}/multi.idx.gz', 'wb').write(gzip.compress(raw[:50]) + gzip.compress(raw[50:]))\n";

static void expect_case(const char *dir, int k, const char *suffix) {
  char path[256];
  snprintf(path, sizeof path, "%s/c%d.meta", dir, k);
  FILE *m = fopen(path, "r");
  cr_assert(m);
  int code, nd;
  int64_t shape[8];
  cr_assert(fscanf(m, "%d %d", &code, &nd) == 2);
  for (int d = 0; d < nd; d++) {
    long long v;
    cr_assert(fscanf(m, "%lld", &v) == 1);
    shape[d] = v;
  }
  fclose(m);
  tfw_dtype want = code == 0x08 ? TFW_DTYPE_U8 : code == 0x09 ? TFW_DTYPE_I8
                 : code == 0x0D ? TFW_DTYPE_F32 : code == 0x0E ? TFW_DTYPE_F64 : TFW_DTYPE_I32;
  snprintf(path, sizeof path, "%s/c%d%s", dir, k, suffix);
  tfw_tensor *t = tfw_idx_read(path);
  cr_assert(t, "%s: %s", path, tfw_last_error());
  cr_assert_eq(tfw_tensor_dtype(t), want, "%s: dtype %s", path, tfw_dtype_name(tfw_tensor_dtype(t)));
  cr_assert_eq(tfw_tensor_ndim(t), nd, "%s: ndim", path);
  for (int d = 0; d < nd; d++) cr_assert_eq(tfw_tensor_shape(t)[d], shape[d], "%s: dim %d", path, d);
  snprintf(path, sizeof path, "%s/c%d.f64", dir, k);
  size_t nb;
  uint8_t *ref = th_read_file(path, &nb);
  int64_t n = tfw_tensor_numel(t);
  cr_assert_eq((int64_t)nb, n * 8);
  double *got = th_values(t);
  for (int64_t i = 0; i < n; i++) {
    double r;
    memcpy(&r, ref + 8 * i, 8);
    /* bit-exact: -0.0, subnormals, infinities */
    cr_assert(memcmp(&r, &got[i], 8) == 0, "case %d%s element %lld: got %.17g, numpy %.17g", k,
              suffix, (long long)i, got[i], r);
  }
  free(got);
  free(ref);
  tfw_release(t);
}

Test(data_idx, reads_numpy_written_files_plain_and_gzip) {
  const char *dir = tmpdir();
  run_python(dir, GEN_PY, "");
  for (int k = 0; k < 10; k++) {
    expect_case(dir, k, ".idx");
    expect_case(dir, k, ".idx.gz");
  }
  /* concatenated gzip members = case 0 */
  char path[256];
  snprintf(path, sizeof path, "%s/multi.idx.gz", dir);
  tfw_tensor *a = tfw_idx_read(path);
  snprintf(path, sizeof path, "%s/c0.idx", dir);
  tfw_tensor *b = tfw_idx_read(path);
  cr_assert(a && b, "%s", tfw_last_error());
  bool eq = false;
  cr_assert_eq(tfw_equal(a, b, &eq), TFW_OK);
  cr_assert(eq);
  tfw_release(a);
  tfw_release(b);
  rmdir_all(dir);
  th_expect_no_leaks();
}

/* Python parses what tenflower wrote (its own parser: struct + numpy) and compares it with
 * the values dumped through th_values. */
static const char *CHECK_PY =
    "import sys, struct, gzip, numpy as np\n"
    "d, n = sys.argv[1], int(sys.argv[2])\n"
    "T = {0x08: '>u1', 0x09: '>i1', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}\n"
    "for k in range(n):\n"
    "    for suf in ['.idx', '.idx.gz']:\n"
    "        raw = open(f'{d}/w{k}{suf}', 'rb').read()\n"
    "        if suf.endswith('.gz'):\n"
    "            assert raw[:2] == b'\\x1f\\x8b', 'not gzip'\n"
    "            raw = gzip.decompress(raw)\n"
    "        z0, z1, code, nd = struct.unpack('>BBBB', raw[:4])\n"
    "        assert z0 == 0 and z1 == 0\n"
    "        shape = struct.unpack('>' + 'I' * nd, raw[4:4 + 4 * nd])\n"
    "        a = np.frombuffer(raw[4 + 4 * nd:], dtype=T[code]).reshape(shape)\n"
    "        ref = np.fromfile(f'{d}/w{k}.f64', dtype='<f8').reshape(shape)\n"
    "        want = open(f'{d}/w{k}.meta').read().split()\n"
    "        assert code == int(want[0]), (code, want)\n"
    "        assert list(shape) == [int(x) for x in want[1:]], (shape, want)\n"
    "        assert np.array_equal(a.astype('<f8'), ref), (k, suf)\n"
    "print('ok')\n";

Test(data_idx, written_files_parse_with_python) {
  const char *dir = tmpdir();
  struct { tfw_dtype dt; int nd; int64_t shape[4]; int code; } cases[] = {
      {TFW_DTYPE_U8, 3, {4, 5, 6}, 0x08}, {TFW_DTYPE_I8, 1, {17}, 0x09},
      {TFW_DTYPE_I32, 2, {3, 7}, 0x0C},   {TFW_DTYPE_F32, 2, {6, 5}, 0x0D},
      {TFW_DTYPE_F64, 4, {2, 1, 3, 2}, 0x0E}, {TFW_DTYPE_F32, 0, {0}, 0x0D},
  };
  int n = (int)(sizeof cases / sizeof cases[0]);
  for (int k = 0; k < n; k++) {
    tfw_tensor *t = th_random_strided(cases[k].dt, cases[k].nd, cases[k].shape, -100, 100, 11 + k);
    char path[256];
    snprintf(path, sizeof path, "%s/w%d.idx", dir, k);
    cr_assert_eq(tfw_idx_write(path, t), TFW_OK, "%s", tfw_last_error());
    snprintf(path, sizeof path, "%s/w%d.idx.gz", dir, k);
    cr_assert_eq(tfw_idx_write(path, t), TFW_OK, "%s", tfw_last_error());
    /* round trip through our reader too */
    tfw_tensor *back = tfw_idx_read(path);
    cr_assert(back, "%s", tfw_last_error());
    bool eq = false;
    tfw_equal(back, t, &eq);
    cr_assert(eq, "round trip %d", k);
    tfw_release(back);
    double *v = th_values(t);
    snprintf(path, sizeof path, "%s/w%d.f64", dir, k);
    th_write_file(path, v, (size_t)tfw_tensor_numel(t) * 8);
    free(v);
    snprintf(path, sizeof path, "%s/w%d.meta", dir, k);
    FILE *m = fopen(path, "w");
    fprintf(m, "%d", cases[k].code);
    for (int d = 0; d < cases[k].nd; d++) fprintf(m, " %lld", (long long)cases[k].shape[d]);
    fclose(m);
    tfw_release(t);
  }
  char arg[16];
  snprintf(arg, sizeof arg, "%d", n);
  run_python(dir, CHECK_PY, arg);
  rmdir_all(dir);
  th_expect_no_leaks();
}

Test(data_idx, writer_errors) {
  const char *dir = tmpdir();
  char path[256];
  snprintf(path, sizeof path, "%s/x.idx", dir);
  tfw_tensor *t = tfw_zeros(TFW_DTYPE_I64, 1, (int64_t[]){3});
  th_expect_error(tfw_idx_write(path, t), TFW_EDTYPE, "int64", "i64");
  tfw_release(t);
  t = tfw_zeros(TFW_DTYPE_F16, 1, (int64_t[]){3});
  th_expect_error(tfw_idx_write(path, t), TFW_EDTYPE, "float16", "f16");
  th_expect_error(tfw_idx_write(NULL, t), TFW_EVALUE, "path", "NULL path");
  th_expect_error(tfw_idx_write("/nonexistent-dir/x.idx", t), TFW_EDTYPE, NULL, "dtype first");
  tfw_release(t);
  t = tfw_zeros(TFW_DTYPE_U8, 1, (int64_t[]){3});
  th_expect_error(tfw_idx_write("/nonexistent-dir/x.idx", t), TFW_EIO, "nonexistent-dir", "dir");
  tfw_release(t);
  th_expect_error(tfw_idx_read("/nonexistent-dir/x.idx") ? TFW_OK : tfw_last_status(), TFW_EIO,
                  "nonexistent-dir/x.idx", "missing file");
  th_expect_error(tfw_idx_read(dir) ? TFW_OK : tfw_last_status(), TFW_EIO, "regular", "a directory");
  rmdir_all(dir);
  th_expect_no_leaks();
}

/* ---- hostile files ------------------------------------------------------------------------- */
typedef struct bad_case {
  const char *name;
  const uint8_t *bytes;
  size_t n;
  tfw_status code;
  const char *needle;
} bad_case;

static void expect_bad(const char *dir, const bad_case *c) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, c->name);
  th_write_file(path, c->bytes, c->n);
  tfw_tensor *t = tfw_idx_read(path);
  cr_assert(t == NULL, "%s: read a bad file", c->name);
  th_expect_error(tfw_last_status(), c->code, c->needle, c->name);
  cr_assert(strstr(tfw_last_error(), c->name), "%s: message '%s' does not name the file", c->name,
            tfw_last_error());
}

Test(data_idx, hostile_files) {
  const char *dir = tmpdir();
  static const uint8_t magic3[] = {0, 0, 8};
  static const uint8_t badmagic[] = {0x1f, 0x8c, 8, 1, 0, 0, 0, 1, 5};
  static const uint8_t badmagic2[] = {0, 1, 8, 1, 0, 0, 0, 1, 5};
  static const uint8_t badcode[] = {0, 0, 0x0A, 1, 0, 0, 0, 1, 5};
  static const uint8_t rank9[] = {0, 0, 8, 9, 0, 0, 0, 1};
  static const uint8_t truncdims[] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0};
  /* 0xffffffff^3 * 8 bytes: the product overflows 64 bits */
  static const uint8_t overflow[] = {0, 0, 0x0E, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff};
  /* claims 4 G elements, has 2 bytes: must fail before allocating 4 GB */
  static const uint8_t huge[] = {0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1, 2};
  static const uint8_t trunc[] = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0};
  static const uint8_t trailing[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3};
  bad_case cases[] = {
      {"empty.idx", magic3, 0, TFW_EFORMAT, "shorter than the 4-byte"},
      {"three.idx", magic3, 3, TFW_EFORMAT, "shorter than the 4-byte"},
      {"badmagic.idx", badmagic, sizeof badmagic, TFW_EFORMAT, "bad magic"},
      {"badmagic2.idx", badmagic2, sizeof badmagic2, TFW_EFORMAT, "bad magic"},
      {"badcode.idx", badcode, sizeof badcode, TFW_EFORMAT, "unknown type code 0x0a"},
      {"rank9.idx", rank9, sizeof rank9, TFW_EUNSUPPORTED, "rank 9"},
      {"truncdims.idx", truncdims, sizeof truncdims, TFW_EFORMAT, "truncated header"},
      {"overflow.idx", overflow, sizeof overflow, TFW_EFORMAT, "overflows"},
      {"huge.idx", huge, sizeof huge, TFW_EFORMAT, "truncated"},
      {"trunc.idx", trunc, sizeof trunc, TFW_EFORMAT, "need 8 data bytes, the file has 6 (truncated)"},
      {"trailing.idx", trailing, sizeof trailing, TFW_EFORMAT, "trailing"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_bad(dir, &cases[i]);
  rmdir_all(dir);
  th_expect_no_leaks();
}

/* gzip damage: made by Python's gzip module from a valid file, then broken here. */
static const char *GZ_PY =
    "import sys, gzip, struct\n"
    "d = sys.argv[1]\n"
    "raw = struct.pack('>BBBBI', 0, 0, 8, 1, 1000) + bytes(range(256)) * 3 + bytes(232)\n"
    "g = gzip.compress(raw)\n"
    "open(f'{d}/ok.gz', 'wb').write(g)\n"
    "open(f'{d}/gztrunc.gz', 'wb').write(g[:len(g) // 2])\n"
    "open(f'{d}/gznotrailer.gz', 'wb').write(g[:-8])\n"
    "b = bytearray(g); b[-6] ^= 0xff; open(f'{d}/gzbadcrc.gz', 'wb').write(bytes(b))\n"
    "b = bytearray(g); b[len(b) // 2] ^= 0x55; open(f'{d}/gzcorrupt.gz', 'wb').write(bytes(b))\n"
    "open(f'{d}/gzgarbage.gz', 'wb').write(g + b'garbage')\n"
    "open(f'{d}/gzextra.gz', 'wb').write(gzip.compress(raw + b'x'))\n"
    "open(f'{d}/gzshort.gz', 'wb').write(gzip.compress(raw[:-1]))\n"
    "# a 'bomb': claims 4G elements, holds 1 MB of zeros\n"
    "open(f'{d}/gzbomb.gz', 'wb').write(gzip.compress(struct.pack('>BBBBI', 0, 0, 8, 1, 0xffffffff) + bytes(1 << 20)))\n"
    "open(f'{d}/gzempty.gz', 'wb').write(gzip.compress(b''))\n";

Test(data_idx, hostile_gzip) {
  const char *dir = tmpdir();
  run_python(dir, GZ_PY, "");
  char path[256];
  snprintf(path, sizeof path, "%s/ok.gz", dir);
  tfw_tensor *ok = tfw_idx_read(path);
  cr_assert(ok, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_numel(ok), 1000);
  cr_assert_eq(((uint8_t *)tfw_tensor_data(ok))[300], 300 - 256);
  tfw_release(ok);
  struct { const char *name; const char *needle; } cases[] = {
      {"gztrunc.gz", "truncated"},   {"gznotrailer.gz", "truncated gzip"},
      {"gzbadcrc.gz", "corrupt gzip"}, {"gzcorrupt.gz", "gzip"},
      {"gzgarbage.gz", "trailing garbage"}, {"gzextra.gz", "trailing bytes"},
      {"gzshort.gz", "truncated"}, {"gzbomb.gz", "truncated"},
      {"gzempty.gz", "shorter than the 4-byte"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
    tfw_tensor *t = tfw_idx_read(path);
    cr_assert(t == NULL, "%s: read a bad file", cases[i].name);
    th_expect_error(tfw_last_status(), TFW_EFORMAT, cases[i].needle, cases[i].name);
    cr_assert(strstr(tfw_last_error(), cases[i].name), "%s: '%s'", cases[i].name, tfw_last_error());
  }
  rmdir_all(dir);
  th_expect_no_leaks();
}

/* A tiny fake MNIST directory written by numpy; one gzip file among the four. */
static const char *MNIST_PY =
    "import sys, struct, gzip, numpy as np\n"
    "d, bad = sys.argv[1], sys.argv[2] == 'bad'\n"
    "rng = np.random.default_rng(5)\n"
    "for split, n in [('train', 7), ('t10k', 3)]:\n"
    "    im = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)\n"
    "    lab = rng.integers(0, 10, size=(n,), dtype=np.uint8)\n"
    "    if bad and split == 't10k': lab[1] = 10\n"
    "    raw = struct.pack('>BBBBIII', 0, 0, 8, 3, n, 28, 28) + im.tobytes()\n"
    "    if split == 'train':\n"
    "        with gzip.open(f'{d}/{split}-images-idx3-ubyte.gz', 'wb') as g: g.write(raw)\n"
    "    else: open(f'{d}/{split}-images-idx3-ubyte', 'wb').write(raw)\n"
    "    open(f'{d}/{split}-labels-idx1-ubyte', 'wb').write(struct.pack('>BBBBI', 0, 0, 8, 1, n) + lab.tobytes())\n"
    "    im.astype('<f8').tofile(f'{d}/{split}.im.f64'); lab.astype('<f8').tofile(f'{d}/{split}.lab.f64')\n";

static void expect_values(const tfw_tensor *t, const char *path) {
  size_t nb;
  uint8_t *ref = th_read_file(path, &nb);
  cr_assert_eq((int64_t)nb, tfw_tensor_numel(t) * 8);
  double *v = th_values(t);
  cr_assert(memcmp(v, ref, nb) == 0, "%s differs", path);
  free(v);
  free(ref);
}

Test(data_idx, mnist_load) {
  const char *dir = tmpdir();
  run_python(dir, MNIST_PY, "good");
  tfw_tensor *im = NULL, *lab = NULL;
  cr_assert_eq(tfw_mnist_load(dir, true, &im, &lab), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_ndim(im), 3);
  cr_assert_eq(tfw_tensor_shape(im)[0], 7);
  cr_assert_eq(tfw_tensor_dtype(lab), TFW_DTYPE_U8);
  char path[256];
  snprintf(path, sizeof path, "%s/train.im.f64", dir);
  expect_values(im, path);
  snprintf(path, sizeof path, "%s/train.lab.f64", dir);
  expect_values(lab, path);
  tfw_release(im);
  tfw_release(lab);
  setenv("TFW_MNIST_DIR", dir, 1);
  cr_assert_eq(tfw_mnist_load(NULL, false, &im, &lab), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_shape(im)[0], 3);
  tfw_release(im);
  tfw_release(lab);
  unsetenv("TFW_MNIST_DIR");
  th_expect_error(tfw_mnist_load(NULL, false, &im, &lab), TFW_EVALUE, "TFW_MNIST_DIR", "no dir");
  cr_assert(im == NULL && lab == NULL);
  th_expect_error(tfw_mnist_load("/nonexistent", true, &im, &lab), TFW_EIO,
                  "train-images-idx3-ubyte", "missing files");
  run_python(dir, MNIST_PY, "bad");
  th_expect_error(tfw_mnist_load(dir, false, &im, &lab), TFW_EFORMAT, "label 1 is 10", "bad label");
  cr_assert(im == NULL && lab == NULL);
  rmdir_all(dir);
  th_expect_no_leaks();
}

/* normalize_u8 against PyTorch: ToTensor (x.float().div(255)) then Normalize, bit for bit. */
Test(data_idx, normalize_u8_matches_torch) {
  th_require_torch();
  int64_t shape[4] = {3, 2, 5, 7};
  tfw_tensor *x = th_random(TFW_DTYPE_U8, 4, shape, 0, 256, 99);
  float m1 = 0.1307f, s1 = 0.3081f;
  tfw_tensor *y = tfw_normalize_u8(x, 1, &m1, &s1);
  cr_assert(y, "%s", tfw_last_error());
  float m3[2] = {0.485f, 0.456f}, s3[2] = {0.229f, 0.224f};
  tfw_tensor *y2 = tfw_normalize_u8(x, 2, m3, s3); /* channels = dim -3 (size 2) */
  cr_assert(y2, "%s", tfw_last_error());
  tfw_tensor *out[2];
  th_torch_run("u = x[0].to(torch.uint8)\n"
               "f = u.float().div(255)\n"
               "a = (f - torch.tensor(0.1307, dtype=torch.float32)) / torch.tensor(0.3081, dtype=torch.float32)\n"
               "m = torch.tensor([0.485, 0.456], dtype=torch.float32).view(2, 1, 1)\n"
               "s = torch.tensor([0.229, 0.224], dtype=torch.float32).view(2, 1, 1)\n"
               "b = (f - m) / s\n"
               "out = [a.double(), b.double()]\n",
               1, &x, 2, out);
  th_expect_close(y, TFW_DTYPE_F32, 4, shape, th_values(out[0]), 0, 0, "normalize 1 channel");
  th_expect_close(y2, TFW_DTYPE_F32, 4, shape, th_values(out[1]), 0, 0, "normalize 2 channels");
  /* non-contiguous input */
  tfw_tensor *xt = tfw_transpose(x, 0, 3);
  tfw_tensor *yt = tfw_normalize_u8(xt, 1, &m1, &s1);
  tfw_tensor *yref = tfw_transpose(y, 0, 3);
  bool eq = false;
  tfw_equal(yt, yref, &eq);
  cr_assert(eq);
  /* errors */
  tfw_tensor *f = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){2});
  th_expect_error(tfw_normalize_u8(f, 1, &m1, &s1) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "float32", "f32 input");
  float z = 0;
  th_expect_error(tfw_normalize_u8(x, 1, &m1, &z) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "std[0]", "std 0");
  float m4[3] = {0, 0, 0}, s4[3] = {1, 1, 1};
  th_expect_error(tfw_normalize_u8(x, 3, m4, s4) ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "dim -3", "channels");
  tfw_release(f);
  tfw_release(xt);
  tfw_release(yt);
  tfw_release(yref);
  tfw_release(out[0]);
  tfw_release(out[1]);
  tfw_release(x);
  tfw_release(y);
  tfw_release(y2);
  th_expect_no_leaks();
}
