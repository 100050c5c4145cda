/* NPY / NPZ reader and the .npy writer. Truth: the files in ../shared/testdata/formats/npy
 * (written by NumPy) with their expected.json, decoded here by /usr/bin/python3; more files
 * written by NumPy at test time (other dtypes, byte orders, format 2.0); NumPy's np.load of
 * the files tenflower writes. Hostile files are handcrafted byte by byte. */
#include "formats_util.h"

/* Python: turns expected.json into <name>.f64 (values, C order) + <name>.meta
 * ("descr ndim dims...") in argv[1]. */
static const char *EXPECTED_PY =
    "import sys, json, numpy as np\n"
    "d = sys.argv[1]\n"
    "e = json.load(open('" FMT_TESTDATA "/npy/expected.json'))\n"
    "for k, v in e.items():\n"
    "    np.asarray(v['values'], dtype='<f8').tofile(f'{d}/{k}.f64')\n"
    "    open(f'{d}/{k}.meta', 'w').write(' '.join([v['dtype'], str(len(v['shape']))] + [str(s) for s in v['shape']]))\n";

static tfw_dtype dtype_of_descr(const char *descr) {
  const char *k = descr + 1;
  if (!strcmp(k, "f4")) return TFW_DTYPE_F32;
  if (!strcmp(k, "f8")) return TFW_DTYPE_F64;
  if (!strcmp(k, "f2")) return TFW_DTYPE_F16;
  if (!strcmp(k, "u1")) return TFW_DTYPE_U8;
  if (!strcmp(k, "i1")) return TFW_DTYPE_I8;
  if (!strcmp(k, "b1")) return TFW_DTYPE_BOOL;
  if (!strcmp(k, "i2") || !strcmp(k, "u2") || !strcmp(k, "i4")) return TFW_DTYPE_I32;
  return TFW_DTYPE_I64; /* i8 u4 u8 */
}

/* Checks t against dir/<name>.f64 + .meta. */
static void expect_case(const tfw_tensor *t, const char *dir, const char *name) {
  char path[300], meta[200], descr[16];
  snprintf(path, sizeof path, "%s/%s.meta", dir, name);
  size_t n;
  uint8_t *m = th_read_file(path, &n);
  snprintf(meta, sizeof meta, "%s", (char *)m);
  free(m);
  int ndim, off;
  int64_t shape[8];
  cr_assert(sscanf(meta, "%15s %d%n", descr, &ndim, &off) == 2);
  for (int i = 0; i < ndim; i++) {
    int k;
    long long v;
    cr_assert(sscanf(meta + off, "%lld%n", &v, &k) == 1);
    shape[i] = v, off += k;
  }
  snprintf(path, sizeof path, "%s/%s.f64", dir, name);
  double *ref = fu_read_f64(path, &n);
  th_expect_close(t, dtype_of_descr(descr), ndim, shape, ref, 0, 0, name);
  free(ref);
}

static const char *CASES[] = {"f32_c", "f64_fortran", "i64_bigendian", "u8_3d",
                              "bool",  "f16",         "scalar",        "empty"};

Test(data_npy, shared_testdata_npy_files) {
  char dir[64];
  fu_tmpdir(dir, sizeof dir);
  fu_python(dir, EXPECTED_PY);
  for (int c = 0; c < 8; c++) {
    char path[256];
    snprintf(path, sizeof path, FMT_TESTDATA "/npy/%s.npy", CASES[c]);
    for (int mm = -1; mm <= 1; mm += 2) { /* read and mapped */
      tfw_reader_options o = tfw_reader_options_default();
      o.mmap = mm;
      tfw_tensor *t = tfw_npy_read(path, &o);
      cr_assert(t, "%s: %s", CASES[c], tfw_last_error());
      expect_case(t, dir, CASES[c]);
      tfw_release(t);
    }
  }
  /* Fortran order is viewed with Fortran strides (no copy) */
  tfw_tensor *f = tfw_npy_read(FMT_TESTDATA "/npy/f64_fortran.npy", NULL);
  cr_assert(f);
  cr_expect(tfw_tensor_strides(f)[0] == 1 && tfw_tensor_strides(f)[1] == 5);
  tfw_release(f);
  fu_rmdir(dir);
  th_expect_no_leaks();
}

Test(data_npy, npy_records_are_rows) {
  tfw_reader *r = tfw_reader_open(FMT_TESTDATA "/npy/f32_c.npy", NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_str_eq(tfw_reader_format(r), "npy");
  char buf[128];
  tfw_schema_format(tfw_reader_schema(r), buf, sizeof buf);
  cr_expect_str_eq(buf, "{array: float32 [4]}");
  cr_assert_eq(tfw_reader_num_records(r), 3);
  tfw_sample s = {0};
  cr_assert_eq(tfw_reader_get(r, 2, &s), TFW_OK);
  const double row2[4] = {0.4536426365375519, -0.4716435372829437, -0.6281847357749939,
                          -1.4690684080123901}; /* expected.json, row 2 */
  th_expect_close(s.tensors[0], TFW_DTYPE_F32, 1, (int64_t[]){4}, row2, 1e-7, 0, "row 2");
  tfw_sample_clear(&s);
  tfw_reader_close(r);
  th_expect_no_leaks();
}

Test(data_npy, npz_stored_and_deflated) {
  char dir[64];
  fu_tmpdir(dir, sizeof dir);
  fu_python(dir, EXPECTED_PY);
  const char *files[] = {FMT_TESTDATA "/npy/bundle.npz", FMT_TESTDATA "/npy/bundle_compressed.npz"};
  for (int fi = 0; fi < 2; fi++) {
    tfw_reader *r = tfw_reader_open(files[fi], NULL);
    cr_assert(r, "%s: %s", files[fi], tfw_last_error());
    cr_expect_str_eq(tfw_reader_format(r), "npz");
    const tfw_schema *sc = tfw_reader_schema(r);
    cr_assert_eq(sc->n, 8);
    /* the arrays disagree on dim 0: one record holding every whole array */
    cr_assert_eq(tfw_reader_num_records(r), 1);
    tfw_sample s = {0};
    cr_assert_eq(tfw_reader_next(r, &s), TFW_OK, "%s", tfw_last_error());
    for (int c = 0; c < 8; c++) {
      tfw_tensor *t = tfw_sample_get(&s, CASES[c]);
      cr_assert(t, "member %s missing", CASES[c]);
      expect_case(t, dir, CASES[c]);
    }
    tfw_sample_clear(&s);
    cr_assert_eq(tfw_reader_next(r, &s), TFW_OK);
    cr_expect_eq(s.n, 0);
    tfw_reader_close(r);
  }
  fu_rmdir(dir);
  th_expect_no_leaks();
}

/* More dtypes and layouts written by NumPy now, plus np.load of what tenflower writes. */
static const char *MORE_PY =
    "import sys, numpy as np\n"
    "d = sys.argv[1]\n"
    "rng = np.random.default_rng(5)\n"
    "cases = {\n"
    "  'i16': rng.integers(-30000, 30000, (3, 5)).astype('<i2'),\n"
    "  'u16_be': rng.integers(0, 65535, (7,)).astype('>u2'),\n"
    "  'u32': rng.integers(0, 2**32 - 1, (2, 2), dtype=np.uint64).astype('<u4'),\n"
    "  'u64': rng.integers(0, 2**62, (4,), dtype=np.uint64).astype('<u8'),\n"
    "  'i32_be_f': np.asfortranarray(rng.integers(-2**31, 2**31 - 1, (2, 3, 4)).astype('>i4')),\n"
    "  'f16_be': rng.standard_normal(6).astype('>f2'),\n"
    "  'f32_fortran3': np.asfortranarray(rng.standard_normal((3, 4, 2)).astype('<f4')),\n"
    "  'i8': rng.integers(-128, 127, (9,)).astype('i1'),\n"
    "}\n"
    "for k, a in cases.items():\n"
    "    np.save(f'{d}/{k}.npy', a)\n"
    "    np.ascontiguousarray(a).astype('<f8').tofile(f'{d}/{k}.f64')\n"
    "    open(f'{d}/{k}.meta', 'w').write(' '.join([a.dtype.str, str(a.ndim)] + [str(s) for s in a.shape]))\n"
    "a = rng.standard_normal((4, 3)).astype('<f8')\n"
    "with open(f'{d}/v2.npy', 'wb') as f:\n"
    "    np.lib.format.write_array(f, a, version=(2, 0))\n"
    "a.tofile(f'{d}/v2.f64'); open(f'{d}/v2.meta', 'w').write('<f8 2 4 3')\n";

Test(data_npy, numpy_written_dtypes_and_versions) {
  char dir[64];
  fu_tmpdir(dir, sizeof dir);
  fu_python(dir, MORE_PY);
  const char *cases[] = {"i16", "u16_be", "u32", "u64", "i32_be_f", "f16_be", "f32_fortran3", "i8", "v2"};
  for (int c = 0; c < 9; c++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.npy", dir, cases[c]);
    tfw_tensor *t = tfw_npy_read(path, NULL);
    cr_assert(t, "%s: %s", cases[c], tfw_last_error());
    expect_case(t, dir, cases[c]);
    tfw_release(t);
  }
  fu_rmdir(dir);
  th_expect_no_leaks();
}

Test(data_npy, writer_roundtrip_through_numpy) {
  char dir[64], path[256], code[2048];
  fu_tmpdir(dir, sizeof dir);
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_I8,
                           TFW_DTYPE_U8,  TFW_DTYPE_I32, TFW_DTYPE_I64, TFW_DTYPE_BOOL};
  const int64_t shapes[4][3] = {{3, 4, 0}, {5, 0, 0}, {0, 0, 0}, {2, 3, 2}};
  const int ndims[4] = {2, 1, 0, 3};
  for (int d = 0; d < 8; d++)
    for (int s = 0; s < 4; s++) {
      /* non-contiguous sources for rank >= 2 */
      tfw_tensor *t = ndims[s] >= 2 ? th_random_strided(dts[d], ndims[s], shapes[s], -50, 50, 11 + d)
                                    : th_random(dts[d], ndims[s], shapes[s], -50, 50, 11 + d);
      snprintf(path, sizeof path, "%s/w%d_%d.npy", dir, d, s);
      cr_assert_eq(tfw_npy_write(path, t), TFW_OK, "%s", tfw_last_error());
      double *v = th_values(t);
      snprintf(path, sizeof path, "%s/w%d_%d.ref", dir, d, s);
      th_write_file(path, v, sizeof(double) * (size_t)tfw_tensor_numel(t));
      free(v);
      /* and our own reader agrees */
      snprintf(path, sizeof path, "%s/w%d_%d.npy", dir, d, s);
      tfw_tensor *back = tfw_npy_read(path, NULL);
      cr_assert(back, "%s", tfw_last_error());
      cr_expect_eq(tfw_tensor_dtype(back), dts[d]);
      bool eq = false;
      cr_expect_eq(tfw_equal(t, back, &eq), TFW_OK);
      cr_expect(eq, "round trip differs for dtype %d shape %d", d, s);
      tfw_release(back);
      tfw_release(t);
    }
  snprintf(code, sizeof code,
           "import sys, numpy as np\n"
           "d = sys.argv[1]\n"
           "names = ['float32','float64','float16','int8','uint8','int32','int64','bool']\n"
           "shapes = [(3, 4), (5,), (), (2, 3, 2)]\n"
           "for i, n in enumerate(names):\n"
           "    for j, s in enumerate(shapes):\n"
           "        a = np.load(f'{d}/w{i}_{j}.npy', allow_pickle=False)\n"
           "        assert a.dtype == np.dtype(n), (i, j, a.dtype)\n"
           "        assert a.shape == s, (i, j, a.shape)\n"
           "        ref = np.fromfile(f'{d}/w{i}_{j}.ref', dtype='<f8').reshape(s)\n"
           "        assert np.array_equal(a.astype('<f8'), ref), (i, j)\n"
           "        raw = open(f'{d}/w{i}_{j}.npy', 'rb').read()\n"
           "        assert (10 + raw[8] + 256 * raw[9]) %% 64 == 0\n");
  fu_python(dir, code);
  tfw_tensor *bf = tfw_zeros(TFW_DTYPE_BF16, 1, (int64_t[]){2});
  snprintf(path, sizeof path, "%s/bf.npy", dir);
  th_expect_error(tfw_npy_write(path, bf), TFW_EDTYPE, "bfloat16", "bf16");
  tfw_release(bf);
  fu_rmdir(dir);
  th_expect_no_leaks();
}

/* Builds an NPY v1 file from a header text and data bytes. */
static size_t make_npy(uint8_t *out, const char *hdr, const void *data, size_t n) {
  size_t h = strlen(hdr);
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  out[8] = (uint8_t)h, out[9] = (uint8_t)(h >> 8);
  memcpy(out + 10, hdr, h);
  if (n) memcpy(out + 10 + h, data, n);
  return 10 + h + n;
}

static void expect_bad(const uint8_t *p, size_t n, tfw_status code, const char *needle) {
  tfw_reader_options o = tfw_reader_options_default();
  o.format = "npy";
  tfw_reader *r = tfw_reader_open_memory(p, n, "bad.npy", &o);
  cr_expect_null(r, "accepted a bad file (%s)", needle);
  tfw_reader_close(r);
  th_expect_error(tfw_last_status(), code, needle, needle);
  cr_expect(strstr(tfw_last_error(), "bad.npy") != NULL, "message lacks the name: %s",
            tfw_last_error());
}

Test(data_npy, hostile_npy) {
  uint8_t buf[4096], data[64] = {0};
  size_t n;
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "needs 12 data bytes, the file has 8 (truncated)");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "trailing data");
  n = make_npy(buf, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "object arrays");
  n = make_npy(buf, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", data, 4);
  expect_bad(buf, n, TFW_EUNSUPPORTED, "structured");
  n = make_npy(buf, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", data, 8);
  expect_bad(buf, n, TFW_EUNSUPPORTED, "not supported");
  n = make_npy(buf, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }\n", "\x01\x02", 2);
  expect_bad(buf, n, TFW_EFORMAT, "bool element 1 is 2");
  n = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "overflows");
  n = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "dim larger");
  n = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", data, 8);
  expect_bad(buf, n, TFW_EUNSUPPORTED, "more than 8 dims");
  n = make_npy(buf, "{'descr': '<f8', 'shape': (1,), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "lacks 'fortran_order'");
  n = make_npy(buf, "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "duplicate key 'descr'");
  n = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "unknown key 'x'");
  n = make_npy(buf, "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (1,), }\n", data, 8);
  expect_bad(buf, n, TFW_EFORMAT, "fortran_order is not True or False");
  n = make_npy(buf, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }\n",
               "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
  expect_bad(buf, n, TFW_EUNSUPPORTED, "above int64's range");
  /* header length beyond the file, bad magic, unknown version */
  n = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", data, 0);
  buf[9] = 0x40;
  expect_bad(buf, n, TFW_EFORMAT, "runs past the end");
  n = make_npy(buf, "{}", data, 0);
  buf[1] = 'X';
  expect_bad(buf, n, TFW_EFORMAT, "bad magic");
  n = make_npy(buf, "{}", data, 0);
  buf[6] = 9;
  expect_bad(buf, n, TFW_EUNSUPPORTED, "version 9.0");
  expect_bad(buf, 5, TFW_EFORMAT, "bad magic");
  th_expect_no_leaks();
}

Test(data_npy, hostile_npz) {
  char dir[64], path[256];
  fu_tmpdir(dir, sizeof dir);
  /* a deflate bomb member, a non-npy member, a corrupted CRC, a truncated archive */
  fu_python(dir,
            "import sys, zipfile, io, numpy as np\n"
            "d = sys.argv[1]\n"
            "with zipfile.ZipFile(f'{d}/other.npz', 'w') as z:\n"
            "    z.writestr('readme.txt', 'hello')\n"
            "np.savez(f'{d}/ok.npz', a=np.arange(10, dtype='<i4'))\n"
            "raw = bytearray(open(f'{d}/ok.npz', 'rb').read())\n"
            "i = raw.find(b'\\x93NUMPY')\n"
            "raw[i + 130] ^= 0xFF\n"
            "open(f'{d}/crc.npz', 'wb').write(raw)\n"
            "open(f'{d}/trunc.npz', 'wb').write(open(f'{d}/ok.npz', 'rb').read()[:100])\n"
            "with zipfile.ZipFile(f'{d}/bomb.npz', 'w', zipfile.ZIP_DEFLATED) as z:\n"
            "    z.writestr('a.npy', b'\\x93NUMPY\\x01\\x00' + b' ' * (200 << 20))\n");
  struct { const char *f; tfw_status code; const char *needle; } cases[] = {
      {"other.npz", TFW_EFORMAT, "'readme.txt' is not a .npy"},
      {"crc.npz", TFW_EFORMAT, "CRC"},
      {"trunc.npz", TFW_EFORMAT, "not a valid zip"},
      {"bomb.npz", TFW_EFORMAT, "claims 209715208 bytes"},
  };
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, cases[i].f);
    tfw_reader_options o = tfw_reader_options_default();
    if (i == 3) o.max_bytes = 64 << 20;
    tfw_reader *r = tfw_reader_open(path, &o);
    cr_expect_null(r, "%s accepted", cases[i].f);
    tfw_reader_close(r);
    th_expect_error(tfw_last_status(), cases[i].code, cases[i].needle, cases[i].f);
  }
  snprintf(path, sizeof path, "%s/ok.npz", dir);
  tfw_reader *r = tfw_reader_open(path, NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_eq(tfw_reader_num_records(r), 10); /* one 1-d array: records are its elements */
  tfw_reader_close(r);
  fu_rmdir(dir);
  th_expect_no_leaks();
}
