/* Tensor printing: tfw_tensor_format / tfw_print, following PyTorch's torch/_tensor_str.py
 * (precision 4, threshold 1000, edgeitems 3, linewidth 80) so that output reads the same:
 *
 *   tensor([[1.0000, 2.5000],
 *           [3.0000, 4.0000]])
 *
 * Rules (from _Formatter): integer and bool tensors print their values ("True"/"False");
 * floating tensors look at the nonzero finite values (of the summarised tensor): if all are
 * integral they print as "1." ("int mode"), else with 4 decimals; scientific notation
 * ("1.0000e+08") when max/min > 1000 or max > 1e8 (or, outside int mode, min < 1e-4). Every
 * element is right-aligned to the widest one. Above 1000 elements, each dimension longer
 * than 6 shows its first and last 3 entries around "...". 1-d rows wrap at 80 columns.
 * Suffixes: ", dtype=float64" unless the dtype is float32, int64 or bool (PyTorch writes
 * "torch.float64"; the line-break rule uses our own, shorter text); empty tensors print
 * "[]" plus ", size=(0, 3)" when not 1-d and the dtype unless float32.
 * Non-finite values print as nan / inf / -inf (never glibc's "-nan"). */
#include <math.h>
#include <stdio.h>

#include "core/core.h"

#define PRECISION 4
#define THRESHOLD 1000
#define EDGEITEMS 3
#define LINEWIDTH 80

/* ---- growable string -------------------------------------------------------------------- */
typedef struct {
  char *s;
  size_t len, cap;
  bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = tfw__realloc(b->s, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_spaces(sbuf *b, int n) {
  for (int i = 0; i < n; i++) sb_put(b, " ", 1);
}

/* ---- the formatter ---------------------------------------------------------------------- */
typedef struct {
  const tfw_tensor *t;
  bool floating, int_mode, sci_mode, summarize;
  int max_width;
  /* scan state */
  bool any;
  double vmin, vmax;
} fmt;

static const char *elem_ptr(const tfw_tensor *t, const int64_t *idx) {
  int64_t off = 0;
  for (int d = 0; d < t->ndim; d++) off += idx[d] * t->strides[d];
  return tfw__data(t) + off * (int64_t)tfw_dtype_size(t->dtype);
}

/* The text of one value, without padding. */
static int format_raw(const fmt *f, const char *p, char *buf, size_t cap) {
  tfw_dtype dt = f->t->dtype;
  if (!f->floating) {
    if (dt == TFW_DTYPE_BOOL) return snprintf(buf, cap, "%s", *(const uint8_t *)p ? "True" : "False");
    return snprintf(buf, cap, "%lld", (long long)tfw__load_i64(p, dt));
  }
  double v = tfw__load_f64(p, dt);
  if (isnan(v)) return snprintf(buf, cap, "nan");
  if (isinf(v)) return snprintf(buf, cap, v > 0 ? "inf" : "-inf");
  if (f->sci_mode) return snprintf(buf, cap, "%.*e", PRECISION, v);
  if (f->int_mode) return snprintf(buf, cap, "%.0f.", v);
  return snprintf(buf, cap, "%.*f", PRECISION, v);
}

typedef void (*visit_fn)(fmt *f, const char *p);

/* Visits the elements that will be shown (all, or the edge items when summarising). */
static void visit(fmt *f, int dim, int64_t *idx, visit_fn fn) {
  const tfw_tensor *t = f->t;
  if (dim == t->ndim) {
    fn(f, elem_ptr(t, idx));
    return;
  }
  int64_t n = t->shape[dim];
  bool cut = f->summarize && n > 2 * EDGEITEMS;
  for (int64_t i = 0; i < n; i++) {
    if (cut && i == EDGEITEMS) i = n - EDGEITEMS;
    idx[dim] = i;
    visit(f, dim + 1, idx, fn);
  }
}

static void scan_stats(fmt *f, const char *p) {
  double v = tfw__load_f64(p, f->t->dtype);
  if (!isfinite(v) || v == 0) return;
  double a = fabs(v);
  if (!f->any || a < f->vmin) f->vmin = a;
  if (!f->any || a > f->vmax) f->vmax = a;
  f->any = true;
  if (v != ceil(v)) f->int_mode = false;
}

static void scan_width(fmt *f, const char *p) {
  char buf[64];
  if (f->floating) {
    double v = tfw__load_f64(p, f->t->dtype);
    if (!isfinite(v) || v == 0) return; /* PyTorch sizes columns from nonzero finite values */
  }
  int w = format_raw(f, p, buf, sizeof buf);
  if (w > f->max_width) f->max_width = w;
}

static void fmt_init(fmt *f, const tfw_tensor *t) {
  memset(f, 0, sizeof *f);
  f->t = t;
  f->floating = tfw_dtype_is_floating(t->dtype);
  f->summarize = tfw__numel(t->ndim, t->shape) > THRESHOLD;
  f->max_width = 1;
  f->int_mode = true;
  int64_t idx[TFW_MAX_DIMS] = {0};
  if (f->floating) {
    visit(f, 0, idx, scan_stats);
    if (!f->any) return; /* no nonzero finite value: int mode, width 1 */
    if (f->vmax / f->vmin > 1000.0 || f->vmax > 1e8 || (!f->int_mode && f->vmin < 1e-4))
      f->sci_mode = true;
  }
  visit(f, 0, idx, scan_width);
}

static void put_value(sbuf *b, const fmt *f, const char *p) {
  char buf[64];
  int w = format_raw(f, p, buf, sizeof buf);
  sb_spaces(b, f->max_width - w);
  sb_puts(b, buf);
}

/* ---- layout ------------------------------------------------------------------------------ */
static void vector_str(sbuf *b, const fmt *f, int64_t *idx, int indent) {
  const tfw_tensor *t = f->t;
  int dim = t->ndim - 1;
  int64_t n = t->shape[dim];
  int elem_len = f->max_width + 2;
  int per_line = (LINEWIDTH - indent) / elem_len;
  if (per_line < 1) per_line = 1;
  bool cut = f->summarize && n > 2 * EDGEITEMS;
  sb_puts(b, "[");
  int col = 0; /* items on the current line */
  for (int64_t i = 0; i < n; i++) {
    bool dots = cut && i == EDGEITEMS;
    if (i > 0) {
      if (col == per_line) {
        sb_puts(b, ",\n");
        sb_spaces(b, indent + 1);
        col = 0;
      } else {
        sb_puts(b, ", ");
      }
    }
    if (dots) {
      sb_puts(b, " ...");
      i = n - EDGEITEMS - 1;
    } else {
      idx[dim] = i;
      put_value(b, f, elem_ptr(t, idx));
    }
    col++;
  }
  sb_puts(b, "]");
}

static void tensor_str(sbuf *b, const fmt *f, int dim, int64_t *idx, int indent) {
  const tfw_tensor *t = f->t;
  int rest = t->ndim - dim;
  if (rest == 0) {
    put_value(b, f, elem_ptr(t, idx));
    return;
  }
  if (rest == 1) {
    vector_str(b, f, idx, indent);
    return;
  }
  int64_t n = t->shape[dim];
  bool cut = f->summarize && n > 2 * EDGEITEMS;
  sb_puts(b, "[");
  for (int64_t i = 0; i < n; i++) {
    if (i > 0) {
      sb_puts(b, ",");
      for (int k = 0; k < rest - 1; k++) sb_puts(b, "\n");
      sb_spaces(b, indent + 1);
    }
    if (cut && i == EDGEITEMS) {
      sb_puts(b, "...");
      i = n - EDGEITEMS - 1;
      continue;
    }
    idx[dim] = i;
    tensor_str(b, f, dim + 1, idx, indent + 1);
  }
  sb_puts(b, "]");
}

/* PyTorch's _add_suffixes: a suffix goes on a new line when the current line would pass 80.
 * *last tracks PyTorch's last_line_len (chars after the last newline + 2 to start with). */
static void add_suffix(sbuf *b, const char *suffix, int indent, int *last) {
  int slen = (int)strlen(suffix);
  if (*last + slen + 2 > LINEWIDTH) {
    sb_puts(b, ",\n");
    sb_spaces(b, indent);
    *last = indent + slen;
  } else {
    sb_puts(b, ", ");
    *last += slen + 2;
  }
  sb_puts(b, suffix);
}

char *tfw_tensor_format(const tfw_tensor *t) {
  if (tfw__check_tensor("format", "t", t)) return NULL;
  sbuf b = {0};
  const char *prefix = "tensor(";
  const int indent = (int)strlen(prefix);
  sb_puts(&b, prefix);
  int64_t numel = tfw__numel(t->ndim, t->shape);
  char suffixes[2][TFW__SHAPE_BUF + 16];
  int nsuf = 0;
  if (numel == 0) {
    sb_puts(&b, "[]");
    if (t->ndim != 1) { /* Python tuple syntax: (0, 3) */
      int k = snprintf(suffixes[nsuf], sizeof suffixes[0], "size=(");
      for (int d = 0; d < t->ndim; d++)
        k += snprintf(suffixes[nsuf] + k, sizeof suffixes[0] - (size_t)k, "%s%lld",
                      d ? ", " : "", (long long)t->shape[d]);
      snprintf(suffixes[nsuf] + k, sizeof suffixes[0] - (size_t)k, ")");
      nsuf++;
    }
    if (t->dtype != TFW_DTYPE_F32)
      snprintf(suffixes[nsuf++], sizeof suffixes[0], "dtype=%s", tfw_dtype_name(t->dtype));
  } else {
    fmt f;
    fmt_init(&f, t);
    int64_t idx[TFW_MAX_DIMS] = {0};
    tensor_str(&b, &f, 0, idx, indent);
    if (t->dtype != TFW_DTYPE_F32 && t->dtype != TFW_DTYPE_I64 && t->dtype != TFW_DTYPE_BOOL)
      snprintf(suffixes[nsuf++], sizeof suffixes[0], "dtype=%s", tfw_dtype_name(t->dtype));
  }
  int last = 2;
  for (size_t i = 0; i < b.len; i++) last = b.s[i] == '\n' ? 2 : last + 1;
  for (int k = 0; k < nsuf; k++) add_suffix(&b, suffixes[k], indent, &last);
  sb_puts(&b, ")");
  if (b.oom) {
    tfw__free(b.s);
    tfw__error(TFW_ENOMEM, "format: out of memory building the text of a tensor of %lld elements",
               (long long)numel);
    return NULL;
  }
  return b.s;
}

void tfw_string_free(char *s) { tfw__free(s); }

tfw_status tfw_print(const tfw_tensor *t) {
  char *s = tfw_tensor_format(t);
  if (!s) return tfw_last_status();
  fputs(s, stdout);
  fputc('\n', stdout);
  tfw_string_free(s);
  return TFW_OK;
}
