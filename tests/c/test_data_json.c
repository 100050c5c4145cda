/* JSON / JSONL reader. Truth: files written by Python's json module at test time (with the
 * values also dumped as raw f64 / text by Python), ../shared/testdata's csv/expected.json
 * (an object of columns written by another tool), and handcrafted hostile inputs. */
#include <math.h>

#include "formats_util.h"

static const char *GEN_PY =
    "import sys, json, numpy as np\n"
    "d = sys.argv[1]\n"
    "rng = np.random.default_rng(3)\n"
    "recs = []\n"
    "for i in range(25):\n"
    "    r = {'id': i, 'score': float(rng.standard_normal()), 'name': 'n\\u00e9\"%d\\n' % i,\n"
    "         'v3': [float(x) for x in rng.standard_normal(3)], 'm': [[int(x) for x in row] for row in rng.integers(-9, 9, (2, 2))],\n"
    "         'seq': [int(x) for x in rng.integers(0, 100, i % 4)], 'ok': bool(i % 2)}\n"
    "    if i % 5 == 0: r['score'] = None\n"
    "    if i % 7 == 0: del r['name']\n"
    "    recs.append(r)\n"
    "json.dump(recs, open(f'{d}/a.json', 'w'), ensure_ascii=(True))\n"
    "with open(f'{d}/a.jsonl', 'w') as f:\n"
    "    for r in recs: f.write(json.dumps(r, ensure_ascii=False) + '\\n')\n"
    "np.asarray([np.nan if r['score'] is None else r['score'] for r in recs]).tofile(f'{d}/score.f64')\n"
    "np.asarray([r['v3'] for r in recs]).tofile(f'{d}/v3.f64')\n"
    "np.asarray([r['m'] for r in recs], dtype='<f8').tofile(f'{d}/m.f64')\n"
    "np.asarray([x for r in recs for x in r['seq']], dtype='<f8').tofile(f'{d}/seq.f64')\n"
    "np.asarray([len(r['seq']) for r in recs], dtype='<f8').tofile(f'{d}/seqlen.f64')\n"
    "open(f'{d}/names.bin', 'wb').write(b'\\0'.join(r.get('name', '').encode() for r in recs))\n";

static void check(tfw_reader *r, const char *dir, const char *what) {
  char buf[300], path[256];
  tfw_schema_format(tfw_reader_schema(r), buf, sizeof buf);
  cr_expect_str_eq(buf, "{id: int64, score: float64?, v3: float64 [3], m: int64 [2, 2], "
                        "seq: int64 [-1], ok: bool, name: string?}" /* in order of first appearance */, "%s", what);
  cr_assert_eq(tfw_reader_num_records(r), 25);
  tfw_column c[7];
  cr_assert_eq(tfw_reader_read_columns(r, 0, -1, c), TFW_OK, "%s", tfw_last_error());
  size_t n;
  double *ref;
  snprintf(path, sizeof path, "%s/score.f64", dir);
  ref = fu_read_f64(path, &n);
  th_expect_close(c[1].values, TFW_DTYPE_F64, 1, (int64_t[]){25}, ref, 0, 0, "score");
  const bool *m = tfw_tensor_data(c[1].mask);
  for (int i = 0; i < 25; i++) cr_expect_eq(m[i], i % 5 != 0);
  free(ref);
  snprintf(path, sizeof path, "%s/v3.f64", dir);
  ref = fu_read_f64(path, &n);
  th_expect_close(c[2].values, TFW_DTYPE_F64, 2, (int64_t[]){25, 3}, ref, 0, 0, "v3");
  free(ref);
  snprintf(path, sizeof path, "%s/m.f64", dir);
  ref = fu_read_f64(path, &n);
  th_expect_close(c[3].values, TFW_DTYPE_I64, 3, (int64_t[]){25, 2, 2}, ref, 0, 0, "m");
  free(ref);
  snprintf(path, sizeof path, "%s/seq.f64", dir);
  ref = fu_read_f64(path, &n);
  th_expect_close(c[4].values, TFW_DTYPE_I64, 1, (int64_t[]){(int64_t)n}, ref, 0, 0, "seq");
  free(ref);
  snprintf(path, sizeof path, "%s/seqlen.f64", dir);
  ref = fu_read_f64(path, &n);
  const int64_t *so = tfw_tensor_data(c[4].offsets);
  for (int i = 0; i < 25; i++) cr_expect_eq(so[i + 1] - so[i], (int64_t)ref[i], "seq len %d", i);
  free(ref);
  snprintf(path, sizeof path, "%s/names.bin", dir);
  uint8_t *names = th_read_file(path, &n);
  const int64_t *no = tfw_tensor_data(c[6].offsets);
  const bool *nm = tfw_tensor_data(c[6].mask);
  const uint8_t *nb = tfw_tensor_data(c[6].values);
  size_t at = 0;
  for (int i = 0; i < 25; i++) {
    size_t len = strlen((char *)names + at);
    cr_expect(no[i + 1] - no[i] == (int64_t)len && !memcmp(nb + no[i], names + at, len), "name %d", i);
    cr_expect_eq(nm[i], i % 7 != 0);
    at += len + 1;
  }
  free(names);
  const bool *ok = tfw_tensor_data(c[5].values);
  const int64_t *id = tfw_tensor_data(c[0].values);
  for (int i = 0; i < 25; i++) cr_expect(ok[i] == (i % 2) && id[i] == i);
  for (int j = 0; j < 7; j++) tfw_column_clear(&c[j]);
  /* a record through the sample API */
  tfw_sample s = {0};
  cr_assert_eq(tfw_reader_get(r, 3, &s), TFW_OK, "%s", tfw_last_error());
  cr_expect_eq(tfw_tensor_shape(tfw_sample_get(&s, "seq"))[0], 3);
  fu_expect_str(tfw_sample_get(&s, "name"), "n\u00e9\"3\n", "name 3");
  tfw_sample_clear(&s);
}

Test(data_json, python_written_json_and_jsonl) {
  char dir[64], path[256];
  fu_tmpdir(dir, sizeof dir);
  fu_python(dir, GEN_PY);
  snprintf(path, sizeof path, "%s/a.json", dir);
  tfw_reader *r = tfw_reader_open(path, NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_str_eq(tfw_reader_format(r), "json");
  check(r, dir, "json");
  tfw_reader_close(r);
  snprintf(path, sizeof path, "%s/a.jsonl", dir);
  r = tfw_reader_open(path, NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_str_eq(tfw_reader_format(r), "jsonl");
  check(r, dir, "jsonl");
  tfw_reader_close(r);
  fu_rmdir(dir);
  th_expect_no_leaks();
}

Test(data_json, object_of_columns_from_shared_testdata) {
  /* csv/expected.json is {"id": [...], "x": [...], ..., "maybe": [null, 0.25, ...]} */
  tfw_reader *r = tfw_reader_open(FMT_TESTDATA "/csv/expected.json", NULL);
  cr_assert(r, "%s", tfw_last_error());
  char buf[256];
  tfw_schema_format(tfw_reader_schema(r), buf, sizeof buf);
  cr_expect_str_eq(buf, "{id: int64, x: float64, y: int64, name: string, maybe: float64?}");
  /* must agree with the CSV reader on table.csv, written by a different tool */
  tfw_reader *csv = tfw_reader_open(FMT_TESTDATA "/csv/table.csv", NULL);
  cr_assert(csv);
  tfw_column a[5], b[5];
  cr_assert_eq(tfw_reader_read_columns(r, 0, -1, a), TFW_OK);
  cr_assert_eq(tfw_reader_read_columns(csv, 0, -1, b), TFW_OK);
  for (int j = 0; j < 5; j++) {
    bool eq = false;
    if (j == 4) { /* NaN != NaN: compare masks, then the present values */
      tfw_equal(a[j].mask, b[j].mask, &eq);
      cr_expect(eq, "maybe mask");
      const double *x = tfw_tensor_data(a[j].values), *y = tfw_tensor_data(b[j].values);
      for (int i = 0; i < 60; i++) cr_expect(isnan(x[i]) ? isnan(y[i]) : x[i] == y[i]);
    } else {
      tfw_equal(a[j].values, b[j].values, &eq);
      cr_expect(eq, "column %d differs between JSON and CSV", j);
    }
    tfw_column_clear(&a[j]);
    tfw_column_clear(&b[j]);
  }
  tfw_reader_close(r);
  tfw_reader_close(csv);
  th_expect_no_leaks();
}

static void expect_bad(const char *text, const char *name, tfw_status code, const char *needle) {
  tfw_reader *r = tfw_reader_open_memory(text, strlen(text), name, NULL);
  cr_expect_null(r, "accepted: %s", needle);
  tfw_reader_close(r);
  th_expect_error(tfw_last_status(), code, needle, needle);
}

Test(data_json, hostile_and_bad_json) {
  expect_bad("[{\"a\": 1}, {\"a\": \"x\"}]", "b.json", TFW_EFORMAT,
             "field 'a', record 1: is a string, but earlier records hold a number");
  expect_bad("[{\"a\": [[1, 2], [3]]}]", "b.json", TFW_EFORMAT, "ragged nested array");
  expect_bad("[{\"a\": {\"b\": 1}}]", "b.json", TFW_EUNSUPPORTED, "nested objects");
  expect_bad("[{\"a\": [\"s\"]}]", "b.json", TFW_EUNSUPPORTED, "arrays of strings");
  expect_bad("[{\"a\": 1, \"a\": 2}]", "b.json", TFW_EFORMAT, "duplicate key");
  expect_bad("[{\"a\": 1}", "b.json", TFW_EFORMAT, "json: 'b.json': expected ',' or ']'");
  expect_bad("{\"a\": 1}\n{\"a\": 2,}\n", "b.jsonl", TFW_EFORMAT, "jsonl: 'b.jsonl': line 2: expected a string");
  expect_bad("{\"a\": [1, 2]}\n{\"a\": [[1]]}\n", "b.jsonl", TFW_EFORMAT, "rank differs");
  expect_bad("{\"a\": [1], \"b\": [1, 2]}", "b.json", TFW_EFORMAT, "column 'b' has 2 values, the first column has 1");
  expect_bad("[{\"a\": \"\xff\"}]", "b.json", TFW_EFORMAT, "invalid UTF-8 at byte 8");
  expect_bad("[{\"a\": 01}]", "b.json", TFW_EFORMAT, "json: 'b.json'");
  /* nesting bombs */
  char deep[400];
  memset(deep, '[', 200);
  memcpy(deep + 200, "1", 2);
  expect_bad(deep, "b.json", TFW_EFORMAT, "json: 'b.json'");
  char deep2[400] = "[{\"a\": ";
  memset(deep2 + 7, '[', 20);
  strcpy(deep2 + 27, "1");
  expect_bad(deep2, "b.json", TFW_EUNSUPPORTED, "nested deeper than 8");
  /* empty inputs are zero records */
  tfw_reader *r = tfw_reader_open_memory("[]", 2, "e.json", NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_eq(tfw_reader_num_records(r), 0);
  tfw_reader_close(r);
  r = tfw_reader_open_memory("\n\n", 2, "e.jsonl", NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_eq(tfw_reader_num_records(r), 0);
  tfw_reader_close(r);
  th_expect_no_leaks();
}
