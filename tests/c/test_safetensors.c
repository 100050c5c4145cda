/* safetensors reader and writer, against independent truth:
 *  - files written by huggingface safetensors / PyTorch (../shared/testdata), compared with
 *    the arrays numpy loads from the expected.npz shipped beside them, or read by a
 *    20-line Python reader (json + numpy, not our code);
 *  - files we write, parsed back by that Python reader (names, dtypes, shapes, bytes,
 *    metadata, layout rules), then compared with the tensors we saved;
 *  - a handcrafted hostile-file matrix (RELIABILITY.md §1.1's test-gguf list): each must
 *    give TFW_EFORMAT and a message naming the field; truncation and bit-flip sweeps;
 *    the out-of-memory loop. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/safetensors_impl.h"

#define TESTDATA TFW_SOURCE_DIR "/../shared/testdata/formats"
#define PY "/usr/bin/python3"

/* ---- helpers ----------------------------------------------------------------------------- */
static char g_dir[64];

static const char *tmpdir(void) {
  strcpy(g_dir, "/tmp/tfw_st_XXXXXX");
  cr_assert(mkdtemp(g_dir) != NULL, "mkdtemp failed");
  return g_dir;
}
static void rm_tree(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert(system(cmd) == 0);
}
static int have_numpy(void) {
  return system(PY " -c 'import numpy' >/dev/null 2>&1") == 0;
}
static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* The independent reader: json + numpy only. Dumps every tensor's bytes (C order, little
 * endian) and a manifest "hexname \t DTYPE \t ndim \t d0,d1,.. \t file", metadata as
 * "hexkey \t hexvalue". With "strict" it also checks our writer's promises: header length
 * a multiple of 8, tensors aligned for their dtype, in the reference writer's order. */
static const char *READER_PY =
    "import json, struct, sys, numpy as np\n"
    "path, out, strict = sys.argv[1], sys.argv[2], len(sys.argv) > 3\n"
    "b = open(path, 'rb').read()\n"
    "n = struct.unpack('<Q', b[:8])[0]\n"
    "def pairs(kv):\n"
    "    d = dict(kv); assert len(d) == len(kv), 'duplicate keys'; return d\n"
    "h = json.loads(b[8:8 + n].decode('utf-8'), object_pairs_hook=pairs)\n"
    "meta = h.pop('__metadata__', None) or {}\n"
    "DT = {'F32': '<f4', 'F64': '<f8', 'F16': '<f2', 'BF16': '<u2', 'I8': 'i1', 'U8': 'u1',\n"
    "      'I32': '<i4', 'I64': '<i8', 'BOOL': '?'}\n"
    "RANK = ['BOOL', 'U8', 'I8', 'F16', 'BF16', 'I32', 'F32', 'F64', 'I64']\n"
    "data = b[8 + n:]\n"
    "items = sorted(h.items(), key=lambda kv: kv[1]['data_offsets'])\n"
    "at = 0\n"
    "with open(out + '/manifest.txt', 'w') as m:\n"
    "    for i, (k, v) in enumerate(items):\n"
    "        s, e = v['data_offsets']; assert s == at, (k, s, at); at = e\n"
    "        a = np.frombuffer(data[s:e], dtype=DT[v['dtype']]).reshape(v['shape'])\n"
    "        if strict: assert (8 + n + s) % a.itemsize == 0, ('misaligned', k)\n"
    "        a.tofile('%s/%d.bin' % (out, i))\n"
    "        m.write('%s\\t%s\\t%d\\t%s\\t%d.bin\\n' % (k.encode().hex(), v['dtype'], a.ndim,\n"
    "                ','.join(map(str, a.shape)), i))\n"
    "assert at == len(data), ('trailing', at, len(data))\n"
    "if strict:\n"
    "    assert n % 8 == 0 and b[8:8 + n].rstrip(b' ').endswith(b'}'), 'padding'\n"
    "    key = lambda kv: (-RANK.index(kv[1]['dtype']), kv[0].encode())\n"
    "    assert [k for k, _ in items] == [k for k, _ in sorted(h.items(), key=key)], 'order'\n"
    "with open(out + '/meta.txt', 'w') as f:\n"
    "    for k, v in meta.items(): f.write('%s\\t%s\\n' % (k.encode().hex(), v.encode().hex()))\n";

typedef struct {
  char name[256], dtype[16], file[32];
  int ndim;
  int64_t shape[TFW_MAX_DIMS];
} mrow;

static void unhex(const char *h, char *out, size_t cap) {
  size_t k = 0;
  for (; h[0] && h[1] && k + 1 < cap; h += 2) {
    unsigned v;
    sscanf(h, "%2x", &v);
    out[k++] = (char)v;
  }
  out[k] = '\0';
}

/* Runs the Python reader on path; fills rows (returns the count). */
static int py_read(const char *dir, const char *path, int strict, mrow *rows, int cap) {
  char script[300], cmd[1024];
  snprintf(script, sizeof script, "%s/reader.py", dir);
  write_text(script, READER_PY);
  snprintf(cmd, sizeof cmd, PY " %s '%s' '%s'%s", script, path, dir, strict ? " strict" : "");
  cr_assert(system(cmd) == 0, "the independent reader rejected %s", path);
  char mpath[300], line[1024];
  snprintf(mpath, sizeof mpath, "%s/manifest.txt", dir);
  FILE *f = fopen(mpath, "r");
  cr_assert(f);
  int n = 0;
  while (fgets(line, sizeof line, f) && n < cap) {
    mrow *r = &rows[n++];
    line[strcspn(line, "\n")] = '\0';
    char *hex = strtok(line, "\t"), *dt = strtok(NULL, "\t"), *nd = strtok(NULL, "\t");
    char *dims = strtok(NULL, "\t"), *file = strtok(NULL, "\t\n");
    if (file == NULL) { /* 0-d: empty dims field collapses */
      file = dims;
      dims = "";
    }
    unhex(hex, r->name, sizeof r->name);
    snprintf(r->dtype, sizeof r->dtype, "%s", dt);
    r->ndim = atoi(nd);
    snprintf(r->file, sizeof r->file, "%s", file);
    char *save = NULL;
    int d = 0;
    for (char *t = strtok_r(dims, ",", &save); t && d < TFW_MAX_DIMS; t = strtok_r(NULL, ",", &save))
      r->shape[d++] = atoll(t);
    cr_assert_eq(d, r->ndim, "manifest dims of %s", r->name);
  }
  fclose(f);
  return n;
}

/* Checks t against manifest row r (dtype, shape, bytes). */
static void expect_row(const char *dir, const mrow *r, const tfw_tensor *t) {
  cr_assert(t, "%s: %s", r->name, tfw_last_error());
  const tfw__st_dtype *d = &tfw__st_dtypes[tfw__st_dtype_of(tfw_tensor_dtype(t))];
  cr_assert_str_eq(d->name, r->dtype, "%s: dtype", r->name);
  cr_assert_eq(tfw_tensor_ndim(t), r->ndim, "%s: ndim", r->name);
  for (int k = 0; k < r->ndim; k++)
    cr_assert_eq(tfw_tensor_shape(t)[k], r->shape[k], "%s: dim %d", r->name, k);
  char path[300];
  snprintf(path, sizeof path, "%s/%s", dir, r->file);
  size_t len;
  uint8_t *want = th_read_file(path, &len);
  tfw_tensor *c = tfw_contiguous(t);
  size_t nb = (size_t)tfw_tensor_numel(c) * tfw_dtype_size(tfw_tensor_dtype(c));
  cr_assert_eq(nb, len, "%s: %zu bytes, reference has %zu", r->name, nb, len);
  cr_assert(len == 0 || memcmp(tfw_tensor_data(c), want, len) == 0, "%s: bytes differ", r->name);
  tfw_release(c);
  free(want);
}

/* ---- files written by other tools ------------------------------------------------------- */
static int testdata_present(void) {
  struct stat sb;
  return stat(TESTDATA "/safetensors/model.safetensors", &sb) == 0 && have_numpy();
}

Test(safetensors, reference_model_vs_expected_npz) {
  if (!testdata_present()) cr_skip_test("../shared/testdata or numpy missing: skipped");
  const char *dir = tmpdir();
  /* expected.npz -> raw files, with numpy (dtype str, shape, C-order bytes) */
  char script[128], cmd[512];
  snprintf(script, sizeof script, "%s/npz.py", dir);
  write_text(script,
             "import numpy as np, sys\n"
             "z = np.load(sys.argv[1])\n"
             "with open(sys.argv[2] + '/manifest.txt', 'w') as m:\n"
             "    for i, k in enumerate(z.files):\n"
             "        a = z[k].copy(order='C'); a.astype(a.dtype.newbyteorder('<')).tofile('%s/%d.bin' % (sys.argv[2], i))\n"
             "        m.write('%s\\t%s\\t%d\\t%s\\t%d.bin\\n' % (k.encode().hex(), a.dtype.name, a.ndim, ','.join(map(str, a.shape)), i))\n");
  snprintf(cmd, sizeof cmd, PY " %s " TESTDATA "/safetensors/expected.npz %s", script, dir);
  cr_assert(system(cmd) == 0);
  tfw_safetensors *st = tfw_safetensors_open(TESTDATA "/safetensors/model.safetensors");
  cr_assert(st, "%s", tfw_last_error());
  /* offset order, as the reference writer laid them out */
  static const char *order[] = {"ids", "empty", "layer.bias", "layer.weight", "scalar", "bf16",
                                "half", "bytes"};
  cr_assert_eq(tfw_safetensors_count(st), 8);
  for (int i = 0; i < 8; i++) cr_assert_str_eq(tfw_safetensors_name(st, i), order[i]);
  cr_assert_eq(tfw_safetensors_metadata_count(st), 2);
  cr_assert_str_eq(tfw_safetensors_metadata_get(st, "format"), "pt");
  cr_assert_str_eq(tfw_safetensors_metadata_get(st, "set"), "0");
  cr_assert_null(tfw_safetensors_metadata_get(st, "nope"));
  /* the npz manifest: name, numpy dtype, shape, bytes */
  static const struct { const char *npz, *st, *dtype; } map[] = {
      {"layer.weight", "layer.weight", "F32"}, {"layer.bias", "layer.bias", "F32"},
      {"half", "half", "F16"}, {"bf16", "bf16", "BF16"}, {"ids", "ids", "I64"},
      {"bytes", "bytes", "U8"}, {"scalar", "scalar", "F32"}, {"empty", "empty", "F32"}};
  char mpath[128], line[512];
  snprintf(mpath, sizeof mpath, "%s/manifest.txt", dir);
  FILE *f = fopen(mpath, "r");
  int checked = 0;
  while (fgets(line, sizeof line, f)) {
    mrow r = {0};
    line[strcspn(line, "\n")] = '\0';
    char *hex = strtok(line, "\t"), *npdt = strtok(NULL, "\t"), *nd = strtok(NULL, "\t");
    char *dims = strtok(NULL, "\t"), *file = strtok(NULL, "\t\n");
    if (!file) file = dims, dims = "";
    unhex(hex, r.name, sizeof r.name);
    r.ndim = atoi(nd);
    snprintf(r.file, sizeof r.file, "%s", file);
    int d = 0;
    for (char *t = strtok(dims, ","); t; t = strtok(NULL, ",")) r.shape[d++] = atoll(t);
    (void)npdt;
    if (!strcmp(r.name, "bf16.f32")) { /* the bf16 values widened to f32 by torch */
      tfw_tensor *b = tfw_safetensors_get(st, "bf16"), *w = tfw_to_dtype(b, TFW_DTYPE_F32);
      strcpy(r.dtype, "F32");
      expect_row(dir, &r, w);
      tfw_release(b), tfw_release(w);
      checked++;
      continue;
    }
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
      if (!strcmp(map[k].npz, r.name)) {
        strcpy(r.dtype, map[k].dtype);
        tfw_tensor *t = tfw_safetensors_get(st, map[k].st);
        expect_row(dir, &r, t);
        tfw_release(t);
        checked++;
      }
  }
  fclose(f);
  cr_assert_eq(checked, 9, "checked %d of the 9 expected arrays", checked);
  tfw_safetensors_close(st);
  rm_tree(dir);
  th_expect_no_leaks();
}

static void check_with_python(const char *path, int expect_n) {
  const char *dir = tmpdir();
  mrow rows[64];
  int n = py_read(dir, path, 0, rows, 64);
  cr_assert_eq(n, expect_n);
  tfw_safetensors *st = tfw_safetensors_open(path);
  cr_assert(st, "%s", tfw_last_error());
  cr_assert_eq(tfw_safetensors_count(st), n);
  for (int i = 0; i < n; i++) {
    cr_assert_str_eq(tfw_safetensors_name(st, i), rows[i].name);
    tfw_tensor *t = tfw_safetensors_get(st, rows[i].name);
    expect_row(dir, &rows[i], t);
    tfw_release(t);
  }
  tfw_safetensors_close(st);
  rm_tree(dir);
  th_expect_no_leaks();
}

Test(safetensors, onnx_weights_vs_python_reader) {
  if (!testdata_present()) cr_skip_test("../shared/testdata or numpy missing: skipped");
  check_with_python(TESTDATA "/onnx/mlp.safetensors", 4);
  check_with_python(TESTDATA "/onnx/cnn.safetensors", 10);
  /* a spot value by hand: fc1.weight is [32, 16] float32 */
  tfw_safetensors *st = tfw_safetensors_open(TESTDATA "/onnx/mlp.safetensors");
  tfw_safetensors_info info;
  cr_assert_eq(tfw_safetensors_tensor_info(st, tfw_safetensors_find(st, "fc1.weight"), &info), TFW_OK);
  cr_assert_str_eq(info.dtype_name, "F32");
  cr_assert(info.ndim == 2 && info.shape[0] == 32 && info.shape[1] == 16 && info.nbytes == 2048);
  cr_assert_eq(info.file_offset, 8 + 280 + 128);
  tfw_safetensors_close(st);
}

/* ---- round trip through the independent reader ---------------------------------------- */
Test(safetensors, save_then_python_reader) {
  if (!have_numpy()) cr_skip_test("numpy missing: skipped");
  const char *dir = tmpdir();
  const char *names[] = {"w.f32", "w.f64", "h.f16", "b.bf16", "i8", "u8", "i32", "i64",
                         "mask", "scalar", "empty", "strided", "\xcf\x80 \"q\\\" \x01 tab\tz",
                         "a"};
  int64_t s23[] = {2, 3}, s4[] = {4}, s0[] = {0, 3}, s234[] = {2, 3, 4};
  tfw_tensor *ts[] = {
      th_random(TFW_DTYPE_F32, 2, s23, -2, 2, 1), th_random(TFW_DTYPE_F64, 1, s4, -2, 2, 2),
      th_random(TFW_DTYPE_F16, 2, s23, -2, 2, 3), th_random(TFW_DTYPE_BF16, 1, s4, -2, 2, 4),
      th_random(TFW_DTYPE_I8, 1, s4, -100, 100, 5), th_random(TFW_DTYPE_U8, 3, s234, 0, 255, 6),
      th_random(TFW_DTYPE_I32, 1, s4, -1e9, 1e9, 7), th_random(TFW_DTYPE_I64, 2, s23, -1e15, 1e15, 8),
      th_random(TFW_DTYPE_BOOL, 1, s4, 0, 1, 9), tfw_scalar(TFW_DTYPE_F32, 2.5),
      tfw_zeros(TFW_DTYPE_F32, 2, s0), th_random_strided(TFW_DTYPE_F32, 3, s234, -1, 1, 10),
      th_random(TFW_DTYPE_U8, 1, s4, 0, 255, 11), th_random(TFW_DTYPE_I64, 1, s4, 0, 9, 12)};
  int n = (int)(sizeof ts / sizeof ts[0]);
  cr_assert(!tfw_tensor_is_contiguous(ts[11]));
  const char *mk[] = {"format", "\xe2\x82\xac key", "empty"}, *mv[] = {"pt", "va\"l\\ue\n", ""};
  char path[128];
  snprintf(path, sizeof path, "%s/out.safetensors", dir);
  cr_assert_eq(tfw_safetensors_save(path, n, names, ts, 3, mk, mv), TFW_OK, "%s", tfw_last_error());
  /* no temporary left beside it */
  DIR *dd = opendir(dir);
  struct dirent *de;
  while ((de = readdir(dd))) cr_assert(!strstr(de->d_name, ".tmp."), "left %s", de->d_name);
  closedir(dd);
  mrow rows[32];
  char pdir[128];
  snprintf(pdir, sizeof pdir, "%s/py", dir);
  mkdir(pdir, 0700);
  int got = py_read(pdir, path, 1, rows, 32);
  cr_assert_eq(got, n);
  for (int i = 0; i < got; i++) {
    int k = 0;
    while (k < n && strcmp(names[k], rows[i].name)) k++;
    cr_assert(k < n, "python found a tensor '%s' we did not write", rows[i].name);
    expect_row(pdir, &rows[i], ts[k]);
  }
  char mpath[160], line[256], key[64], val[64];
  snprintf(mpath, sizeof mpath, "%s/meta.txt", pdir);
  FILE *f = fopen(mpath, "r");
  for (int i = 0; i < 3; i++) {
    cr_assert(fgets(line, sizeof line, f));
    char *hk = strtok(line, "\t"), *hv = strtok(NULL, "\t\n");
    unhex(hk, key, sizeof key);
    unhex(hv ? hv : "", val, sizeof val);
    cr_assert_str_eq(key, mk[i]);
    cr_assert_str_eq(val, mv[i]);
  }
  cr_assert(!fgets(line, sizeof line, f));
  fclose(f);
  /* and our reader agrees; tensors borrow the mapping and outlive the handle */
  tfw_safetensors *st = tfw_safetensors_open(path);
  cr_assert(st, "%s", tfw_last_error());
  tfw_tensor *back[16];
  for (int i = 0; i < n; i++) back[i] = tfw_safetensors_get(st, names[i]);
  cr_assert_str_eq(tfw_safetensors_metadata_get(st, mk[1]), mv[1]);
  tfw_safetensors_close(st);
  for (int i = 0; i < n; i++) {
    bool eq = false;
    cr_assert(back[i], "%s", tfw_last_error());
    cr_assert_eq(tfw_equal(back[i], ts[i], &eq), TFW_OK);
    cr_assert(eq, "tensor %s differs after the round trip", names[i]);
    double one[1] = {7};
    if (tfw_tensor_numel(back[i]) > 0 && tfw_dtype_is_floating(tfw_tensor_dtype(back[i]))) {
      int64_t zero[TFW_MAX_DIMS] = {0};
      cr_assert_eq(tfw_tensor_set(back[i], zero, one[0]), TFW_OK); /* copy-on-write */
    }
    tfw_release(back[i]);
  }
  /* the file itself did not change through the in-place writes */
  st = tfw_safetensors_open(path);
  tfw_tensor *w = tfw_safetensors_get(st, "w.f32");
  bool eq = false;
  tfw_equal(w, ts[0], &eq);
  cr_assert(eq, "writing into a borrowed tensor changed the file");
  tfw_release(w);
  tfw_safetensors_close(st);
  /* overwrite in place works (atomic replace) */
  cr_assert_eq(tfw_safetensors_save(path, 1, names, ts, 0, NULL, NULL), TFW_OK);
  st = tfw_safetensors_open(path);
  cr_assert_eq(tfw_safetensors_count(st), 1);
  cr_assert_eq(tfw_safetensors_metadata_count(st), 0);
  tfw_safetensors_close(st);
  for (int i = 0; i < n; i++) tfw_release(ts[i]);
  rm_tree(dir);
  th_expect_no_leaks();
}

Test(safetensors, save_errors) {
  const char *dir = tmpdir();
  char path[128];
  snprintf(path, sizeof path, "%s/x.safetensors", dir);
  int64_t s2[] = {2};
  tfw_tensor *a = tfw_zeros(TFW_DTYPE_F32, 1, s2);
  tfw_tensor *two[] = {a, a};
  const char *dup[] = {"w", "w"}, *meta[] = {"__metadata__"}, *bad[] = {"\xff"};
  th_expect_error(tfw_safetensors_save(path, 2, dup, two, 0, NULL, NULL), TFW_EVALUE,
                  "duplicate tensor name 'w'", "dup");
  th_expect_error(tfw_safetensors_save(path, 1, meta, two, 0, NULL, NULL), TFW_EVALUE,
                  "reserves", "reserved");
  th_expect_error(tfw_safetensors_save(path, 1, bad, two, 0, NULL, NULL), TFW_EVALUE, "UTF-8",
                  "utf8");
  tfw_tensor *nul[] = {NULL};
  th_expect_error(tfw_safetensors_save(path, 1, dup, nul, 0, NULL, NULL), TFW_EVALUE, "NULL",
                  "null");
  const char *k2[] = {"k", "k"}, *v2[] = {"1", "2"};
  th_expect_error(tfw_safetensors_save(path, 1, dup, two, 2, k2, v2), TFW_EVALUE,
                  "duplicate metadata key 'k'", "dupmeta");
  th_expect_error(tfw_safetensors_save("/nonexistent-dir/x.safetensors", 1, dup, two, 0, NULL,
                                       NULL), TFW_EIO, "No such file", "eio");
  cr_assert(access(path, F_OK) != 0, "a failed save left a file");
  /* an empty file (no tensors) is valid */
  cr_assert_eq(tfw_safetensors_save(path, 0, NULL, NULL, 0, NULL, NULL), TFW_OK);
  tfw_safetensors *st = tfw_safetensors_open(path);
  cr_assert(st && tfw_safetensors_count(st) == 0, "%s", tfw_last_error());
  tfw_safetensors_close(st);
  tfw_release(a);
  rm_tree(dir);
  th_expect_no_leaks();
}

Test(safetensors, open_io_errors) {
  th_expect_error(tfw_safetensors_open("/nonexistent/x.safetensors") ? TFW_OK : tfw_last_status(),
                  TFW_EIO, "No such file", "missing");
  th_expect_error(tfw_safetensors_open("/tmp") ? TFW_OK : tfw_last_status(), TFW_EIO,
                  "not a regular file", "dir");
}

/* ---- hostile files ------------------------------------------------------------------------- */
/* Builds length + header + data bytes into buf; returns the total length. */
static size_t build(uint8_t *buf, uint64_t n_override, const char *hdr, size_t data_len) {
  size_t n = strlen(hdr);
  uint64_t len = n_override ? n_override : n;
  for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(len >> (8 * i));
  memcpy(buf + 8, hdr, n);
  for (size_t k = 0; k < data_len; k++) buf[8 + n + k] = (uint8_t)(k * 7 + 1);
  return 8 + n + data_len;
}

static void expect_bad(const char *hdr, size_t data_len, tfw_status code, const char *needle) {
  static uint8_t buf[1 << 16];
  size_t len = build(buf, 0, hdr, data_len);
  tfw_safetensors *st = tfw__safetensors_parse_buffer(buf, len);
  if (st) tfw_safetensors_close(st);
  th_expect_error(st ? TFW_OK : tfw_last_status(), code, needle, hdr);
}

#define T1(x) "{\"t\":{\"dtype\":\"F32\",\"shape\":" x "}}"
Test(safetensors, hostile_files) {
  static uint8_t buf[1 << 12];
  /* length field */
  tfw_safetensors *st = tfw__safetensors_parse_buffer("\x02\0\0\0\0", 5);
  th_expect_error(st ? TFW_OK : tfw_last_status(), TFW_EFORMAT, "shorter than the 8-byte", "short");
  size_t len = build(buf, 100000001, "{}", 0);
  cr_assert_null(tfw__safetensors_parse_buffer(buf, len));
  th_expect_error(tfw_last_status(), TFW_EFORMAT, "header length 100000001 exceeds", "cap");
  len = build(buf, UINT64_MAX, "{}", 0);
  cr_assert_null(tfw__safetensors_parse_buffer(buf, len));
  th_expect_error(tfw_last_status(), TFW_EFORMAT, "exceeds the 100000000-byte cap", "2^64-1");
  len = build(buf, 50, "{}", 0);
  cr_assert_null(tfw__safetensors_parse_buffer(buf, len));
  th_expect_error(tfw_last_status(), TFW_EFORMAT, "header length 50 runs past the end", "beyond");
  /* text */
  expect_bad(" {}", 0, TFW_EFORMAT, "does not start with '{'");
  expect_bad("[1]", 0, TFW_EFORMAT, "does not start with '{'");
  expect_bad("{\"\xff\":1}", 0, TFW_EFORMAT, "not valid UTF-8 at header byte 2");
  expect_bad("{\"\xc0\xaf\":1}", 0, TFW_EFORMAT, "not valid UTF-8");      /* overlong */
  expect_bad("{\"\xed\xa0\x80\":1}", 0, TFW_EFORMAT, "not valid UTF-8");  /* surrogate */
  expect_bad("{\"a\\ud800\":1}", 0, TFW_EFORMAT, "surrogate");
  expect_bad("{\"a\\u0000b\":{}}", 0, TFW_EFORMAT, "NUL");
  expect_bad("{\"a\x01\":1}", 0, TFW_EFORMAT, "control character");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, TFW_EFORMAT,
             "header JSON");
  expect_bad("{} x", 0, TFW_EFORMAT, "trailing characters");
  expect_bad("{}{}", 0, TFW_EFORMAT, "trailing characters");
  expect_bad("{\"a\":5}", 0, TFW_EFORMAT, "tensor 'a' is not a JSON object");
  /* tensor fields */
  expect_bad(T1("[2],\"shape\":[2],\"data_offsets\":[0,8]"), 8, TFW_EFORMAT, "duplicate 'shape' field");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, TFW_EFORMAT,
             "lacks the 'shape' field");
  expect_bad("{\"t\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TFW_EFORMAT,
             "unknown dtype 'F33'");
  expect_bad("{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TFW_EFORMAT,
             "dtype is not a string");
  expect_bad(T1("[-1],\"data_offsets\":[0,4]"), 4, TFW_EFORMAT, "shape has a negative value");
  expect_bad(T1("[1.5],\"data_offsets\":[0,4]"), 4, TFW_EFORMAT, "not a plain integer");
  expect_bad(T1("[1e3],\"data_offsets\":[0,4]"), 4, TFW_EFORMAT, "not a plain integer");
  expect_bad(T1("[01],\"data_offsets\":[0,4]"), 4, TFW_EFORMAT, "header JSON: expected");
  expect_bad(T1("[NaN],\"data_offsets\":[0,4]"), 4, TFW_EFORMAT, "header JSON: expected a value");
  expect_bad(T1("[9223372036854775808],\"data_offsets\":[0,0]"), 0, TFW_EFORMAT,
             "larger than 2^63-1");
  expect_bad(T1("[99999999999999999999999],\"data_offsets\":[0,0]"), 0, TFW_EFORMAT,
             "larger than 2^63-1");
  expect_bad(T1("[1099511627776,1099511627776],\"data_offsets\":[0,0]"), 0, TFW_EFORMAT,
             "tensor 't' shape overflows");
  expect_bad(T1("[2305843009213693952],\"data_offsets\":[0,0]"), 0, TFW_EFORMAT,
             "x F32 overflows 64 bits");
  expect_bad(T1("[5,6],\"data_offsets\":[0,100]"), 100, TFW_EFORMAT,
             "tensor 't' data_offsets [0, 100) do not match shape [5, 6] x F32 = 120 bytes");
  expect_bad(T1("[1],\"data_offsets\":[8,4]"), 8, TFW_EFORMAT, "end before they begin");
  expect_bad(T1("[1],\"data_offsets\":[0,4,8]"), 8, TFW_EFORMAT,
             "data_offsets is not an array of two integers");
  expect_bad(T1("[1],\"data_offsets\":[0]"), 4, TFW_EFORMAT,
             "data_offsets is not an array of two integers");
  expect_bad(T1("[1],\"data_offsets\":[0,-4]"), 4, TFW_EFORMAT, "data_offsets has a negative");
  expect_bad("{\"t\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,1]}}", 1, TFW_EFORMAT,
             "not a whole number of bytes");
  /* layout */
  expect_bad(T1("[1],\"data_offsets\":[0,4]"), 3, TFW_EFORMAT, "run past the end of the data");
  expect_bad(T1("[1],\"data_offsets\":[0,4]"), 5, TFW_EFORMAT, "1 trailing bytes after the last");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 6, TFW_EFORMAT,
             "tensor 'b' data_offsets [2, 6) overlap tensor 'a', which ends at 4");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, TFW_EFORMAT,
             "hole in the data: bytes [4, 8) before tensor 'b'");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, TFW_EFORMAT,
             "duplicate tensor name 'a'");
  /* metadata */
  expect_bad("{\"__metadata__\":{\"k\":1}}", 0, TFW_EFORMAT, "metadata value of 'k' is not a string");
  expect_bad("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, TFW_EFORMAT, "is not a string");
  expect_bad("{\"__metadata__\":[\"k\"]}", 0, TFW_EFORMAT, "must be an object of strings");
  expect_bad("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, TFW_EFORMAT,
             "duplicate metadata key 'k'");
  expect_bad("{\"__metadata__\":{},\"__metadata__\":{}}", 0, TFW_EFORMAT,
             "duplicate '__metadata__'");
  /* nesting: an ignored field nested past the cap, and a very deep one (no stack overflow) */
  char deep[40000];
  strcpy(deep, "{\"t\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1],\"x\":");
  size_t at = strlen(deep);
  for (int i = 0; i < 30000; i++) deep[at++] = '[';
  deep[at] = '\0';
  expect_bad(deep, 1, TFW_EFORMAT, "nesting deeper than 64 levels");
  th_expect_no_leaks();
}

Test(safetensors, valid_edge_cases) {
  static uint8_t buf[1 << 12];
  /* unknown fields are ignored (as the reference does); null metadata; 0-d; empty */
  size_t len = build(buf, 0, "{\"__metadata__\":null,\"s\":{\"x\":{\"y\":[1,2.5e3,true,null]},"
                     "\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                     "\"e\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[4,4]}}  \n\t", 4);
  tfw_safetensors *st = tfw__safetensors_parse_buffer(buf, len);
  cr_assert(st, "%s", tfw_last_error());
  cr_assert_eq(tfw_safetensors_count(st), 2);
  cr_assert_str_eq(tfw_safetensors_name(st, 1), "e"); /* offset order: [0,4) then [4,4) */
  tfw_tensor *e = tfw_safetensors_get(st, "e");
  cr_assert(e && tfw_tensor_numel(e) == 0 && tfw_tensor_ndim(e) == 2);
  tfw_release(e);
  tfw_safetensors_close(st);
  /* misaligned F32 (after one U8 byte): a copy with the right values; bool bytes > 1 */
  len = build(buf, 0, "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
              "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]},"
              "\"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[9,11]}}", 11);
  size_t hdr = len - 11;
  float want[2] = {1.5f, -2.25f};
  memcpy(buf + hdr + 1, want, 8);
  buf[hdr + 9] = 0, buf[hdr + 10] = 7;
  st = tfw__safetensors_parse_buffer(buf, len);
  cr_assert(st, "%s", tfw_last_error());
  tfw_tensor *f = tfw_safetensors_get(st, "f"), *b = tfw_safetensors_get(st, "b");
  tfw_safetensors_close(st);
  double ref[2] = {1.5, -2.25}, bref[2] = {0, 1};
  int64_t s2[] = {2};
  th_expect_close(f, TFW_DTYPE_F32, 1, s2, ref, 0, 0, "misaligned f32");
  th_expect_close(b, TFW_DTYPE_BOOL, 1, s2, bref, 0, 0, "bool");
  tfw_release(f), tfw_release(b);
  /* dtypes tenflower lacks, and rank > 8: the file opens, get says which */
  len = build(buf, 0, "{\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]},"
              "\"s\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[2,4]},"
              "\"r\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[4,5]}}", 5);
  st = tfw__safetensors_parse_buffer(buf, len);
  cr_assert(st, "%s", tfw_last_error());
  cr_assert_null(tfw_safetensors_get(st, "q"));
  th_expect_error(tfw_last_status(), TFW_EUNSUPPORTED, "tensor 'q' has dtype F8_E4M3", "f8");
  cr_assert_null(tfw_safetensors_get(st, "s"));
  th_expect_error(tfw_last_status(), TFW_EUNSUPPORTED, "dtype U16", "u16");
  cr_assert_null(tfw_safetensors_get(st, "r"));
  th_expect_error(tfw_last_status(), TFW_EUNSUPPORTED, "9 dims", "rank 9");
  cr_assert_null(tfw_safetensors_get(st, "zz"));
  th_expect_error(tfw_last_status(), TFW_EINDEX, "no tensor named 'zz'", "missing");
  tfw_safetensors_info info;
  cr_assert_eq(tfw_safetensors_tensor_info(st, 0, &info), TFW_OK);
  cr_assert(info.dtype == TFW_DTYPE_COUNT && !strcmp(info.dtype_name, "F8_E4M3"));
  cr_assert_eq(tfw_safetensors_tensor_info(st, 3, &info), TFW_EINDEX);
  cr_assert_null(tfw_safetensors_name(st, -1));
  tfw_safetensors_close(st);
  th_expect_no_leaks();
}

/* Many entries: parsed (and rejected past the cap) quickly, memory bounded by the file. */
Test(safetensors, many_entries) {
  int n = 200000;
  size_t cap = (size_t)n * 64 + 64;
  char *h = malloc(cap);
  size_t at = 0;
  h[at++] = '{';
  for (int i = 0; i < n; i++)
    at += (size_t)snprintf(h + at, cap - at, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],"
                           "\"data_offsets\":[0,0]}", i ? "," : "", i);
  h[at++] = '}';
  h[at] = '\0';
  uint8_t *buf = malloc(at + 8);
  size_t len = build(buf, 0, h, 0);
  tfw_safetensors *st = tfw__safetensors_parse_buffer(buf, len);
  cr_assert(st, "%s", tfw_last_error());
  cr_assert_eq(tfw_safetensors_count(st), n);
  cr_assert_eq(tfw_safetensors_find(st, "t123456"), tfw_safetensors_find(st, "t123456"));
  cr_assert_geq(tfw_safetensors_find(st, "t123456"), 0);
  tfw_safetensors_close(st);
  free(buf);
  /* past the entry cap: one metadata object of 2^20 + 1 tiny pairs */
  size_t m = (size_t)TFW_SAFETENSORS_MAX_TENSORS + 1;
  h = realloc(h, m * 6 + 64);
  at = (size_t)sprintf(h, "{\"__metadata__\":{");
  for (size_t i = 0; i < m; i++) at += (size_t)sprintf(h + at, "%s\"\":\"\"", i ? "," : "");
  at += (size_t)sprintf(h + at, "}}");
  buf = malloc(at + 8);
  len = build(buf, 0, h, 0);
  cr_assert_null(tfw__safetensors_parse_buffer(buf, len));
  th_expect_error(tfw_last_status(), TFW_EFORMAT, "more than 1048576 entries", "cap");
  free(buf);
  free(h);
}

/* Every strict prefix fails cleanly; every single-byte change loads or fails cleanly. */
Test(safetensors, truncation_and_bitflip_sweep) {
  if (!testdata_present()) cr_skip_test("../shared/testdata missing: skipped");
  size_t len;
  uint8_t *orig = th_read_file(TESTDATA "/safetensors/model.safetensors", &len);
  uint8_t *buf = malloc(len);
  for (size_t k = 0; k < len; k++) {
    memcpy(buf, orig, k);
    tfw_safetensors *st = tfw__safetensors_parse_buffer(buf, k);
    cr_assert_null(st, "prefix of %zu bytes parsed", k);
    cr_assert_eq(tfw_last_status(), TFW_EFORMAT, "prefix %zu: %s", k, tfw_last_error());
  }
  int ok = 0;
  static const uint8_t flips[] = {0x01, 0x80, 0xFF, 0x20};
  for (size_t k = 0; k < len; k++)
    for (size_t fl = 0; fl < sizeof flips; fl++) {
      memcpy(buf, orig, len);
      buf[k] ^= flips[fl];
      tfw_safetensors *st = tfw__safetensors_parse_buffer(buf, len);
      if (!st) {
        cr_assert(tfw_last_status() == TFW_EFORMAT && tfw_last_error()[0], "flip %zu: %s", k,
                  tfw_last_error());
        continue;
      }
      ok++;
      for (int i = 0; i < tfw_safetensors_count(st); i++) {
        tfw_tensor *t = tfw_safetensors_get(st, tfw_safetensors_name(st, i));
        if (t) {
          char *s = tfw_tensor_format(t); /* touch every element */
          tfw_string_free(s);
        }
        tfw_release(t);
      }
      tfw_safetensors_close(st);
    }
  cr_assert_gt(ok, 100, "data-byte flips must still load (%d did)", ok);
  free(buf);
  free(orig);
  th_expect_no_leaks();
}

/* sqlite's OOM loop: fail allocation N for N = 1, 2, ... until open + get succeed. */
Test(safetensors, out_of_memory_loop) {
  static uint8_t buf[1 << 12];
  size_t len = build(buf, 0, "{\"__metadata__\":{\"a\":\"b\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                     "\"data_offsets\":[0,8]},\"v\":{\"dtype\":\"U8\",\"shape\":[1],"
                     "\"data_offsets\":[8,9]}}", 9);
  int done = 0;
  for (int64_t k = 1; k < 200 && !done; k++) {
    tfw_memory_fail_at(k, false);
    tfw_safetensors *st = tfw__safetensors_parse_buffer(buf, len);
    tfw_tensor *t = st ? tfw_safetensors_get(st, "w") : NULL;
    tfw_memory_fail_at(0, false);
    if (!st || !t) cr_assert_eq(tfw_last_status(), TFW_ENOMEM, "k=%lld: %s", (long long)k,
                                tfw_last_error());
    done = st && t;
    tfw_release(t);
    tfw_safetensors_close(st);
  }
  cr_assert(done);
  th_expect_no_leaks();
}
