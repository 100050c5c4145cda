/* CSV / TSV (RFC 4180): header, quoting, custom delimiters, missing values, typed columns
 * (inferred or given), gzip input (inflated by the generic layer).
 *
 * Hand-written: libcsv (Debian) only tokenises, and the typing, missing-value and error
 * rules are most of the work; the tokeniser is a small state machine that never looks
 * outside the input. Two passes over the bytes, no per-cell storage: pass 1 checks the
 * structure (every record has the header's field count, quotes close) and infers the
 * column types; pass 2 parses into the final column buffers, whose sizes pass 1 measured.
 * Memory is therefore the columns themselves plus O(columns).
 *
 * Rules: records end at "\n" or "\r\n"; empty lines are skipped; a field starting with '"'
 * is quoted (may hold delimiters and newlines, '""' is a quote) and must be followed by
 * the delimiter or the end of the record; a quote inside an unquoted field is taken
 * literally. Missing value: an empty unquoted field (a quoted "" is an empty string).
 * Inference per column over its non-missing fields: all integers (64-bit, optional sign)
 * -> int64; else all numbers (strtod syntax in the C locale, incl. nan/inf) -> float64;
 * else text. An integer column with missing values becomes float64 with NaN (as pandas
 * does); every column with a missing value is nullable (mask). Given types
 * (tfw_reader_options.types) parse into that dtype with range checks, bool from
 * true/false/1/0. Caps: 65536 columns; field text is bounded by the input. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/reader_internal.h"

#define CSV_MAX_COLS 65536

typedef struct tok {
  const uint8_t *p;
  size_t n, pos;
  int64_t line; /* 1-based line of pos */
  char delim;
  const char *name;
} tok;

typedef struct cell {
  size_t start, len; /* raw text (inside the quotes when quoted) */
  size_t ulen;       /* unescaped length */
  bool quoted;
  int64_t line;
} cell;

/* Skips empty lines at a record start; false at the end of the input. */
static bool rec_start(tok *t) {
  for (;;) {
    if (t->pos >= t->n) return false;
    if (t->p[t->pos] == '\n') t->pos++, t->line++;
    else if (t->p[t->pos] == '\r' && t->pos + 1 < t->n && t->p[t->pos + 1] == '\n')
      t->pos += 2, t->line++;
    else return true;
  }
}

/* Reads one field; *eor is set when it ends its record. */
static tfw_status next_cell(tok *t, cell *c, bool *eor) {
  c->line = t->line;
  c->quoted = false;
  if (t->pos < t->n && t->p[t->pos] == '"') {
    c->quoted = true;
    size_t i = ++t->pos, quotes = 0;
    int64_t startline = t->line;
    for (;;) {
      if (i >= t->n)
        return tfw__error(TFW_EFORMAT, "csv: '%s': line %lld: quoted field never closes",
                          t->name, (long long)startline);
      if (t->p[i] == '"') {
        if (i + 1 < t->n && t->p[i + 1] == '"') {
          i += 2, quotes++;
          continue;
        }
        break;
      }
      if (t->p[i] == '\n') t->line++;
      i++;
    }
    c->start = t->pos, c->len = i - t->pos, c->ulen = c->len - quotes;
    t->pos = i + 1;
    if (t->pos < t->n && t->p[t->pos] != (uint8_t)t->delim && t->p[t->pos] != '\n' &&
        !(t->p[t->pos] == '\r' && t->pos + 1 < t->n && t->p[t->pos + 1] == '\n'))
      return tfw__error(TFW_EFORMAT, "csv: '%s': line %lld: unexpected character '%c' after "
                        "a closing quote (expected the delimiter or the end of the line)",
                        t->name, (long long)t->line,
                        t->p[t->pos] >= 0x20 && t->p[t->pos] < 0x7f ? t->p[t->pos] : '?');
  } else {
    size_t i = t->pos;
    while (i < t->n && t->p[i] != (uint8_t)t->delim && t->p[i] != '\n') i++;
    size_t end = i;
    if (i < t->n && t->p[i] == '\n' && end > t->pos && t->p[end - 1] == '\r') end--;
    c->start = t->pos, c->len = c->ulen = end - t->pos;
    t->pos = i;
  }
  /* the separator */
  if (t->pos >= t->n) {
    *eor = true;
  } else if (t->p[t->pos] == (uint8_t)t->delim) {
    t->pos++;
    *eor = false;
  } else {
    if (t->p[t->pos] == '\r') t->pos++;
    t->pos++; /* '\n' */
    t->line++;
    *eor = true;
  }
  return TFW_OK;
}

static void unescape(const tok *t, const cell *c, uint8_t *out) {
  if (!c->quoted) {
    memcpy(out, t->p + c->start, c->len);
    return;
  }
  size_t w = 0;
  for (size_t i = 0; i < c->len; i++) {
    out[w++] = t->p[c->start + i];
    if (t->p[c->start + i] == '"') i++;
  }
}

/* Numbers: the text trimmed of spaces, NUL-terminated in buf (false if too long). */
static bool num_text(const tok *t, const cell *c, char *buf, size_t cap) {
  size_t s = c->start, e = c->start + c->len;
  while (s < e && (t->p[s] == ' ' || t->p[s] == '\t')) s++;
  while (e > s && (t->p[e - 1] == ' ' || t->p[e - 1] == '\t')) e--;
  if (e == s || e - s >= cap || c->quoted) return false;
  memcpy(buf, t->p + s, e - s);
  buf[e - s] = '\0';
  return true;
}
static bool parse_i64(const char *s, int64_t *v) {
  bool neg = *s == '-';
  if (*s == '-' || *s == '+') s++;
  if (!*s) return false;
  uint64_t x = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    unsigned d = (unsigned)(*s - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX) return false;
  *v = neg ? (int64_t)(0 - x) : (int64_t)x;
  return true;
}
static bool parse_f64(const char *s, double *v) {
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return end != s && *end == '\0'; /* overflow gives +-inf, as NumPy does */
}

typedef struct colinfo {
  bool all_int, all_num, missing;
  int given;     /* index into opt->types, or -1 */
  size_t bytes;  /* unescaped text bytes */
  tfw_field f;
} colinfo;

static bool dtype_range(tfw_dtype dt, double x) {
  switch (dt) {
  case TFW_DTYPE_I8: return x >= -128 && x <= 127;
  case TFW_DTYPE_U8: return x >= 0 && x <= 255;
  case TFW_DTYPE_I32: return x >= -2147483648.0 && x <= 2147483647.0;
  default: return true;
  }
}

static tfw_status bad_value(const tok *t, const cell *c, const colinfo *ci, const char *why) {
  char buf[48];
  size_t k = c->len < 40 ? c->len : 40;
  memcpy(buf, t->p + c->start, k);
  buf[k] = '\0';
  for (size_t i = 0; i < k; i++)
    if ((unsigned char)buf[i] < 0x20) buf[i] = '?';
  return tfw__error(TFW_EFORMAT, "csv: '%s': line %lld, column '%.64s': '%s%s' %s", t->name,
                    (long long)c->line, ci->f.name, buf, c->len > 40 ? "..." : "", why);
}

/* Stores the field c of column ci at row into its column (pass 2). */
static tfw_status store(const tok *t, const cell *c, colinfo *ci, tfw_column *col, int64_t row,
                        int64_t *str_pos) {
  const tfw_field *f = &ci->f;
  bool missing = c->len == 0 && !c->quoted;
  if (col->mask) ((bool *)tfw_tensor_data(col->mask))[row] = !missing;
  if (f->is_string) {
    int64_t *o = tfw_tensor_data(col->offsets);
    if (!missing) unescape(t, c, (uint8_t *)tfw_tensor_data(col->values) + *str_pos);
    *str_pos += missing ? 0 : (int64_t)c->ulen;
    o[row + 1] = *str_pos;
    return TFW_OK;
  }
  void *dst = (char *)tfw_tensor_data(col->values) + (size_t)row * tfw_dtype_size(f->dtype);
  if (missing) {
    tfw__store_f64(dst, f->dtype, tfw_dtype_is_floating(f->dtype) ? NAN : 0.0);
    return TFW_OK;
  }
  char buf[72];
  bool text = num_text(t, c, buf, sizeof buf);
  if (f->dtype == TFW_DTYPE_BOOL) {
    bool v;
    if (text && (!strcmp(buf, "1") || !strcmp(buf, "true") || !strcmp(buf, "True"))) v = true;
    else if (text && (!strcmp(buf, "0") || !strcmp(buf, "false") || !strcmp(buf, "False"))) v = false;
    else return bad_value(t, c, ci, "is not a bool (true/false/1/0)");
    *(bool *)dst = v;
  } else if (f->dtype == TFW_DTYPE_I64) {
    int64_t v;
    if (!text || !parse_i64(buf, &v)) return bad_value(t, c, ci, "is not an int64");
    *(int64_t *)dst = v;
  } else if (tfw_dtype_is_integral(f->dtype)) {
    int64_t v;
    if (!text || !parse_i64(buf, &v) || !dtype_range(f->dtype, (double)v))
      return bad_value(t, c, ci, f->dtype == TFW_DTYPE_I32 ? "is not an int32"
                                 : f->dtype == TFW_DTYPE_U8 ? "is not a uint8" : "is not an int8");
    tfw__store_f64(dst, f->dtype, (double)v);
  } else {
    double v;
    if (!text || !parse_f64(buf, &v)) return bad_value(t, c, ci, "is not a number");
    tfw__store_f64(dst, f->dtype, v);
  }
  return TFW_OK;
}

static bool ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* No delimiter given: ',' if the first line has one outside quotes, else the most frequent
 * of ';', '\t', '|' there (',' if none). */
static char guess_delim(const uint8_t *p, size_t n) {
  const char cand[] = ",;\t|";
  size_t cnt[4] = {0, 0, 0, 0};
  bool quoted = false;
  for (size_t i = 0; i < n && i < 65536; i++) {
    if (p[i] == '"') quoted = !quoted;
    else if (!quoted && p[i] == '\n') break;
    else if (!quoted)
      for (int k = 0; k < 4; k++) cnt[k] += p[i] == (uint8_t)cand[k];
  }
  if (cnt[0]) return ',';
  int best = 0;
  for (int k = 1; k < 4; k++)
    if (cnt[k] > cnt[best]) best = k;
  return cand[best];
}

static tfw_status csv_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  char delim = opt->delimiter ? opt->delimiter
               : (ends_with(in->name, ".tsv") || ends_with(in->name, ".tsv.gz")) ? '\t'
               : guess_delim(in->data, in->size);
  tok t = {in->data, in->size, 0, 1, delim, in->name};
  /* skip a UTF-8 byte order mark */
  if (t.n >= 3 && !memcmp(t.p, "\xEF\xBB\xBF", 3)) t.pos = 3;
  bool header = opt->header >= 0;
  colinfo *ci = NULL;
  tfw_column *cols = NULL;
  tfw_field *fields = NULL;
  char **names = NULL;
  int ncol = 0;
  tfw_status s = TFW_OK;
  /* the first record: the header, or the column count */
  if (!rec_start(&t)) {
    if (header) return tfw__error(TFW_EFORMAT, "csv: '%s': empty file (no header)", in->name);
  } else {
    tok t0 = t;
    bool eor = false;
    while (!eor) {
      cell c;
      if ((s = next_cell(&t0, &c, &eor))) return s;
      if (++ncol > CSV_MAX_COLS)
        return tfw__error(TFW_EFORMAT, "csv: '%s': more than %d columns", in->name, CSV_MAX_COLS);
    }
  }
  ci = tfw__calloc((size_t)ncol + 1, sizeof *ci);
  names = tfw__calloc((size_t)ncol + 1, sizeof *names);
  if (!ci || !names) goto nomem;
  for (int j = 0; j < ncol; j++) {
    bool eor;
    cell c = {0};
    if (header && (s = next_cell(&t, &c, &eor))) goto out;
    size_t len = header ? c.ulen : 0;
    names[j] = tfw__malloc(len + 24);
    if (!names[j]) goto nomem;
    if (header) unescape(&t, &c, (uint8_t *)names[j]);
    names[j][len] = '\0';
    if (strlen(names[j]) != len) {
      s = tfw__error(TFW_EFORMAT, "csv: '%s': header field %d contains a NUL byte", in->name, j);
      goto out;
    }
    if (len == 0) snprintf(names[j], 24, "c%d", j);
    ci[j] = (colinfo){.all_int = true, .all_num = true, .given = -1};
    ci[j].f.name = names[j];
  }
  /* given types */
  if (opt->types) {
    for (int k = 0; k < opt->types->n; k++) {
      const tfw_field *g = &opt->types->fields[k];
      int j = 0;
      while (j < ncol && (!g->name || strcmp(g->name, names[j]))) j++;
      if (j == ncol) {
        s = tfw__error(TFW_EVALUE, "csv: '%s': a type is given for column '%.64s', which the "
                       "file does not have", in->name, g->name ? g->name : "(null)");
        goto out;
      }
      if (!g->is_string && (!tfw_dtype_is_valid(g->dtype) || g->dtype == TFW_DTYPE_BF16 ||
                            g->ndim != 0)) {
        s = tfw__error(TFW_EVALUE, "csv: column '%.64s': a given type must be a scalar numeric "
                       "or bool dtype (not bfloat16) or a string", g->name);
        goto out;
      }
      ci[j].given = k;
    }
  }
  /* pass 1: structure, types, sizes */
  int64_t rows = 0;
  tok body = t;
  while (rec_start(&t)) {
    bool eor = false;
    int j = 0;
    int64_t rline = t.line;
    while (!eor) {
      cell c;
      if ((s = next_cell(&t, &c, &eor))) goto out;
      if (j >= ncol) {
        j++;
        continue;
      }
      colinfo *x = &ci[j++];
      if (c.len == 0 && !c.quoted) {
        x->missing = true;
        continue;
      }
      x->bytes += c.ulen;
      if (x->given >= 0 || !x->all_num) continue;
      char buf[72];
      int64_t iv;
      double dv;
      bool text = num_text(&t, &c, buf, sizeof buf);
      if (x->all_int && !(text && parse_i64(buf, &iv))) x->all_int = false;
      if (!x->all_int && !(text && parse_f64(buf, &dv))) x->all_num = false;
    }
    if (j != ncol) {
      s = tfw__error(TFW_EFORMAT, "csv: '%s': line %lld: %d fields, %s %d", in->name,
                     (long long)rline, j, header ? "the header has" : "the first line has",
                     ncol);
      goto out;
    }
    rows++;
  }
  fields = tfw__calloc((size_t)ncol + 1, sizeof *fields);
  cols = tfw__calloc((size_t)ncol + 1, sizeof *cols);
  if (!fields || !cols) goto nomem;
  for (int j = 0; j < ncol; j++) {
    tfw_field *f = &ci[j].f;
    if (ci[j].given >= 0) {
      const tfw_field *g = &opt->types->fields[ci[j].given];
      f->is_string = g->is_string;
      f->dtype = g->is_string ? TFW_DTYPE_U8 : g->dtype;
    } else if (ci[j].all_num && !(ci[j].all_int && ci[j].missing) && ci[j].bytes > 0) {
      f->dtype = ci[j].all_int ? TFW_DTYPE_I64 : TFW_DTYPE_F64;
    } else if (ci[j].all_num) { /* ints with gaps, or nothing but gaps */
      f->dtype = TFW_DTYPE_F64;
    } else {
      f->is_string = true, f->dtype = TFW_DTYPE_U8;
    }
    if (f->is_string) f->ndim = 1, f->shape[0] = -1;
    f->nullable = ci[j].missing;
    fields[j] = *f;
    int64_t one = rows, n1 = rows + 1, nb = (int64_t)ci[j].bytes;
    if (f->is_string) {
      cols[j].values = tfw_empty(TFW_DTYPE_U8, 1, &nb);
      cols[j].offsets = tfw_zeros(TFW_DTYPE_I64, 1, &n1);
      if (!cols[j].values || !cols[j].offsets) goto nomem;
    } else if (!(cols[j].values = tfw_empty(f->dtype, 1, &one))) {
      goto nomem;
    }
    if (f->nullable && !(cols[j].mask = tfw_empty(TFW_DTYPE_BOOL, 1, &one))) goto nomem;
  }
  /* pass 2 */
  {
    int64_t *spos = tfw__calloc((size_t)ncol + 1, sizeof *spos);
    if (!spos) goto nomem;
    t = body;
    for (int64_t row = 0; row < rows && !s; row++) {
      rec_start(&t);
      bool eor = false;
      for (int j = 0; j < ncol && !s; j++) {
        cell c;
        if ((s = next_cell(&t, &c, &eor))) break;
        s = store(&t, &c, &ci[j], &cols[j], row, &spos[j]);
      }
    }
    tfw__free(spos);
    if (s) goto out;
  }
  if ((s = tfw__reader_set_schema(r, ncol, fields))) goto out;
  s = tfw__reader_set_table(r, rows, cols);
  goto out;
nomem:
  s = tfw_last_status() == TFW_ENOMEM ? TFW_ENOMEM
                                      : tfw__error(TFW_ENOMEM, "csv: '%s': out of memory", in->name);
out:
  if (cols)
    for (int j = 0; j < ncol; j++) tfw_column_clear(&cols[j]);
  if (names)
    for (int j = 0; j < ncol; j++) tfw__free(names[j]);
  tfw__free(names);
  tfw__free(cols);
  tfw__free(fields);
  tfw__free(ci);
  return s;
}

static int csv_sniff(const uint8_t *h, size_t n) {
  /* printable text whose first two lines have the same positive number of ',' or ';' */
  if (n == 0 || memchr(h, 0, n)) return 0;
  const char *delims = ",;\t";
  for (int d = 0; delims[d]; d++) {
    int cnt[2] = {0, 0}, line = 0;
    bool quoted = false;
    for (size_t i = 0; i < n && line < 2; i++) {
      if (h[i] == '"') quoted = !quoted;
      else if (!quoted && h[i] == (uint8_t)delims[d]) cnt[line]++;
      else if (!quoted && h[i] == '\n') line++;
    }
    if (cnt[0] > 0 && cnt[0] == cnt[1]) return 30;
  }
  return 0;
}

const tfw__reader_backend tfw__backend_csv = {"csv", ".csv .tsv", csv_sniff, csv_open};
