/* JSON and JSONL records, over the strict lexer of src/io/json.c (shared with the
 * safetensors header parser, not a second JSON parser).
 *
 * Accepted shapes:
 *   JSONL  one object per non-empty line: {"id": 1, "x": [0.5, 1.5], "name": "a"}
 *   JSON   an array of such objects, or an object of columns {"id": [1, 2], "name": ["a", "b"]}
 *          (every column the same length)
 * Field values: numbers, true/false, strings, null (missing), and arrays of numbers nested
 * to any rectangular shape (rank <= 8). A field absent from a record is missing too.
 * Types per field over all records: all integers (no fraction or exponent, exact in 64
 * bits) -> int64, else numbers -> float64; bools -> bool; strings -> text. Arrays: the
 * same rank everywhere; dims equal in every record, except dim 0 which may vary (shape
 * -1, stored with offsets). Mixed kinds in one field, ragged nested arrays, nested objects
 * and arrays of strings are TFW_EFORMAT / TFW_EUNSUPPORTED naming the field and record.
 * Limits: nesting depth 64, 4096 fields, numbers of at most 400 characters; the text
 * itself is capped by max_bytes. Two passes and no value tree: pass 1 validates and infers,
 * pass 2 writes straight into the column buffers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/reader_internal.h"
#include "io/json.h"

#define JSON_MAX_FIELDS 4096
#define JSON_MAX_DEPTH 64

enum { K_NONE, K_NUM, K_BOOL, K_STR, K_ARR };

typedef struct jfield {
  char *name;
  int kind;
  bool is_int, missing, var0;
  int rank;
  int64_t shape[TFW_MAX_DIMS];
  int64_t total; /* elements (arrays), bytes (strings) over all records */
  /* pass 2 */
  tfw_field f;
  tfw_column col;
  int64_t wpos, last_row;
} jfield;

typedef struct jctx {
  const tfw__input *in;
  const char *fmt;
  bool pass2;
  jfield *fl;
  int nf;
  int64_t row;     /* current record */
  int64_t line;    /* JSONL: current line, for messages */
  char what[320];  /* message prefix for the lexer */
} jctx;

static tfw_status ferr(jctx *c, tfw_status code, const jfield *f, const char *msg) {
  return tfw__error(code, "%s: field '%.64s', record %lld: %s", c->what, f->name,
                    (long long)c->row, msg);
}

static jfield *field_of(jctx *c, const char *name, size_t len) {
  for (int i = 0; i < c->nf; i++)
    if (strlen(c->fl[i].name) == len && !memcmp(c->fl[i].name, name, len)) return &c->fl[i];
  if (c->pass2) return NULL; /* pass 1 saw every field */
  if (c->nf == JSON_MAX_FIELDS) {
    tfw__error(TFW_EFORMAT, "%s: more than %d fields", c->what, JSON_MAX_FIELDS);
    return NULL;
  }
  if (!name[0] || strlen(name) != len) {
    tfw__error(TFW_EFORMAT, "%s: a field name is empty or contains a NUL", c->what);
    return NULL;
  }
  jfield *nfl = tfw__realloc(c->fl, sizeof *nfl * (size_t)(c->nf + 1));
  if (!nfl) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", c->fmt);
    return NULL;
  }
  c->fl = nfl;
  jfield *f = &c->fl[c->nf];
  memset(f, 0, sizeof *f);
  f->name = tfw__malloc(len + 1);
  if (!f->name) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", c->fmt);
    return NULL;
  }
  memcpy(f->name, name, len + 1);
  f->is_int = true, f->rank = -1, f->last_row = -1;
  c->nf++;
  return f;
}

static bool num_is_int(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') return false;
  return true;
}

/* Parses the number at p->pos: *v (double) and *iv (exact, when it is an integer that fits). */
static tfw_status number(tfw__json *p, jctx *c, double *v, int64_t *iv, bool *fits_int) {
  size_t at = p->pos;
  if (tfw__json_skip_number(p)) return TFW_EFORMAT;
  size_t n = p->pos - at;
  if (n > 400) return tfw__error(TFW_EFORMAT, "%s: a number of %zu characters at byte %zu", c->what, n, at);
  char buf[402];
  memcpy(buf, p->s + at, n);
  buf[n] = '\0';
  *v = strtod(buf, NULL);
  *fits_int = false;
  if (num_is_int(buf, n)) {
    const char *s = buf;
    bool neg = *s == '-';
    if (neg) s++;
    uint64_t x = 0;
    bool ok = true;
    for (; *s; s++) {
      unsigned d = (unsigned)(*s - '0');
      if (x > (UINT64_MAX - d) / 10) ok = false;
      x = x * 10 + d;
    }
    if (ok && (neg ? x <= (uint64_t)INT64_MAX + 1 : x <= (uint64_t)INT64_MAX)) {
      *iv = neg ? (int64_t)(0 - x) : (int64_t)x;
      *fits_int = true;
    }
  }
  return TFW_OK;
}

/* Pass 1: the shape of a nested numeric array at p (on '['), checked rectangular. */
static tfw_status arr_shape(tfw__json *p, jctx *c, jfield *f, int depth, int *rank,
                            int64_t *shape, int64_t *count, bool *all_int) {
  if (depth >= TFW_MAX_DIMS)
    return ferr(c, TFW_EUNSUPPORTED, f, "arrays nested deeper than 8 levels");
  tfw__json_eat(p, '[');
  int64_t n = 0;
  if (!tfw__json_eat(p, ']')) {
    do {
      tfw__json_ws(p);
      char ch = p->pos < p->n ? p->s[p->pos] : 0;
      if (ch == '[') {
        int sub_rank = 0;
        int64_t sub[TFW_MAX_DIMS];
        if (arr_shape(p, c, f, depth + 1, &sub_rank, sub, count, all_int)) return TFW_EFORMAT;
        if (n == 0) {
          *rank = sub_rank + 1;
          memcpy(shape + 1, sub, sizeof(int64_t) * (size_t)sub_rank);
        } else if (*rank != sub_rank + 1 || memcmp(shape + 1, sub, sizeof(int64_t) * (size_t)sub_rank)) {
          return ferr(c, TFW_EFORMAT, f, "ragged nested array (sub-arrays differ in shape)");
        }
      } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
        if (n > 0 && *rank != 1) return ferr(c, TFW_EFORMAT, f, "ragged nested array");
        *rank = 1;
        double v;
        int64_t iv;
        bool fi;
        if (number(p, c, &v, &iv, &fi)) return TFW_EFORMAT;
        *all_int &= fi;
        (*count)++;
      } else if (ch == '"') {
        return ferr(c, TFW_EUNSUPPORTED, f, "arrays of strings are not supported");
      } else {
        return ferr(c, TFW_EFORMAT, f, "arrays may hold only numbers or arrays of numbers");
      }
      n++;
    } while (tfw__json_eat(p, ','));
    if (!tfw__json_eat(p, ']')) return tfw__json_err(p, "expected ',' or ']'");
  } else {
    *rank = 1;
  }
  shape[0] = n;
  return TFW_OK;
}

/* Pass 2: writes the numbers of the array at p into f's column. */
static tfw_status arr_fill(tfw__json *p, jctx *c, jfield *f) {
  tfw__json_eat(p, '[');
  if (tfw__json_eat(p, ']')) return TFW_OK;
  do {
    tfw__json_ws(p);
    if (p->s[p->pos] == '[') {
      if (arr_fill(p, c, f)) return TFW_EFORMAT;
      continue;
    }
    double v;
    int64_t iv;
    bool fi;
    if (number(p, c, &v, &iv, &fi)) return TFW_EFORMAT;
    char *dst = (char *)tfw_tensor_data(f->col.values) + (size_t)f->wpos * tfw_dtype_size(f->f.dtype);
    if (f->f.dtype == TFW_DTYPE_I64) *(int64_t *)(void *)dst = iv;
    else *(double *)(void *)dst = v;
    f->wpos++;
  } while (tfw__json_eat(p, ','));
  tfw__json_eat(p, ']');
  return TFW_OK;
}

static tfw_status kind_clash(jctx *c, jfield *f, int kind) {
  static const char *const names[] = {"null", "a number", "a bool", "a string", "an array"};
  char msg[128];
  snprintf(msg, sizeof msg, "is %s, but earlier records hold %s", names[kind], names[f->kind]);
  return ferr(c, TFW_EFORMAT, f, msg);
}

static void write_missing(jfield *f, int64_t row) {
  if (f->col.mask) ((bool *)tfw_tensor_data(f->col.mask))[row] = false;
  if (f->f.is_string || f->var0) {
    ((int64_t *)tfw_tensor_data(f->col.offsets))[row + 1] = f->wpos;
    return;
  }
  int64_t n = tfw__numel(f->f.ndim, f->f.shape);
  size_t es = tfw_dtype_size(f->f.dtype);
  for (int64_t k = 0; k < n; k++)
    tfw__store_f64((char *)tfw_tensor_data(f->col.values) + (size_t)(f->wpos + k) * es, f->f.dtype,
                   tfw_dtype_is_floating(f->f.dtype) ? NAN : 0.0);
  f->wpos += n;
}

/* One value of field f in record c->row. */
static tfw_status value(tfw__json *p, jctx *c, jfield *f) {
  tfw__json_ws(p);
  if (p->pos >= p->n) return tfw__json_err(p, "expected a value");
  char ch = p->s[p->pos];
  int kind = ch == '"' ? K_STR : ch == '[' ? K_ARR : (ch == 't' || ch == 'f') ? K_BOOL
           : ch == 'n' ? K_NONE : (ch == '-' || (ch >= '0' && ch <= '9')) ? K_NUM : -1;
  if (ch == '{') return ferr(c, TFW_EUNSUPPORTED, f, "nested objects are not supported");
  if (kind < 0) return tfw__json_err(p, "expected a value");
  if (!c->pass2) {
    if (f->last_row == c->row) return ferr(c, TFW_EFORMAT, f, "duplicate key in one record");
    f->last_row = c->row;
    if (kind == K_NONE) {
      f->missing = true;
      return tfw__json_skip_value(p, 1);
    }
    if (f->kind != K_NONE && f->kind != kind) return kind_clash(c, f, kind);
    f->kind = kind;
    if (kind == K_STR) {
      const char *s;
      size_t len, mark = p->arena_pos;
      if (tfw__json_str(p, &s, &len)) return TFW_EFORMAT;
      p->arena_pos = mark;
      f->total += (int64_t)len;
    } else if (kind == K_NUM) {
      double v;
      int64_t iv;
      bool fi;
      if (number(p, c, &v, &iv, &fi)) return TFW_EFORMAT;
      f->is_int &= fi;
    } else if (kind == K_BOOL) {
      if (tfw__json_skip_value(p, 1)) return TFW_EFORMAT;
    } else {
      int rank = 0;
      int64_t shape[TFW_MAX_DIMS], count = 0;
      bool all_int = true;
      if (arr_shape(p, c, f, 0, &rank, shape, &count, &all_int)) return TFW_EFORMAT;
      f->is_int &= all_int;
      if (f->rank < 0) {
        f->rank = rank;
        memcpy(f->shape, shape, sizeof(int64_t) * (size_t)rank);
      } else if (f->rank != rank) {
        return ferr(c, TFW_EFORMAT, f, "array rank differs from earlier records");
      } else {
        if (memcmp(f->shape + 1, shape + 1, sizeof(int64_t) * (size_t)(rank - 1)))
          return ferr(c, TFW_EFORMAT, f, "array dims after the first differ from earlier records");
        if (shape[0] != f->shape[0]) f->var0 = true;
      }
      f->total += count;
    }
    return TFW_OK;
  }
  /* pass 2 */
  f->last_row = c->row;
  if (kind == K_NONE) {
    write_missing(f, c->row);
    return tfw__json_skip_value(p, 1);
  }
  if (f->col.mask) ((bool *)tfw_tensor_data(f->col.mask))[c->row] = true;
  if (kind == K_STR) {
    const char *s;
    size_t len, mark = p->arena_pos;
    if (tfw__json_str(p, &s, &len)) return TFW_EFORMAT;
    p->arena_pos = mark;
    memcpy((char *)tfw_tensor_data(f->col.values) + f->wpos, s, len);
    f->wpos += (int64_t)len;
    ((int64_t *)tfw_tensor_data(f->col.offsets))[c->row + 1] = f->wpos;
  } else if (kind == K_BOOL) {
    bool v = ch == 't';
    if (tfw__json_skip_value(p, 1)) return TFW_EFORMAT;
    ((bool *)tfw_tensor_data(f->col.values))[f->wpos++] = v;
  } else if (kind == K_NUM) {
    double v;
    int64_t iv;
    bool fi;
    if (number(p, c, &v, &iv, &fi)) return TFW_EFORMAT;
    if (f->f.dtype == TFW_DTYPE_I64) ((int64_t *)tfw_tensor_data(f->col.values))[f->wpos++] = iv;
    else ((double *)tfw_tensor_data(f->col.values))[f->wpos++] = v;
  } else {
    int64_t before = f->wpos;
    if (arr_fill(p, c, f)) return TFW_EFORMAT;
    if (f->var0) {
      int64_t inner = 1;
      for (int d = 1; d < f->f.ndim; d++) inner *= f->f.shape[d];
      ((int64_t *)tfw_tensor_data(f->col.offsets))[c->row + 1] =
          ((int64_t *)tfw_tensor_data(f->col.offsets))[c->row] + (f->wpos - before) / (inner ? inner : 1);
    }
  }
  return TFW_OK;
}

/* Fills the missing fields of record row (pass 2) and carries string/var offsets forward. */
static void end_record(jctx *c) {
  for (int i = 0; i < c->nf; i++)
    if (c->fl[i].last_row != c->row) write_missing(&c->fl[i], c->row);
}

static tfw_status object_record(tfw__json *p, jctx *c) {
  if (!tfw__json_eat(p, '{')) return tfw__json_err(p, "expected an object (a record)");
  if (!tfw__json_eat(p, '}')) {
    do {
      const char *key;
      size_t len, mark = p->arena_pos;
      if (tfw__json_str(p, &key, &len)) return TFW_EFORMAT;
      jfield *f = field_of(c, key, len);
      p->arena_pos = mark;
      if (!f) return tfw_last_status();
      if (!tfw__json_eat(p, ':')) return tfw__json_err(p, "expected ':'");
      if (value(p, c, f)) return tfw_last_status();
    } while (tfw__json_eat(p, ','));
    if (!tfw__json_eat(p, '}')) return tfw__json_err(p, "expected ',' or '}'");
  }
  if (c->pass2) end_record(c);
  c->row++;
  return TFW_OK;
}

/* Walks the whole input once (pass 1 or 2); *rows receives the record count. */
static tfw_status walk(jctx *c, bool jsonl, char *arena, int64_t *rows) {
  const tfw__input *in = c->in;
  c->row = 0;
  if (jsonl) {
    size_t start = 0;
    c->line = 0;
    while (start < in->size) {
      const uint8_t *nl = memchr(in->data + start, '\n', in->size - start);
      size_t end = nl ? (size_t)(nl - in->data) : in->size;
      c->line++;
      snprintf(c->what, sizeof c->what, "jsonl: '%s': line %lld", in->name, (long long)c->line);
      tfw__json p = {.s = (const char *)in->data + start, .n = end - start, .arena = arena,
                     .what = c->what, .max_depth = JSON_MAX_DEPTH};
      tfw__json_ws(&p);
      if (p.pos < p.n) {
        if (object_record(&p, c)) return tfw_last_status();
        tfw__json_ws(&p);
        if (p.pos != p.n) return tfw__json_err(&p, "text after the record");
      }
      start = end + 1;
    }
    *rows = c->row;
    return TFW_OK;
  }
  snprintf(c->what, sizeof c->what, "json: '%s'", in->name);
  tfw__json p = {.s = (const char *)in->data, .n = in->size, .arena = arena, .what = c->what,
                 .max_depth = JSON_MAX_DEPTH};
  tfw__json_ws(&p);
  if (p.pos < p.n && p.s[p.pos] == '[') { /* records */
    tfw__json_eat(&p, '[');
    if (!tfw__json_eat(&p, ']')) {
      do {
        if (object_record(&p, c)) return tfw_last_status();
      } while (tfw__json_eat(&p, ','));
      if (!tfw__json_eat(&p, ']')) return tfw__json_err(&p, "expected ',' or ']'");
    }
  } else if (p.pos < p.n && p.s[p.pos] == '{') { /* columns */
    tfw__json_eat(&p, '{');
    int64_t len0 = -1;
    if (!tfw__json_eat(&p, '}')) {
      do {
        const char *key;
        size_t len, mark = p.arena_pos;
        if (tfw__json_str(&p, &key, &len)) return TFW_EFORMAT;
        int before = c->nf;
        jfield *f = field_of(c, key, len);
        p.arena_pos = mark;
        if (!f) return tfw_last_status();
        if (!c->pass2 && c->nf == before)
          return tfw__error(TFW_EFORMAT, "%s: duplicate column '%.64s'", c->what, f->name);
        if (!tfw__json_eat(&p, ':') || !tfw__json_eat(&p, '['))
          return tfw__json_err(&p, "a column must be an array (\"name\": [values...])");
        c->row = 0;
        if (!tfw__json_eat(&p, ']')) {
          do {
            if (value(&p, c, f)) return tfw_last_status();
            c->row++;
          } while (tfw__json_eat(&p, ','));
          if (!tfw__json_eat(&p, ']')) return tfw__json_err(&p, "expected ',' or ']'");
        }
        if (len0 >= 0 && c->row != len0)
          return tfw__error(TFW_EFORMAT, "%s: column '%.64s' has %lld values, the first column "
                            "has %lld", c->what, f->name, (long long)c->row, (long long)len0);
        len0 = c->row;
      } while (tfw__json_eat(&p, ','));
      if (!tfw__json_eat(&p, '}')) return tfw__json_err(&p, "expected ',' or '}'");
    }
    c->row = len0 < 0 ? 0 : len0;
  } else {
    return tfw__json_err(&p, "expected an array of records or an object of columns");
  }
  tfw__json_ws(&p);
  if (p.pos != p.n) return tfw__json_err(&p, "text after the JSON value");
  *rows = c->row;
  return TFW_OK;
}

static tfw_status json_open_any(tfw_reader *r, const tfw__input *in, bool jsonl) {
  jctx c = {.in = in, .fmt = jsonl ? "jsonl" : "json"};
  size_t bad = tfw__utf8_check(in->data, in->size);
  if (bad != in->size)
    return tfw__error(TFW_EFORMAT, "%s: '%s': invalid UTF-8 at byte %zu", c.fmt, in->name, bad);
  char *arena = tfw__malloc(in->size + 1);
  tfw_field *fields = NULL;
  tfw_column *cols = NULL;
  int64_t rows = 0;
  tfw_status s;
  if (!arena) return tfw__error(TFW_ENOMEM, "%s: '%s': out of memory", c.fmt, in->name);
  if ((s = walk(&c, jsonl, arena, &rows))) goto out;
  /* types and buffers */
  fields = tfw__calloc((size_t)c.nf + 1, sizeof *fields);
  cols = tfw__calloc((size_t)c.nf + 1, sizeof *cols);
  if (!fields || !cols) goto nomem;
  for (int i = 0; i < c.nf; i++) {
    jfield *f = &c.fl[i];
    tfw_field *o = &f->f;
    o->name = f->name;
    o->nullable = f->missing || f->last_row < 0;
    /* absent from some record? pass 1 saw each field once per record it is in */
    int64_t shape[TFW_MAX_DIMS + 1], n1 = rows + 1;
    if (f->kind == K_STR) {
      o->dtype = TFW_DTYPE_U8, o->is_string = true, o->ndim = 1, o->shape[0] = -1;
      int64_t nb = f->total;
      f->col.values = tfw_empty(TFW_DTYPE_U8, 1, &nb);
      f->col.offsets = tfw_zeros(TFW_DTYPE_I64, 1, &n1);
      if (!f->col.values || !f->col.offsets) goto nomem;
    } else if (f->kind == K_ARR) {
      o->dtype = f->is_int ? TFW_DTYPE_I64 : TFW_DTYPE_F64;
      o->ndim = f->rank;
      memcpy(o->shape, f->shape, sizeof(int64_t) * (size_t)f->rank);
      if (f->var0) {
        o->shape[0] = -1;
        int64_t inner = 1;
        for (int d = 1; d < f->rank; d++) inner *= f->shape[d];
        memcpy(shape, f->shape, sizeof(int64_t) * (size_t)f->rank);
        shape[0] = inner ? f->total / inner : 0;
        f->col.values = tfw_empty(o->dtype, f->rank, shape);
        f->col.offsets = tfw_zeros(TFW_DTYPE_I64, 1, &n1);
        if (!f->col.values || !f->col.offsets) goto nomem;
      } else {
        shape[0] = rows;
        memcpy(shape + 1, f->shape, sizeof(int64_t) * (size_t)f->rank);
        if (!(f->col.values = tfw_empty(o->dtype, f->rank + 1, shape))) goto nomem;
      }
    } else {
      o->dtype = f->kind == K_BOOL ? TFW_DTYPE_BOOL
                 : f->kind == K_NUM && f->is_int ? TFW_DTYPE_I64 : TFW_DTYPE_F64;
      if (!(f->col.values = tfw_empty(o->dtype, 1, &rows))) goto nomem;
    }
    f->last_row = -1;
  }
  /* nullability: a field absent from any record is nullable; count presence in pass 2 */
  c.pass2 = true;
  for (int i = 0; i < c.nf; i++) { /* masks for every field first; trimmed below */
    if (!(c.fl[i].col.mask = tfw_ones(TFW_DTYPE_BOOL, 1, &rows))) goto nomem;
  }
  if ((s = walk(&c, jsonl, arena, &rows))) goto out;
  for (int i = 0; i < c.nf; i++) {
    jfield *f = &c.fl[i];
    const bool *m = tfw_tensor_data(f->col.mask);
    bool any_missing = false;
    for (int64_t k = 0; k < rows && !any_missing; k++) any_missing = !m[k];
    f->f.nullable = any_missing;
    if (!any_missing) tfw_release(f->col.mask), f->col.mask = NULL;
    fields[i] = f->f;
    cols[i] = f->col;
    memset(&f->col, 0, sizeof f->col);
  }
  if ((s = tfw__reader_set_schema(r, c.nf, fields))) goto out;
  s = tfw__reader_set_table(r, rows, cols);
  goto out;
nomem:
  s = tfw_last_status() == TFW_ENOMEM ? TFW_ENOMEM
                                      : tfw__error(TFW_ENOMEM, "%s: '%s': out of memory", c.fmt, in->name);
out:
  if (cols)
    for (int i = 0; i < c.nf; i++) tfw_column_clear(&cols[i]);
  for (int i = 0; i < c.nf; i++) tfw_column_clear(&c.fl[i].col), tfw__free(c.fl[i].name);
  tfw__free(c.fl);
  tfw__free(cols);
  tfw__free(fields);
  tfw__free(arena);
  return s;
}

static tfw_status json_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  return json_open_any(r, in, false);
}
static tfw_status jsonl_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  return json_open_any(r, in, true);
}

/* '[' or '{' first (after whitespace): JSON; '{' ... '}' then a newline and '{': JSONL. */
static int json_sniff(const uint8_t *h, size_t n) {
  size_t i = 0;
  while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == '\r' || h[i] == '\n')) i++;
  return i < n && (h[i] == '[' || h[i] == '{') ? 40 : 0;
}
static int jsonl_sniff(const uint8_t *h, size_t n) {
  if (n == 0 || h[0] != '{') return 0;
  const uint8_t *nl = memchr(h, '\n', n);
  if (!nl || nl == h) return 0;
  size_t k = (size_t)(nl - h);
  while (k > 0 && (h[k - 1] == '\r' || h[k - 1] == ' ')) k--;
  return k > 0 && h[k - 1] == '}' && (size_t)(nl - h) + 1 < n && nl[1] == '{' ? 45 : 0;
}

const tfw__reader_backend tfw__backend_json = {"json", ".json", json_sniff, json_open};
const tfw__reader_backend tfw__backend_jsonl = {"jsonl", ".jsonl .ndjson", jsonl_sniff, jsonl_open};
