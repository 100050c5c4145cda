/* The unified reader's generic part: format detection, schema formatting and validation,
 * field selection, records vs columns, the dataset wrapper, the plain text format. Truth
 * for text: the bytes written here and the line rule of docs/data.md. */
#include "formats_util.h"

Test(data_reader, text_lines_records_and_columns) {
  char dir[64], path[128];
  fu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/a.txt", dir);
  const char *txt = "alpha\r\n\nbeta gamma\nlast";
  th_write_file(path, txt, strlen(txt));
  tfw_reader *r = tfw_reader_open(path, NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_expect_str_eq(tfw_reader_format(r), "text");
  const tfw_schema *s = tfw_reader_schema(r);
  cr_assert_eq(s->n, 1);
  cr_expect_str_eq(s->fields[0].name, "line");
  cr_expect(s->fields[0].is_string);
  cr_assert_eq(tfw_reader_num_records(r), 4);
  const char *want[] = {"alpha", "", "beta gamma", "last"};
  tfw_sample rec = {0};
  int k = 0;
  while (tfw_reader_next(r, &rec) == TFW_OK && rec.n > 0) {
    cr_assert(k < 4);
    fu_expect_str(tfw_sample_get(&rec, "line"), want[k++], "line");
  }
  cr_expect_eq(k, 4);
  cr_assert_eq(tfw_reader_get(r, 2, &rec), TFW_OK);
  fu_expect_str(rec.tensors[0], "beta gamma", "get(2)");
  th_expect_error(tfw_reader_get(r, 4, &rec), TFW_EINDEX, "out of range", "get(4)");
  tfw_column col;
  cr_assert_eq(tfw_reader_read_columns(r, 1, 3, &col), TFW_OK, "%s", tfw_last_error());
  const int64_t *o = tfw_tensor_data(col.offsets);
  cr_expect(o[0] == 0 && o[1] == 0 && o[2] == 10 && o[3] == 14, "offsets %lld %lld %lld %lld",
            (long long)o[0], (long long)o[1], (long long)o[2], (long long)o[3]);
  fu_expect_str(col.values, "beta gammalast", "column bytes");
  cr_expect_null(col.mask);
  tfw_column_clear(&col);
  tfw_sample_clear(&rec);
  tfw_reader_close(r);
  /* whole text: one record, all bytes */
  tfw_reader_options o2 = tfw_reader_options_default();
  o2.text_whole = true;
  r = tfw_reader_open(path, &o2);
  cr_assert(r, "%s", tfw_last_error());
  cr_assert_eq(tfw_reader_num_records(r), 1);
  cr_assert_eq(tfw_reader_get(r, 0, &rec), TFW_OK);
  fu_expect_str(tfw_sample_get(&rec, "text"), txt, "whole");
  tfw_sample_clear(&rec);
  tfw_reader_close(r);
  fu_rmdir(dir);
  th_expect_no_leaks();
}

Test(data_reader, detection_and_errors) {
  tfw_reader *r = tfw_reader_open("/nonexistent/x.txt", NULL);
  cr_expect_null(r);
  th_expect_error(tfw_last_status(), TFW_EIO, "/nonexistent/x.txt", "missing file");
  tfw_reader_options o = tfw_reader_options_default();
  o.format = "nosuch";
  r = tfw_reader_open_memory("abc", 3, "m", &o);
  cr_expect_null(r);
  th_expect_error(tfw_last_status(), TFW_EUNSUPPORTED, "unknown format 'nosuch' (known: ", "bad format");
  /* binary bytes, no name: nothing recognises them */
  const uint8_t bin[4] = {0, 1, 2, 0};
  r = tfw_reader_open_memory(bin, 4, "blob.bin", NULL);
  cr_expect_null(r);
  th_expect_error(tfw_last_status(), TFW_EUNSUPPORTED, "not recognised", "unknown bytes");
  /* size cap */
  o = tfw_reader_options_default();
  o.max_bytes = 2;
  r = tfw_reader_open_memory("abcd", 4, "x.txt", &o);
  cr_expect_null(r);
  th_expect_error(tfw_last_status(), TFW_EFORMAT, "above max_bytes", "cap");
  int n;
  const char *const *names = tfw_reader_formats(&n);
  cr_expect(n >= 1);
  bool has_text = false;
  for (int i = 0; i < n; i++) has_text |= !strcmp(names[i], "text");
  cr_expect(has_text);
  th_expect_no_leaks();
}

Test(data_reader, schema_validate_messages) {
  tfw_field actual_f[] = {
      {.name = "id", .dtype = TFW_DTYPE_I64, .ndim = 0},
      {.name = "x", .dtype = TFW_DTYPE_F64, .ndim = 1, .shape = {3}},
      {.name = "name", .dtype = TFW_DTYPE_U8, .ndim = 1, .shape = {-1}, .is_string = true,
       .nullable = true},
  };
  tfw_schema actual = {3, actual_f};
  char buf[256];
  tfw_schema_format(&actual, buf, sizeof buf);
  cr_expect_str_eq(buf, "{id: int64, x: float64 [3], name: string?}");
  tfw_field e1[] = {{.name = "x", .dtype = TFW_DTYPE_F32, .ndim = 1, .shape = {3}}};
  th_expect_error(tfw_schema_validate(&(tfw_schema){1, e1}, &actual, TFW_SCHEMA_ALLOW_EXTRA),
                  TFW_EDTYPE, "schema: field 'x': expected float32 [3], got float64 [3]", "dtype");
  tfw_field e2[] = {{.name = "x", .dtype = TFW_DTYPE_F64, .ndim = 1, .shape = {4}}};
  th_expect_error(tfw_schema_validate(&(tfw_schema){1, e2}, &actual, TFW_SCHEMA_ALLOW_EXTRA),
                  TFW_ESHAPE, "expected float64 [4], got float64 [3] (dim 0 differs)", "shape");
  tfw_field e3[] = {{.name = "label", .dtype = TFW_DTYPE_I64}};
  th_expect_error(tfw_schema_validate(&(tfw_schema){1, e3}, &actual, TFW_SCHEMA_ALLOW_EXTRA),
                  TFW_EVALUE, "field 'label' is missing (got {id: int64", "missing");
  tfw_field e4[] = {{.name = "x", .dtype = TFW_DTYPE_COUNT, .ndim = 1, .shape = {-1}},
                    {.name = "id", .dtype = TFW_DTYPE_I64}};
  cr_expect_eq(tfw_schema_validate(&(tfw_schema){2, e4}, &actual, TFW_SCHEMA_ALLOW_EXTRA), TFW_OK,
               "%s", tfw_last_error());
  th_expect_error(tfw_schema_validate(&(tfw_schema){2, e4}, &actual, 0), TFW_EVALUE,
                  "unexpected field 'name'", "extra");
  tfw_field e5[] = {{.name = "name", .dtype = TFW_DTYPE_U8, .ndim = 1, .shape = {-1},
                     .is_string = true}};
  th_expect_error(tfw_schema_validate(&(tfw_schema){1, e5}, &actual, TFW_SCHEMA_ALLOW_EXTRA),
                  TFW_EVALUE, "field 'name': expected string, got string?", "nullable");
  tfw_field e6[] = {{.name = "id", .dtype = TFW_DTYPE_U8, .ndim = 1, .shape = {-1},
                     .is_string = true}};
  th_expect_error(tfw_schema_validate(&(tfw_schema){1, e6}, &actual, TFW_SCHEMA_ALLOW_EXTRA),
                  TFW_EDTYPE, "field 'id': expected string, got int64", "string-ness");
  th_expect_no_leaks();
}

Test(data_reader, dataset_and_loader_over_text) {
  char text[2000];
  size_t k = 0;
  for (int i = 0; i < 100; i++) k += (size_t)snprintf(text + k, sizeof text - k, "%d\n", i);
  tfw_reader *r = tfw_reader_open_memory(text, k, "n.txt", NULL);
  cr_assert(r, "%s", tfw_last_error());
  tfw_dataset *ds = tfw_dataset_from_reader(r);
  cr_assert(ds, "%s", tfw_last_error());
  cr_expect(!tfw_dataset_is_iterable(ds));
  cr_assert_eq(tfw_dataset_len(ds), 100);
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 16, o.shuffle = true, o.seed = 3, o.num_workers = 2, o.pad = true;
  tfw_loader *l = tfw_loader_new(ds, &o);
  cr_assert(l, "%s", tfw_last_error());
  bool seen[100] = {0};
  tfw_sample b = {0};
  int batches = 0;
  while (tfw_loader_next(l, &b) == TFW_OK && b.n > 0) {
    tfw_tensor *lines = tfw_sample_get(&b, "line"), *mask = tfw_sample_get(&b, "line_mask");
    cr_assert(lines);
    int64_t bs = tfw_tensor_shape(lines)[0], w = tfw_tensor_shape(lines)[1];
    const uint8_t *p = tfw_tensor_data(lines);
    const bool *m = mask ? tfw_tensor_data(mask) : NULL; /* no mask: all the same length */
    for (int64_t i = 0; i < bs; i++) {
      int v = 0;
      for (int64_t j = 0; j < w && (!m || m[i * w + j]); j++) v = v * 10 + (p[i * w + j] - '0');
      cr_assert(v >= 0 && v < 100 && !seen[v], "value %d", v);
      seen[v] = true;
    }
    batches++;
    tfw_sample_clear(&b);
  }
  cr_expect_eq(batches, 7);
  for (int i = 0; i < 100; i++) cr_expect(seen[i], "missing %d", i);
  tfw_loader_free(l);
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}
