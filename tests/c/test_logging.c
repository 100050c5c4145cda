#define _GNU_SOURCE /* memmem */
/* Run logging: CRC-32C (RFC 3720 vectors, table vs SSE4.2), TFRecord reader (PyTorch's
 * event file, every single-byte corruption and truncation), TensorBoard writer (read back
 * by an independent Python parser that is first validated on PyTorch's file), CSV log
 * (read back by Python's csv module), progress bar (LINES through a file, BAR through a
 * pty, both on a fake clock) and the HTML report (SVG data checked against the CSV in
 * Python with xml.etree). The Python checkers live in tests/py/ and share no code with
 * tenflower. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pty.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/cpu.h"
#include "harness.h"
#include "io/tfrecord.h"

#define PY "/usr/bin/python3 " TFW_SOURCE_DIR "/tests/py/"
#define PT_EVENTS "/work/shared/testdata/formats/tfrecord/scalars.tfevents"
#define PT_JSON "/work/shared/testdata/formats/tfrecord/scalars.json"

static char *tmpdir(void) {
  static char d[64];
  strcpy(d, "/tmp/tfw_logtest_XXXXXX");
  cr_assert(mkdtemp(d), "mkdtemp: %s", strerror(errno));
  return d;
}

static void rmrf(const char *d) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  cr_assert(system(cmd) == 0);
}

/* Runs a shell command built like printf; asserts exit status 0. */
static void run_ok(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  cr_assert(rc == 0, "command failed (%d): %s", rc, cmd);
}


/* ---- CRC-32C ------------------------------------------------------------------------------ */

Test(logging, crc32c_rfc3720_vectors) {
  uint8_t buf[48];
  struct {
    int kind;
    uint32_t want;
  } v[] = {{0, 0x8A9136AA}, {1, 0x62A8AB43}, {2, 0x46DD794E}, {3, 0x113FDB5C}};
  for (int k = 0; k < 4; k++) {
    for (int i = 0; i < 32; i++)
      buf[i] = (uint8_t)(v[k].kind == 0 ? 0 : v[k].kind == 1 ? 0xFF : v[k].kind == 2 ? i : 31 - i);
    cr_expect_eq(tfw__crc32c_sw(0, buf, 32), v[k].want, "sw vector %d: %08x", k,
                 tfw__crc32c_sw(0, buf, 32));
    cr_expect_eq(tfw__crc32c(0, buf, 32), v[k].want, "vector %d: %08x", k, tfw__crc32c(0, buf, 32));
  }
  /* RFC 3720 B.4: an iSCSI SCSI Read (10) command PDU */
  static const uint8_t pdu[48] = {0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0x14, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x14, 0, 0, 0, 0x18,
                                  0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0};
  cr_expect_eq(tfw__crc32c(0, pdu, 48), 0xD9963A56u, "%08x", tfw__crc32c(0, pdu, 48));
  cr_expect_eq(tfw__crc32c_sw(0, pdu, 48), 0xD9963A56u);
  cr_expect_eq(tfw__crc32c(0, "123456789", 9), 0xE3069283u);
  cr_expect_eq(tfw__crc32c(0, "", 0), 0u);
  th_expect_no_leaks();
}

Test(logging, crc32c_hw_matches_table_and_chains) {
  uint64_t rng = 11;
  uint8_t buf[1100];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)th_rand_u64(&rng);
  if (!tfw__cpu()->sse42) cr_log_warn("no SSE4.2: only the table path is tested");
  for (int t = 0; t < 300; t++) {
    size_t off = th_rand_u64(&rng) % 64, n = th_rand_u64(&rng) % 1000;
    uint32_t a = tfw__crc32c(0, buf + off, n), b = tfw__crc32c_sw(0, buf + off, n);
    cr_assert_eq(a, b, "offset %zu length %zu: %08x vs %08x", off, n, a, b);
    size_t cut = n ? th_rand_u64(&rng) % n : 0; /* crc of a concatenation, in two calls */
    cr_assert_eq(tfw__crc32c(tfw__crc32c(0, buf + off, cut), buf + off + cut, n - cut), a);
  }
  cr_expect_eq(tfw__crc32c_mask(0), 0xa282ead8u);
  th_expect_no_leaks();
}

/* ---- TFRecord reader ------------------------------------------------------------------------ */

/* Reads every record; returns the count, or -1 on error (status in *st). */
static int read_all(tfw_tfrecord_reader *r, tfw_status *st) {
  int n = 0;
  for (;;) {
    const uint8_t *d;
    size_t len;
    *st = tfw_tfrecord_reader_next(r, &d, &len);
    if (*st) return -1;
    if (!d) return n;
    n++;
  }
}

Test(logging, tfrecord_reads_pytorch_file) {
  tfw_tfrecord_reader *r = tfw_tfrecord_reader_open(PT_EVENTS);
  cr_assert(r, "%s", tfw_last_error());
  const uint8_t *d;
  size_t len;
  cr_assert_eq(tfw_tfrecord_reader_next(r, &d, &len), TFW_OK);
  cr_assert(d && len == 0x48 && memmem(d, len, "brain.Event:2", 13), "len %zu", len);
  tfw_status st;
  cr_expect_eq(read_all(r, &st), 5, "five scalar events follow");
  cr_expect_eq(tfw_tfrecord_reader_next(r, &d, &len), TFW_OK, "end stays end");
  cr_expect(d == NULL && len == 0);
  tfw_tfrecord_reader_close(r);
  th_expect_error(tfw_tfrecord_reader_open("/nonexistent/x") ? TFW_OK : tfw_last_status(), TFW_EIO,
                  "/nonexistent/x", "open missing");
  tfw_tfrecord_reader_close(NULL);
  th_expect_no_leaks();
}

Test(logging, tfrecord_every_corruption_and_truncation_is_eformat) {
  size_t size;
  uint8_t *file = th_read_file(PT_EVENTS, &size);
  /* record boundaries: walk the lengths (independently of the reader) */
  int boundary[4096] = {0};
  for (size_t off = 0; off < size;) {
    boundary[off] = 1;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | file[off + i];
    off += 16 + n;
  }
  for (size_t pos = 0; pos < size; pos++) {
    for (int bit = 0; bit < 8; bit += 3) {
      uint8_t *m = malloc(size);
      memcpy(m, file, size);
      m[pos] ^= (uint8_t)(1 << bit);
      tfw_tfrecord_reader *r = tfw__tfrecord_reader_memory(m, size);
      tfw_status st;
      int n = read_all(r, &st);
      cr_assert(n == -1 && st == TFW_EFORMAT, "flip at %zu bit %d: n=%d status %s", pos, bit, n,
                tfw_status_name(st));
      cr_assert(strstr(tfw_last_error(), "tfrecord: record"), "%s", tfw_last_error());
      /* sticky */
      const uint8_t *d;
      size_t len;
      cr_assert_eq(tfw_tfrecord_reader_next(r, &d, &len), TFW_EFORMAT);
      tfw_tfrecord_reader_close(r);
      free(m);
    }
  }
  for (size_t cut = 0; cut < size; cut++) {
    uint8_t *m = malloc(cut ? cut : 1);
    memcpy(m, file, cut);
    tfw_tfrecord_reader *r = tfw__tfrecord_reader_memory(m, cut);
    tfw_status st;
    int n = read_all(r, &st);
    if (boundary[cut]) cr_assert(n >= 0 && st == TFW_OK, "cut at boundary %zu: %s", cut, tfw_last_error());
    else cr_assert(n == -1 && st == TFW_EFORMAT && strstr(tfw_last_error(), "truncated"),
                   "cut at %zu: n=%d %s", cut, n, tfw_last_error());
    tfw_tfrecord_reader_close(r);
    free(m);
  }
  /* a huge claimed length with a valid length CRC is rejected before allocating */
  uint8_t huge[16];
  uint64_t big = (uint64_t)1 << 40;
  for (int i = 0; i < 8; i++) huge[i] = (uint8_t)(big >> (8 * i));
  uint32_t c = tfw__crc32c_mask(tfw__crc32c(0, huge, 8));
  for (int i = 0; i < 4; i++) huge[8 + i] = (uint8_t)(c >> (8 * i));
  memset(huge + 12, 0, 4);
  tfw_tfrecord_reader *r = tfw__tfrecord_reader_memory(huge, 16);
  tfw_status st;
  cr_assert_eq(read_all(r, &st), -1);
  th_expect_error(st, TFW_EFORMAT, "exceeds the limit", "huge length");
  tfw_tfrecord_reader_close(r);
  free(file);
  th_expect_no_leaks();
}

/* ---- TensorBoard writer ----------------------------------------------------------------------- */

Test(logging, tfevents_python_parser_decodes_pytorch_file) {
  run_ok(PY "tfevents_check.py selftest " PT_EVENTS " " PT_JSON);
  th_expect_no_leaks();
}

Test(logging, tfevents_written_files_decode_independently) {
  char *dir = tmpdir();
  char run[128];
  snprintf(run, sizeof run, "%s/run1", dir); /* created by the writer */
  time_t t0 = time(NULL);
  tfw_summary_writer *w = tfw_summary_writer_open(run);
  cr_assert(w, "%s", tfw_last_error());
  const char *path = tfw_summary_writer_path(w);
  const char *base = strrchr(path, '/') + 1;
  long long ts = 0;
  cr_assert(sscanf(base, "events.out.tfevents.%10lld.", &ts) == 1, "name %s", base);
  cr_expect(strlen(base) > 31 && base[30] == '.' && llabs(ts - (long long)t0) <= 5, "name %s", base);
  struct {
    const char *tag;
    int64_t step;
    double v;
  } s[] = {{"loss", 0, 0.5},          {"loss", 1, 0.25},   {"train/accuracy", 1, 98.125},
           {"lr", 100, 1e-3},         {"loss", 1000000007, 1.0 / 3}, {"loss", (int64_t)1 << 40, -2.5},
           {"neg_step", -3, 1e30},    {"nan", 5, NAN},     {"tag with spaces/ü", 6, 7}};
  int ns = (int)(sizeof s / sizeof s[0]);
  char jpath[160];
  snprintf(jpath, sizeof jpath, "%s/expected.json", dir);
  FILE *j = fopen(jpath, "w");
  fprintf(j, "[");
  for (int i = 0; i < ns; i++) {
    cr_assert_eq(tfw_summary_writer_add_scalar(w, s[i].tag, s[i].v, s[i].step), TFW_OK, "%s",
                 tfw_last_error());
    char num[32];
    snprintf(num, sizeof num, isnan(s[i].v) ? "NaN" : "%.17g", s[i].v);
    fprintf(j, "%s[\"%s\", %lld, %s]", i ? ", " : "", s[i].tag, (long long)s[i].step, num);
  }
  fprintf(j, "]\n");
  fclose(j);
  /* file is readable while open after a flush (TensorBoard tails growing files) */
  cr_assert_eq(tfw_summary_writer_flush(w), TFW_OK);
  run_ok(PY "tfevents_check.py check '%s' %s", path, jpath);
  /* and the C framing reader agrees on the record count */
  tfw_tfrecord_reader *r = tfw_tfrecord_reader_open(path);
  tfw_status st;
  cr_expect_eq(read_all(r, &st), ns + 1);
  tfw_tfrecord_reader_close(r);
  /* a second writer in the same second gets its own file */
  tfw_summary_writer *w2 = tfw_summary_writer_open(run);
  cr_assert(w2);
  cr_expect_str_neq(tfw_summary_writer_path(w2), path);
  th_expect_error(tfw_summary_writer_add_scalar(w2, "", 1, 1), TFW_EVALUE, "tag length", "empty tag");
  tfw_summary_writer_close(w2);
  tfw_summary_writer_close(w);
  /* a run_dir that cannot be created */
  char bad[200];
  snprintf(bad, sizeof bad, "%s/sub", jpath);
  cr_assert_null(tfw_summary_writer_open(bad));
  th_expect_error(tfw_last_status(), TFW_EIO, "cannot create directory", "run dir under a file");
  rmrf(dir);
  th_expect_no_leaks();
}

/* ---- CSV log ------------------------------------------------------------------------------------ */

static void set_ok(tfw_csv_log *l, const char *c, double v) {
  cr_assert_eq(tfw_csv_log_set(l, c, v), TFW_OK, "%s", tfw_last_error());
}
static void setstr_ok(tfw_csv_log *l, const char *c, const char *v) {
  cr_assert_eq(tfw_csv_log_set_str(l, c, v), TFW_OK, "%s", tfw_last_error());
}
static void end_ok(tfw_csv_log *l) { cr_assert_eq(tfw_csv_log_row_end(l), TFW_OK, "%s", tfw_last_error()); }

Test(logging, csv_declared_columns_quoting_missing_values) {
  char *dir = tmpdir(), path[128];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  const char *cols[] = {"step", "epoch", "loss", "note"};
  tfw_csv_log *l = tfw_csv_log_open(path, 4, cols, 0);
  cr_assert(l, "%s", tfw_last_error());
  set_ok(l, "step", 1), set_ok(l, "loss", 0.5), setstr_ok(l, "note", "hello, \"world\""), end_ok(l);
  set_ok(l, "step", 2), set_ok(l, "epoch", 0), set_ok(l, "loss", 0.1);
  setstr_ok(l, "note", "line\nbreak"), end_ok(l);
  set_ok(l, "step", 3), set_ok(l, "loss", NAN), setstr_ok(l, "note", " padded "), end_ok(l);
  set_ok(l, "step", 4), set_ok(l, "epoch", 1), set_ok(l, "loss", 1e-300), end_ok(l);
  set_ok(l, "step", 5), set_ok(l, "loss", 1.0 / 3), setstr_ok(l, "note", ""), end_ok(l);
  set_ok(l, "step", 6), set_ok(l, "loss", -INFINITY), setstr_ok(l, "note", "ünïcödé");
  /* rows are on disk as soon as they end (flushed), before close */
  run_ok("test $(wc -l < %s) -eq 7", path); /* header + 5 rows + 1 quoted newline */
  end_ok(l);
  th_expect_error(tfw_csv_log_set(l, "accuracy", 1), TFW_EVALUE, "step, epoch, loss, note",
                  "unknown column");
  set_ok(l, "step", 99); /* a started row is dropped at close */
  tfw_csv_log_close(l);
  run_ok(PY "csv_check.py basic %s", path);
  /* shortest exact numbers */
  size_t n;
  char *text = (char *)th_read_file(path, &n);
  cr_expect(strstr(text, "\n2,0,0.1,\"line\nbreak\"\n"), "%s", text);
  cr_expect(strstr(text, "\n5,,0.3333333333333333,\n"), "shortest form of 1/3: %s", text);
  free(text);
  rmrf(dir);
  th_expect_no_leaks();
}

Test(logging, csv_columns_from_first_row_and_errors) {
  char *dir = tmpdir(), path[128];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  tfw_csv_log *l = tfw_csv_log_open(path, 0, NULL, 0);
  cr_assert(l);
  th_expect_error(tfw_csv_log_row_end(l), TFW_ESTATE, "no column", "empty row");
  set_ok(l, "step", 1), set_ok(l, "loss", 2.5), set_ok(l, "lr", 0.1), end_ok(l);
  set_ok(l, "step", 2), set_ok(l, "loss", 2.25), end_ok(l);
  set_ok(l, "step", 3), set_ok(l, "lr", 0.001);
  th_expect_error(tfw_csv_log_set(l, "extra", 1), TFW_EVALUE, "no column 'extra'", "fixed columns");
  end_ok(l);
  tfw_csv_log_close(l);
  run_ok(PY "csv_check.py auto_columns %s", path);
  const char *dup[] = {"a", "b", "a"};
  cr_assert_null(tfw_csv_log_open(path, 3, dup, 0));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "'a' appears twice", "duplicate");
  const char *empty[] = {"a", ""};
  cr_assert_null(tfw_csv_log_open(path, 2, empty, 0));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "column 1", "empty name");
  cr_assert_null(tfw_csv_log_open("/nonexistent/dir/log.csv", 0, NULL, 0));
  th_expect_error(tfw_last_status(), TFW_EIO, "/nonexistent/dir/log.csv", "bad dir");
  rmrf(dir);
  th_expect_no_leaks();
}

Test(logging, csv_append_for_resumed_runs) {
  char *dir = tmpdir(), path[128];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  const char *cols[] = {"step", "loss"};
  /* append to a file that does not exist yet: behaves like a new file */
  tfw_csv_log *l = tfw_csv_log_open(path, 0, NULL, TFW_CSV_APPEND);
  cr_assert(l, "%s", tfw_last_error());
  set_ok(l, "step", 1), set_ok(l, "loss", 0.5), end_ok(l);
  set_ok(l, "step", 2), set_ok(l, "loss", 0.25), end_ok(l);
  tfw_csv_log_close(l);
  l = tfw_csv_log_open(path, 0, NULL, TFW_CSV_APPEND); /* header from the file */
  cr_assert(l, "%s", tfw_last_error());
  th_expect_error(tfw_csv_log_set(l, "lr", 1), TFW_EVALUE, "step, loss", "header from file");
  set_ok(l, "loss", 0.125), set_ok(l, "step", 3), end_ok(l);
  tfw_csv_log_close(l);
  l = tfw_csv_log_open(path, 2, cols, TFW_CSV_APPEND);
  cr_assert(l, "%s", tfw_last_error());
  set_ok(l, "step", 4), set_ok(l, "loss", 0.0625), end_ok(l);
  tfw_csv_log_close(l);
  run_ok(PY "csv_check.py append %s", path);
  const char *other[] = {"step", "accuracy"};
  cr_assert_null(tfw_csv_log_open(path, 2, other, TFW_CSV_APPEND));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "has columns [step,loss]", "mismatch");
  /* a crash left half a row without its newline: appending starts a fresh line */
  FILE *f = fopen(path, "w");
  fputs("step,loss\n1,0.5", f);
  fclose(f);
  l = tfw_csv_log_open(path, 0, NULL, TFW_CSV_APPEND);
  cr_assert(l, "%s", tfw_last_error());
  set_ok(l, "step", 2), set_ok(l, "loss", 0.25), end_ok(l);
  tfw_csv_log_close(l);
  run_ok(PY "csv_check.py repair %s", path);
  rmrf(dir);
  th_expect_no_leaks();
}

/* ---- progress ------------------------------------------------------------------------------------ */

static double fake_clock(void *ctx) { return *(double *)ctx; }

static char *read_back(FILE *f) {
  fflush(f);
  long n = ftell(f);
  rewind(f);
  char *b = calloc(1, (size_t)n + 1);
  cr_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
  return b;
}

Test(logging, progress_lines_mode_through_a_file) {
  unsetenv("TFW_PROGRESS");
  FILE *f = tmpfile();
  double t = 1000;
  tfw_progress *p = tfw_progress_new("train", 100, f);
  cr_assert_eq(tfw_progress_get_mode(p), TFW_PROGRESS_LINES, "a file is not a terminal");
  tfw_progress_set_clock(p, fake_clock, &t);
  for (int i = 1; i <= 100; i++) {
    t += 0.5;
    tfw_progress_update(p, 1, i == 50 ? "loss 0.123 acc 98.1%" : NULL);
  }
  tfw_progress_close(p);
  char *out = read_back(f);
  fclose(f);
  cr_expect(!strchr(out, '\r') && !strchr(out, '\x1b'), "no \\r or ANSI codes: %s", out);
  const char *want =
      "train:  10% 10/100 [00:05<00:45, 2.00it/s]\n"
      "train:  20% 20/100 [00:10<00:40, 2.00it/s]\n"
      "train:  30% 30/100 [00:15<00:35, 2.00it/s]\n"
      "train:  40% 40/100 [00:20<00:30, 2.00it/s]\n"
      "train:  50% 50/100 [00:25<00:25, 2.00it/s, loss 0.123 acc 98.1%]\n"
      "train:  60% 60/100 [00:30<00:20, 2.00it/s, loss 0.123 acc 98.1%]\n"
      "train:  70% 70/100 [00:35<00:15, 2.00it/s, loss 0.123 acc 98.1%]\n"
      "train:  80% 80/100 [00:40<00:10, 2.00it/s, loss 0.123 acc 98.1%]\n"
      "train:  90% 90/100 [00:45<00:05, 2.00it/s, loss 0.123 acc 98.1%]\n"
      "train: 100% 100/100 [00:50<00:00, 2.00it/s, loss 0.123 acc 98.1%]\n";
  cr_expect_str_eq(out, want);
  free(out);

  /* unknown total, by time only; slow items; hours; a final line at close */
  f = tmpfile();
  t = 0;
  p = tfw_progress_new(NULL, 0, f);
  tfw_progress_set_mode(p, TFW_PROGRESS_LINES);
  tfw_progress_set_line_interval(p, 10, 1800);
  tfw_progress_set_clock(p, fake_clock, &t);
  for (int i = 0; i < 3; i++) {
    t += 1241.75;
    tfw_progress_update(p, 1, NULL);
  }
  tfw_progress_write(p, "eval: acc 97.5%");
  tfw_progress_close(p);
  out = read_back(f);
  fclose(f);
  cr_expect_str_eq(out, "2it [41:23, 1241.75s/it]\neval: acc 97.5%\n3it [1:02:05, 1241.75s/it]\n");
  free(out);
  th_expect_no_leaks();
}

Test(logging, progress_env_modes) {
  FILE *f = tmpfile();
  setenv("TFW_PROGRESS", "off", 1);
  tfw_progress *p = tfw_progress_new("x", 10, f);
  cr_assert_eq(tfw_progress_get_mode(p), TFW_PROGRESS_OFF);
  tfw_progress_update(p, 10, "a");
  tfw_progress_write(p, "message");
  tfw_progress_close(p);
  char *out = read_back(f);
  cr_expect_str_eq(out, "message\n");
  free(out);
  fclose(f);
  setenv("TFW_PROGRESS", "bar", 1);
  f = tmpfile();
  p = tfw_progress_new("x", 4, f);
  cr_assert_eq(tfw_progress_get_mode(p), TFW_PROGRESS_BAR, "forced even on a file");
  tfw_progress_set_width(p, 40);
  double t = 0;
  tfw_progress_set_clock(p, fake_clock, &t);
  t = 2;
  tfw_progress_update(p, 2, NULL);
  tfw_progress_close(p);
  out = read_back(f);
  fclose(f);
  unsetenv("TFW_PROGRESS");
  /* ASCII bar (no UTF-8 locale in the test env? both are accepted: check the frame) */
  cr_expect(strncmp(out, "\rx:  50%|", 9) == 0, "%s", out);
  cr_expect(strstr(out, "| 2/4 [00:02<00:02, 1.00it/s]\n"), "%s", out);
  free(out);
  th_expect_no_leaks();
}

/* Display columns of UTF-8 text. */
static int ucols(const char *s, size_t n) {
  int c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

Test(logging, progress_bar_on_a_pty) {
  unsetenv("TFW_PROGRESS");
  setenv("LC_ALL", "C.UTF-8", 1);
  int master, slave;
  struct winsize ws = {.ws_row = 24, .ws_col = 100};
  cr_assert(openpty(&master, &slave, NULL, NULL, &ws) == 0, "openpty: %s", strerror(errno));
  struct termios tio;
  tcgetattr(slave, &tio);
  cfmakeraw(&tio); /* bytes pass unchanged (no \n -> \r\n) */
  tcsetattr(slave, TCSANOW, &tio);
  fcntl(master, F_SETFL, O_NONBLOCK);
  FILE *out = fdopen(slave, "w");
  tfw_progress *p = tfw_progress_new("epoch 1", 200, out);
  cr_assert_eq(tfw_progress_get_mode(p), TFW_PROGRESS_BAR, "a pty is a terminal");
  double t = 0;
  tfw_progress_set_clock(p, fake_clock, &t);
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  for (int i = 1; i <= 200; i++) {
    t = i / 128.0; /* exact binary steps: 128 it/s */
    tfw_progress_update(p, 1, i >= 100 ? "loss 0.500" : NULL);
    ssize_t k;
    while ((k = read(master, buf + len, cap - 1 - len)) > 0) len += (size_t)k;
  }
  tfw_progress_close(p);
  ssize_t k;
  while ((k = read(master, buf + len, cap - 1 - len)) > 0) len += (size_t)k;
  buf[len] = 0;
  fclose(out);
  close(master);
  cr_assert(len > 0 && buf[len - 1] == '\n', "ends with a newline");
  /* throttle: at most one redraw per 0.1 s of the 1.5625 s, plus the final one */
  int draws = 0;
  for (size_t i = 0; i < len; i++) draws += buf[i] == '\r';
  cr_expect(draws >= 15 && draws <= 18, "%d redraws", draws);
  cr_expect(!strchr(buf, '\x1b'), "no ANSI codes");
  /* every segment fits the terminal (99 columns: the last one stays free) */
  int found7 = 0;
  for (char *seg = strchr(buf, '\r'); seg; seg = strchr(seg + 1, '\r')) {
    char *end = strpbrk(seg + 1, "\r\n");
    size_t n = end ? (size_t)(end - seg - 1) : strlen(seg + 1);
    cr_expect(ucols(seg + 1, n) <= 99, "segment of %d columns", ucols(seg + 1, n));
    if (strncmp(seg + 1, "epoch 1:   7%|", 14) == 0) {
      found7 = 1; /* the redraw at 14 items: 14/128 s, 128 it/s, ETA 186/128 s */
      const char *r = "| 14/200 [00:00<00:01, 128.00it/s]";
      char *rp = memmem(seg + 1, n, r, strlen(r));
      cr_expect(rp, "%.*s", (int)n, seg + 1);
      /* bar: floor(14/200 * width * 8) eighths: full blocks, one partial block, spaces */
      if (rp) {
        const char *b0 = seg + 15;
        int w = ucols(b0, (size_t)(rp - b0)), e = (int)floor(14.0 / 200 * w * 8);
        static const char *const part[8] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
        char want[512] = "";
        for (int q = 0; q < e / 8; q++) strcat(want, "█");
        strcat(want, part[e % 8]);
        for (int q = e / 8 + (e % 8 > 0); q < w; q++) strcat(want, " ");
        cr_expect(strlen(want) == (size_t)(rp - b0) && !memcmp(want, b0, strlen(want)),
                  "bar of %d columns: '%.*s', expected '%s'", w, (int)(rp - b0), b0, want);
      }
    }
  }
  cr_expect(found7, "no redraw at 14 items: %s", buf);
  /* the final line */
  char *last = strrchr(buf, '\r') + 1;
  const char *tail = "| 200/200 [00:01<00:00, 128.00it/s, loss 0.500]\n";
  cr_expect(strncmp(last, "epoch 1: 100%|", 14) == 0, "%s", last);
  cr_expect(strstr(last, tail) && strlen(strstr(last, tail)) == strlen(tail), "%s", last);
  /* a full bar of only '█' filling the line to 99 columns */
  const char *b0 = last + 14, *b1 = strstr(last, tail);
  int blocks = 0;
  for (const char *q = b0; q < b1; q += 3) {
    cr_assert(strncmp(q, "█", 3) == 0, "bar char at %ld", (long)(q - b0));
    blocks++;
  }
  cr_expect_eq(14 + blocks + ucols(tail, strlen(tail) - 1), 99, "%d blocks", blocks);
  free(buf);
  th_expect_no_leaks();
}

/* ---- report ------------------------------------------------------------------------------------ */

Test(logging, report_matches_csv_small_run) {
  char *dir = tmpdir(), path[128], html[160];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  snprintf(html, sizeof html, "%s/report.html", dir);
  const char *cols[] = {"step", "epoch", "loss", "eval_loss", "accuracy", "eval_accuracy", "lr",
                        "samples_per_s", "grad_norm", "phase"};
  tfw_csv_log *l = tfw_csv_log_open(path, 10, cols, 0);
  for (int s = 1; s <= 120; s++) {
    set_ok(l, "step", s * 10), set_ok(l, "epoch", s / 40);
    set_ok(l, "loss", 2.3 / (1 + 0.05 * s) + 0.01 * sin(s));
    set_ok(l, "accuracy", 100 - 90 / (1 + 0.1 * s));
    set_ok(l, "lr", 0.1 * 0.5 * (1 + cos(M_PI * s / 120)));
    set_ok(l, "samples_per_s", s == 1 ? 10 : 1200 + 30 * sin(s / 5.0));
    set_ok(l, "grad_norm", s == 60 ? NAN : 1.0 / s);
    setstr_ok(l, "phase", "train");
    if (s % 40 == 0) set_ok(l, "eval_loss", 2.0 / s), set_ok(l, "eval_accuracy", 50 + s / 4.0);
    end_ok(l);
  }
  tfw_csv_log_close(l);
  const char *keys[] = {"model", "optimizer", "lr", "note"};
  const char *vals[] = {"cnn", "sgd(momentum=0.9)", "0.1", "<b>&\"quoted\"</b>"};
  cr_assert_eq(tfw_run_config_write(dir, 4, keys, vals), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_report_write(dir, NULL), TFW_OK, "%s", tfw_last_error());
  run_ok(PY "report_check.py %s %s 200000", dir, html);
  size_t n;
  char *page = (char *)th_read_file(html, &n);
  cr_expect(strstr(page, "&lt;b&gt;&amp;&quot;quoted&quot;&lt;/b&gt;"), "config value escaped");
  cr_expect(strstr(page, "id=\"plot-loss\"") && strstr(page, "id=\"plot-lr\"") &&
            strstr(page, "id=\"plot-accuracy\"") && strstr(page, "id=\"plot-throughput\""));
  cr_expect(!strstr(page, "data-col=\"phase\""), "text column not plotted");
  free(page);
  rmrf(dir);
  th_expect_no_leaks();
}

Test(logging, report_downsamples_large_logs) {
  char *dir = tmpdir(), html[160];
  snprintf(html, sizeof html, "%s/out.html", dir);
  /* a 200k-row log written by Python (independent writer), with spikes, gaps and an eval
   * column present every 5000 steps */
  run_ok("/usr/bin/python3 -c \"import math,random\nrandom.seed(5)\n"
         "f=open('%s/log.csv','w')\nf.write('step,loss,eval_loss,lr\\n')\n"
         "for i in range(200000):\n"
         "  l=1/math.sqrt(i+1)+random.random()*0.01+(5 if i%%7919==0 else 0)\n"
         "  e='%%r'%%(1/(i+1)) if i%%5000==0 else ''\n"
         "  f.write('%%d,%%r,%%s,%%s\\n'%%(i*3,l,e,'' if i%%1000==7 else repr(0.1*(1-i/200000))))\n\"",
         dir);
  cr_assert_eq(tfw_report_write(dir, html), TFW_OK, "%s", tfw_last_error());
  run_ok(PY "report_check.py %s %s 300000", dir, html);
  rmrf(dir);
  th_expect_no_leaks();
}

Test(logging, report_errors_are_clear) {
  char *dir = tmpdir(), path[128];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  th_expect_error(tfw_report_write(dir, NULL), TFW_EIO, "log.csv", "missing log");
  struct {
    const char *text;
    tfw_status code;
    const char *needle;
  } bad[] = {
      {"", TFW_EFORMAT, "empty file"},
      {"step,loss\n", TFW_EVALUE, "no rows"},
      {"step,loss\n1,0.5\n2,\"0.4\n3,0.3\n", TFW_EFORMAT, "line 3: unclosed quote"},
      {"step,loss\n1,0.5\n2,0.4,9\n", TFW_EFORMAT, "line 3: more than 2 fields"},
      {"step,step\n1,2\n", TFW_EFORMAT, "'step' twice"},
      {"step,,loss\n1,2,3\n", TFW_EFORMAT, "column 2 has an empty name"},
      {"step,loss\n\"1\"x,2\n", TFW_EFORMAT, "after a closing quote"},
      {"step,loss\n1,1\nb,2\n", TFW_EFORMAT, "(line 3): step 'b' is not a number"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    FILE *f = fopen(path, "w");
    fputs(bad[i].text, f);
    fclose(f);
    th_expect_error(tfw_report_write(dir, NULL), bad[i].code, bad[i].needle, bad[i].text);
  }
  /* no step column: rows are numbered; an unwritable output is TFW_EIO */
  FILE *f = fopen(path, "w");
  fputs("loss\r\n0.5\r\n\r\n0.25\r\n", f);
  fclose(f);
  cr_assert_eq(tfw_report_write(dir, NULL), TFW_OK, "%s", tfw_last_error());
  run_ok(PY "report_check.py %s %s/report.html", dir, dir);
  th_expect_error(tfw_report_write(dir, "/nonexistent/r.html"), TFW_EIO, "/nonexistent/r.html",
                  "unwritable");
  const char *k[] = {"a=b"}, *v[] = {"x"};
  th_expect_error(tfw_run_config_write(dir, 1, k, v), TFW_EVALUE, "key 0", "bad key");
  rmrf(dir);
  th_expect_no_leaks();
}
