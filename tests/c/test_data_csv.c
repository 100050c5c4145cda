/* CSV reader. Truth: ../shared/testdata/formats/csv (written by Python's csv module / pandas,
 * with expected.json decoded here by /usr/bin/python3), files written at test time by
 * Python's csv module, and handcrafted hostile inputs. */
#include <math.h>

#include "formats_util.h"

/* expected.json -> <col>.f64 (NaN for null) and name.txt (one value per line) */
static const char *EXPECTED_PY =
    "import sys, json, numpy as np\n"
    "d = sys.argv[1]\n"
    "e = json.load(open('" FMT_TESTDATA "/csv/expected.json'))\n"
    "for k in ['id', 'x', 'y', 'maybe']:\n"
    "    np.asarray([np.nan if v is None else v for v in e[k]], dtype='<f8').tofile(f'{d}/{k}.f64')\n"
    "open(f'{d}/name.txt', 'w').write('\\n'.join(e['name']) + '\\n')\n";

static void check_table(tfw_reader *r, const char *dir, const char *what) {
  const tfw_schema *s = tfw_reader_schema(r);
  char buf[256];
  tfw_schema_format(s, buf, sizeof buf);
  cr_expect_str_eq(buf, "{id: int64, x: float64, y: int64, name: string, maybe: float64?}", "%s", what);
  cr_assert_eq(tfw_reader_num_records(r), 60, "%s", what);
  tfw_column cols[5];
  cr_assert_eq(tfw_reader_read_columns(r, 0, -1, cols), TFW_OK, "%s: %s", what, tfw_last_error());
  const char *num[] = {"id", "x", "y", NULL, "maybe"};
  const tfw_dtype dts[] = {TFW_DTYPE_I64, TFW_DTYPE_F64, TFW_DTYPE_I64, 0, TFW_DTYPE_F64};
  for (int j = 0; j < 5; j++) {
    if (!num[j]) continue;
    char path[256];
    size_t n;
    snprintf(path, sizeof path, "%s/%s.f64", dir, num[j]);
    double *ref = fu_read_f64(path, &n);
    th_expect_close(cols[j].values, dts[j], 1, (int64_t[]){60}, ref, 0, 0, num[j]);
    if (j == 4) {
      cr_assert(cols[4].mask, "maybe has no mask");
      const bool *m = tfw_tensor_data(cols[4].mask);
      for (int i = 0; i < 60; i++) cr_expect_eq(m[i], !isnan(ref[i]), "mask[%d]", i);
    } else {
      cr_expect_null(cols[j].mask, "%s has a mask", num[j]);
    }
    free(ref);
  }
  char path[256];
  size_t n;
  snprintf(path, sizeof path, "%s/name.txt", dir);
  char *names = (char *)th_read_file(path, &n), *save = NULL, *line = strtok_r(names, "\n", &save);
  const int64_t *o = tfw_tensor_data(cols[3].offsets);
  const char *bytes = tfw_tensor_data(cols[3].values);
  for (int i = 0; i < 60; i++, line = strtok_r(NULL, "\n", &save)) {
    cr_assert(line);
    cr_expect(o[i + 1] - o[i] == (int64_t)strlen(line) && !memcmp(bytes + o[i], line, strlen(line)),
              "%s: name[%d] = '%.*s', want '%s'", what, i, (int)(o[i + 1] - o[i]), bytes + o[i], line);
  }
  free(names);
  for (int j = 0; j < 5; j++) tfw_column_clear(&cols[j]);
  /* records: row 0 as a sample */
  tfw_sample rec = {0};
  cr_assert_eq(tfw_reader_get(r, 0, &rec), TFW_OK, "%s", tfw_last_error());
  fu_expect_str(tfw_sample_get(&rec, "name"), "he said \"hi\", then left", "row 0 name");
  double v;
  cr_expect_eq(tfw_item(tfw_sample_get(&rec, "maybe"), &v), TFW_OK);
  cr_expect(isnan(v), "missing maybe should be NaN");
  tfw_sample_clear(&rec);
}

Test(data_csv, shared_testdata_plain_gzip_semicolon) {
  char dir[64];
  fu_tmpdir(dir, sizeof dir);
  fu_python(dir, EXPECTED_PY);
  tfw_reader *r = tfw_reader_open(FMT_TESTDATA "/csv/table.csv", NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_str_eq(tfw_reader_format(r), "csv");
  check_table(r, dir, "table.csv");
  tfw_reader_close(r);
  r = tfw_reader_open(FMT_TESTDATA "/csv/table.csv.gz", NULL);
  cr_assert(r, "%s", tfw_last_error());
  check_table(r, dir, "table.csv.gz");
  tfw_reader_close(r);
  /* ';' guessed from the header, and given */
  r = tfw_reader_open(FMT_TESTDATA "/csv/table_semicolon.csv", NULL);
  cr_assert(r, "%s", tfw_last_error());
  check_table(r, dir, "table_semicolon.csv (guessed)");
  tfw_reader_close(r);
  tfw_reader_options o = tfw_reader_options_default();
  o.delimiter = ';';
  r = tfw_reader_open(FMT_TESTDATA "/csv/table_semicolon.csv", &o);
  cr_assert(r, "%s", tfw_last_error());
  check_table(r, dir, "table_semicolon.csv (given)");
  tfw_reader_close(r);
  fu_rmdir(dir);
  th_expect_no_leaks();
}

Test(data_csv, given_types_selection_stacking_and_loader) {
  tfw_field types[] = {{.name = "y", .dtype = TFW_DTYPE_I32},
                       {.name = "x", .dtype = TFW_DTYPE_F32},
                       {.name = "id", .dtype = TFW_DTYPE_U8, .is_string = true, .ndim = 1, .shape = {-1}}};
  tfw_reader_options o = tfw_reader_options_default();
  o.types = &(tfw_schema){3, types};
  tfw_reader *r = tfw_reader_open(FMT_TESTDATA "/csv/table.csv", &o);
  cr_assert(r, "%s", tfw_last_error());
  char buf[256];
  tfw_schema_format(tfw_reader_schema(r), buf, sizeof buf);
  cr_expect_str_eq(buf, "{id: string, x: float32, y: int32, name: string, maybe: float64?}");
  tfw_sample rec = {0};
  cr_assert_eq(tfw_reader_get(r, 1, &rec), TFW_OK);
  fu_expect_str(tfw_sample_get(&rec, "id"), "1", "id as text");
  double v;
  tfw_item(tfw_sample_get(&rec, "y"), &v);
  cr_expect_eq(v, 37);
  tfw_item(tfw_sample_get(&rec, "x"), &v);
  cr_expect_eq(v, (double)(float)0.5795410938016339);
  tfw_sample_clear(&rec);
  tfw_reader_close(r);
  /* selection + stacking: features = [x, y, maybe] as f32, then name */
  o = tfw_reader_options_default();
  o.columns = (const char *[]){"x", "name", "y", "maybe"};
  o.n_columns = 4;
  o.stack_numeric = true;
  r = tfw_reader_open(FMT_TESTDATA "/csv/table.csv", &o);
  cr_assert(r, "%s", tfw_last_error());
  tfw_schema_format(tfw_reader_schema(r), buf, sizeof buf);
  cr_expect_str_eq(buf, "{features: float32 [3]?, name: string}");
  tfw_dataset *ds = tfw_dataset_from_reader(r);
  cr_assert(ds);
  tfw_loader_options lo = tfw_loader_options_default();
  lo.batch_size = 60, lo.pad = true;
  tfw_loader *l = tfw_loader_new(ds, &lo);
  tfw_sample b = {0};
  cr_assert_eq(tfw_loader_next(l, &b), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *feat = tfw_sample_get(&b, "features");
  cr_assert(feat);
  cr_expect(tfw_tensor_shape(feat)[0] == 60 && tfw_tensor_shape(feat)[1] == 3);
  const float *fp = tfw_tensor_data(feat);
  cr_expect_eq(fp[3 * 1 + 0], (float)0.5795410938016339);
  cr_expect_eq(fp[3 * 1 + 1], 37.0f);
  cr_expect_eq(fp[3 * 1 + 2], 0.25f);
  cr_expect(isnan(fp[3 * 0 + 2]));
  tfw_sample_clear(&b);
  tfw_loader_free(l);
  tfw_dataset_release(ds);
  /* unknown column */
  o.columns = (const char *[]){"nope"};
  o.n_columns = 1;
  cr_expect_null(tfw_reader_open(FMT_TESTDATA "/csv/table.csv", &o));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "no field 'nope' to select (the schema is {id: int64", "select");
  th_expect_no_leaks();
}

Test(data_csv, python_csv_module_roundtrip) {
  char dir[64], path[128];
  fu_tmpdir(dir, sizeof dir);
  /* awkward text written by Python's csv module: newlines, quotes, delimiters, CRLF endings,
   * unicode, empty strings (quoted) vs missing; no header; tab delimiter */
  fu_python(dir,
            "import sys, csv\n"
            "d = sys.argv[1]\n"
            "rows = [['a\\nb', '1', ''], ['q\"uote', '-2', '3.5'], ['tab\\there', '9223372036854775807', 'nan'],\n"
            "        ['\u00e9t\u00e9', '0', '-inf'], ['', '7', '1e300']]\n"
            "with open(f'{d}/t.tsv', 'w', newline='') as f:\n"
            "    w = csv.writer(f, delimiter='\\t', quoting=csv.QUOTE_MINIMAL, lineterminator='\\r\\n')\n"
            "    for r in rows: w.writerow(r)\n"
            "with open(f'{d}/t.tsv', 'a', newline='') as f: f.write('\"\"\\t5\\t2\\r\\n')\n");
  snprintf(path, sizeof path, "%s/t.tsv", dir);
  tfw_reader_options o = tfw_reader_options_default();
  o.header = -1;
  tfw_reader *r = tfw_reader_open(path, &o);
  cr_assert(r, "%s", tfw_last_error());
  char buf[256];
  tfw_schema_format(tfw_reader_schema(r), buf, sizeof buf);
  cr_expect_str_eq(buf, "{c0: string?, c1: int64, c2: float64?}");
  cr_assert_eq(tfw_reader_num_records(r), 6);
  tfw_column c[3];
  cr_assert_eq(tfw_reader_read_columns(r, 0, -1, c), TFW_OK, "%s", tfw_last_error());
  const char *want[] = {"a\nb", "q\"uote", "tab\there", "\u00e9t\u00e9", "", ""};
  const int64_t *off = tfw_tensor_data(c[0].offsets);
  const char *bytes = tfw_tensor_data(c[0].values);
  const bool *m0 = tfw_tensor_data(c[0].mask);
  for (int i = 0; i < 6; i++)
    cr_expect(off[i + 1] - off[i] == (int64_t)strlen(want[i]) &&
                  !memcmp(bytes + off[i], want[i], strlen(want[i])), "c0[%d]", i);
  cr_expect(m0[0] && m0[3] && !m0[4] && m0[5], "missing vs quoted empty");
  const int64_t *c1 = tfw_tensor_data(c[1].values);
  cr_expect(c1[0] == 1 && c1[1] == -2 && c1[2] == INT64_MAX && c1[4] == 7);
  const double *c2 = tfw_tensor_data(c[2].values);
  const bool *m2 = tfw_tensor_data(c[2].mask);
  cr_expect(isnan(c2[0]) && !m2[0] && c2[1] == 3.5 && isnan(c2[2]) && m2[2] && c2[3] == -INFINITY &&
            c2[4] == 1e300 && c2[5] == 2);
  for (int j = 0; j < 3; j++) tfw_column_clear(&c[j]);
  tfw_reader_close(r);
  fu_rmdir(dir);
  th_expect_no_leaks();
}

static void expect_bad(const char *text, const tfw_reader_options *opt, tfw_status code,
                       const char *needle) {
  tfw_reader *r = tfw_reader_open_memory(text, strlen(text), "bad.csv", opt);
  cr_expect_null(r, "accepted: %s", needle);
  tfw_reader_close(r);
  th_expect_error(tfw_last_status(), code, needle, needle);
}

Test(data_csv, hostile_and_bad_csv) {
  expect_bad("a,b\n1,2\n3\n", NULL, TFW_EFORMAT, "csv: 'bad.csv': line 3: 1 fields, the header has 2");
  expect_bad("a,b\n1,\"2\n", NULL, TFW_EFORMAT, "line 2: quoted field never closes");
  expect_bad("a,b\n1,\"2\"x\n", NULL, TFW_EFORMAT, "unexpected character 'x' after a closing quote");
  expect_bad("", NULL, TFW_EFORMAT, "empty file");
  expect_bad("a,a\n1,2\n", NULL, TFW_EFORMAT, "duplicate field name 'a'");
  tfw_field ty[] = {{.name = "b", .dtype = TFW_DTYPE_U8}};
  tfw_reader_options o = tfw_reader_options_default();
  o.types = &(tfw_schema){1, ty};
  expect_bad("a,b\n1,2\n3,300\n", &o, TFW_EFORMAT, "line 3, column 'b': '300' is not a uint8");
  ty[0].name = "zz";
  expect_bad("a,b\n1,2\n", &o, TFW_EVALUE, "column 'zz', which the file does not have");
  /* header only: zero records, types default to float64 */
  tfw_reader *r = tfw_reader_open_memory("a,b\r\n", 5, "h.csv", NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_eq(tfw_reader_num_records(r), 0);
  tfw_sample s = {0};
  cr_expect_eq(tfw_reader_next(r, &s), TFW_OK);
  cr_expect_eq(s.n, 0);
  tfw_reader_close(r);
  /* more than 8 columns: records refuse, columns work */
  const char *wide = "a,b,c,d,e,f,g,h,i\n1,2,3,4,5,6,7,8,9\n";
  r = tfw_reader_open_memory(wide, strlen(wide), "w.csv", NULL);
  cr_assert(r);
  th_expect_error(tfw_reader_get(r, 0, &s), TFW_EVALUE, "has 9 fields, a record (tfw_sample) holds at most 8", "wide");
  tfw_column c[9];
  cr_expect_eq(tfw_reader_read_columns(r, 0, 1, c), TFW_OK);
  for (int j = 0; j < 9; j++) {
    int64_t v;
    tfw_item_i64(c[j].values, &v);
    cr_expect_eq(v, j + 1);
    tfw_column_clear(&c[j]);
  }
  tfw_reader_close(r);
  th_expect_no_leaks();
}
