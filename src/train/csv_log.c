/* CSV metrics log: one row per call to tfw_csv_log_row_end, header first, RFC 4180 quoting
 * (a field with a comma, quote, CR or LF, or leading/trailing space is quoted and its
 * quotes doubled), LF line ends, each row flushed with a single fwrite so that a crash
 * leaves whole rows (and at worst one partial last row, which appending repairs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

struct tfw_csv_log {
  FILE *f;
  char *path;
  int ncols, cap;
  char **cols;  /* ncols names */
  char **vals;  /* ncols values of the current row (NULL: unset) */
  int fixed;    /* columns can no longer be added */
  int header_written;
};

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = tfw__malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static int find_col(const tfw_csv_log *log, const char *name) {
  for (int i = 0; i < log->ncols; i++)
    if (strcmp(log->cols[i], name) == 0) return i;
  return -1;
}

static tfw_status add_col(tfw_csv_log *log, const char *name) {
  if (log->ncols == log->cap) {
    int cap = log->cap ? 2 * log->cap : 16;
    char **c = tfw__realloc(log->cols, (size_t)cap * sizeof *c);
    if (c) log->cols = c;
    char **v = c ? tfw__realloc(log->vals, (size_t)cap * sizeof *v) : NULL;
    if (!v) return tfw__error(TFW_ENOMEM, "csv_log: out of memory for columns");
    log->vals = v;
    log->cap = cap;
  }
  char *d = dupstr(name);
  if (!d) return tfw__error(TFW_ENOMEM, "csv_log: out of memory for columns");
  log->cols[log->ncols] = d;
  log->vals[log->ncols++] = NULL;
  return TFW_OK;
}

static void put_field(tfw__sbuf *b, const char *s) {
  size_t n = strlen(s);
  int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
  for (size_t i = 0; i < n && !quote; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') quote = 1;
  if (!quote) {
    tfw__sbuf_put(b, s, n);
    return;
  }
  tfw__sbuf_put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '"') tfw__sbuf_put(b, "\"", 1);
    tfw__sbuf_put(b, s + i, 1);
  }
  tfw__sbuf_put(b, "\"", 1);
}

/* Reads the header of an existing non-empty file into log->cols; repairs a missing final
 * newline. Returns TFW_OK with ncols == 0 if the file is empty or absent. */
static tfw_status read_existing(tfw_csv_log *log, int *needs_newline) {
  *needs_newline = 0;
  FILE *f = fopen(log->path, "rb");
  if (!f) {
    if (errno == ENOENT) return TFW_OK;
    return tfw__error(TFW_EIO, "csv_log: cannot open '%s': %s", log->path, strerror(errno));
  }
  static const size_t cap = 1 << 20;
  char *buf = tfw__malloc(cap);
  if (!buf) {
    fclose(f);
    return tfw__error(TFW_ENOMEM, "csv_log: out of memory");
  }
  size_t got = fread(buf, 1, cap, f);
  tfw_status s = TFW_OK;
  if (got > 0) {
    size_t end = 0;
    int inq = 0;
    while (end < got && (inq || buf[end] != '\n')) inq ^= buf[end++] == '"';
    if (end == got && got == cap) {
      s = tfw__error(TFW_EFORMAT, "csv_log: '%s': no header line in the first %zu bytes",
                     log->path, cap);
    } else {
      tfw__csv_table t;
      s = tfw__csv_parse(buf, end, log->path, &t);
      if (!s) {
        for (int i = 0; i < t.ncols && !s; i++) s = add_col(log, t.header[i]);
        tfw__csv_free(&t);
      }
    }
    char last = 0;
    if (!s && fseek(f, -1, SEEK_END) == 0 && fread(&last, 1, 1, f) == 1 && last != '\n')
      *needs_newline = 1;
  }
  tfw__free(buf);
  fclose(f);
  return s;
}

tfw_csv_log *tfw_csv_log_open(const char *path, int n, const char *const *cols, unsigned flags) {
  if (!path || n < 0 || (n > 0 && !cols)) {
    tfw__error(TFW_EVALUE, "tfw_csv_log_open: %s", !path ? "path is NULL" : "bad column list");
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if (!cols[i] || !cols[i][0]) {
      tfw__error(TFW_EVALUE, "tfw_csv_log_open: column %d is NULL or empty", i);
      return NULL;
    }
    for (int j = 0; j < i; j++)
      if (strcmp(cols[i], cols[j]) == 0) {
        tfw__error(TFW_EVALUE, "tfw_csv_log_open: column '%s' appears twice (%d and %d)",
                   cols[i], j, i);
        return NULL;
      }
  }
  tfw_csv_log *log = tfw__calloc(1, sizeof *log);
  if (!log || !(log->path = dupstr(path))) {
    tfw__free(log);
    tfw__error(TFW_ENOMEM, "tfw_csv_log_open: out of memory");
    return NULL;
  }
  int nl = 0;
  tfw_status s = TFW_OK;
  if (flags & TFW_CSV_APPEND) s = read_existing(log, &nl);
  if (!s && log->ncols > 0) {
    log->fixed = log->header_written = 1;
    int same = n == 0 || n == log->ncols;
    for (int i = 0; i < n && same; i++) same = strcmp(cols[i], log->cols[i]) == 0;
    if (!same) {
      tfw__sbuf b = {0};
      for (int i = 0; i < log->ncols; i++) tfw__sbuf_printf(&b, "%s%s", i ? "," : "", log->cols[i]);
      s = tfw__error(TFW_EVALUE,
                     "tfw_csv_log_open: '%s' has columns [%.300s] but %d other columns were "
                     "given (first '%s')", path, b.p ? b.p : "", n, cols[0]);
      tfw__sbuf_free(&b);
    }
  } else if (!s) {
    for (int i = 0; i < n && !s; i++) s = add_col(log, cols[i]);
    log->fixed = n > 0;
  }
  if (!s) {
    log->f = fopen(path, (flags & TFW_CSV_APPEND) ? "ab" : "wb");
    if (!log->f) s = tfw__error(TFW_EIO, "tfw_csv_log_open: cannot open '%s': %s", path,
                                strerror(errno));
    else if (nl && (fputc('\n', log->f) == EOF || fflush(log->f) != 0))
      s = tfw__error(TFW_EIO, "tfw_csv_log_open: write to '%s' failed: %s", path, strerror(errno));
  }
  if (s) {
    tfw_csv_log_close(log);
    return NULL;
  }
  return log;
}

tfw_status tfw_csv_log_set_str(tfw_csv_log *log, const char *col, const char *value) {
  if (!log || !col || !value)
    return tfw__error(TFW_EVALUE, "tfw_csv_log_set: NULL %s", !log ? "log" : !col ? "col" : "value");
  int i = find_col(log, col);
  if (i < 0) {
    if (log->fixed) {
      tfw__sbuf b = {0};
      for (int k = 0; k < log->ncols; k++) tfw__sbuf_printf(&b, "%s%s", k ? ", " : "", log->cols[k]);
      tfw_status s = tfw__error(TFW_EVALUE, "tfw_csv_log_set: no column '%s' in %s (columns: %.400s)",
                                col, log->path, b.p ? b.p : "");
      tfw__sbuf_free(&b);
      return s;
    }
    if (!col[0]) return tfw__error(TFW_EVALUE, "tfw_csv_log_set: empty column name");
    tfw_status s = add_col(log, col);
    if (s) return s;
    i = log->ncols - 1;
  }
  char *d = dupstr(value);
  if (!d) return tfw__error(TFW_ENOMEM, "tfw_csv_log_set: out of memory");
  tfw__free(log->vals[i]);
  log->vals[i] = d;
  return TFW_OK;
}

tfw_status tfw_csv_log_set(tfw_csv_log *log, const char *col, double value) {
  char buf[32];
  return tfw_csv_log_set_str(log, col, tfw__fmt_double(buf, value));
}

tfw_status tfw_csv_log_row_end(tfw_csv_log *log) {
  if (!log) return tfw__error(TFW_EVALUE, "tfw_csv_log_row_end: log is NULL");
  if (log->ncols == 0)
    return tfw__error(TFW_ESTATE, "tfw_csv_log_row_end: %s: no column was set", log->path);
  tfw__sbuf b = {0};
  if (!log->header_written) {
    for (int i = 0; i < log->ncols; i++) {
      if (i) tfw__sbuf_put(&b, ",", 1);
      put_field(&b, log->cols[i]);
    }
    tfw__sbuf_put(&b, "\n", 1);
  }
  for (int i = 0; i < log->ncols; i++) {
    if (i) tfw__sbuf_put(&b, ",", 1);
    if (log->vals[i]) put_field(&b, log->vals[i]);
  }
  tfw__sbuf_put(&b, "\n", 1);
  if (b.oom) {
    tfw__sbuf_free(&b);
    return tfw__error(TFW_ENOMEM, "tfw_csv_log_row_end: out of memory");
  }
  tfw_status s = TFW_OK;
  if (fwrite(b.p, 1, b.len, log->f) != b.len || fflush(log->f) != 0)
    s = tfw__error(TFW_EIO, "tfw_csv_log_row_end: write to '%s' failed: %s", log->path,
                   strerror(errno));
  tfw__sbuf_free(&b);
  if (s) return s;
  log->fixed = log->header_written = 1;
  for (int i = 0; i < log->ncols; i++) {
    tfw__free(log->vals[i]);
    log->vals[i] = NULL;
  }
  return TFW_OK;
}

void tfw_csv_log_close(tfw_csv_log *log) {
  if (!log) return;
  if (log->f) fclose(log->f);
  for (int i = 0; i < log->ncols; i++) {
    tfw__free(log->cols[i]);
    tfw__free(log->vals[i]);
  }
  tfw__free(log->cols);
  tfw__free(log->vals);
  tfw__free(log->path);
  tfw__free(log);
}
