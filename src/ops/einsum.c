/* einsum: Einstein summation over any number of operands, lowered to batched GEMMs.
 *
 * Words used here: a *label* is one subscript letter ('A'..'Z' -> 0..25, 'a'..'z' -> 26..51,
 * so label order is ASCII order, the implicit output's order) or one dim of the "..."
 * broadcast block (52..59, right-aligned across operands like NumPy broadcasting). A
 * *term* is a strided view of one operand or intermediate with one entry per distinct
 * label.
 *
 * Lowering (the same plan as torch.einsum / opt_einsum's pairwise path, left to right):
 *   1. parse and check the equation (every message names the equation's fault);
 *   2. each operand becomes a term: a label repeated inside one operand is its diagonal,
 *      a view whose stride is the sum of the repeated dims' strides (no copy);
 *   3. labels that occur in one term only and are not needed later are summed out first:
 *      a GEMM of the term as [1, kept, summed] against a stride-0 ones vector;
 *   4. terms are contracted left to right, each pair as one batched GEMM
 *      [batch, M, C] @ [batch, C, N]: labels in both terms and needed later are the batch,
 *      labels in both and not needed later are contracted (C), the others are rows (M,
 *      first term) and columns (N, second term). Grouping a term's labels into three dims
 *      is a pure view when the strides allow it, else one copy;
 *   5. the last term is permuted to the output order and cast into the output.
 * Intermediates are computed in f64 for f64, f32 for other floats and int64 for integers
 * (tfw__matmul_strided, linalg.c), so f16/bf16 round once at the end.
 *
 * Terms are kept in this file's own descriptor (up to 60 dims) rather than in tensors,
 * because an intermediate may need more than TFW_MAX_DIMS (8) dims, e.g. the product of
 * "abcde,fghij,..." before later operands contract it. */
#include <ctype.h>
#include <stdio.h>

#include "ops/linalg.h"
#include "ops/registry.h"
#include "ops/samples.h"

#define EIN_LETTERS 52
#define EIN_ELL EIN_LETTERS                  /* first label of the "..." block */
#define EIN_NLAB (EIN_LETTERS + TFW_MAX_DIMS) /* 60 labels in all */
#define EQ_CAP ((int)sizeof(((tfw__attrs *)0)->str))

static int label_of(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
  return -1;
}

static char label_char(int l) { return (char)(l < 26 ? 'A' + l : 'a' + (l - 26)); }

/* ---- parsing --------------------------------------------------------------------------- */

typedef struct ein_term_text {
  int begin, end; /* the term's characters in the equation */
  int nlet;       /* letters in the term */
  int let[EQ_CAP];
  int ell_at;     /* letters before the "...", or -1 without one */
} ein_term_text;

typedef struct ein_plan {
  int n;                               /* operands */
  int lab[TFW__MAX_IN][TFW_MAX_DIMS];  /* label of each operand dim */
  int n_ell;                           /* dims of the "..." block */
  int out_nd;
  int out_lab[TFW_MAX_DIMS];
  int64_t size[EIN_NLAB];              /* size of each label; -1: unused */
  tfw_dtype dtype;                     /* result dtype */
} ein_plan;

static tfw_status bad_char(const char *eq, int i) {
  unsigned char ch = (unsigned char)eq[i];
  if (isprint(ch))
    return tfw__error(TFW_EVALUE, "einsum: invalid character '%c' at position %d of \"%s\" "
                      "(subscripts are letters a-z and A-Z, with ',', '->' and '...')", ch, i,
                      eq);
  return tfw__error(TFW_EVALUE, "einsum: invalid byte 0x%02x at position %d of the equation "
                    "(subscripts are letters a-z and A-Z, with ',', '->' and '...')", ch, i);
}

/* Parses eq[begin, end) (no ',' or "->" inside) into t. */
static tfw_status parse_term(const char *eq, int begin, int end, ein_term_text *t) {
  t->begin = begin;
  t->end = end;
  t->nlet = 0;
  t->ell_at = -1;
  for (int i = begin; i < end; i++) {
    char ch = eq[i];
    if (ch == ' ') continue;
    if (ch == '.') {
      if (i + 2 >= end || eq[i + 1] != '.' || eq[i + 2] != '.' || t->ell_at >= 0)
        return tfw__error(TFW_EVALUE, "einsum: '.' at position %d of \"%s\" is not part of a "
                          "single '...' (each term may hold one '...')", i, eq);
      t->ell_at = t->nlet;
      i += 2;
      continue;
    }
    int l = label_of(ch);
    if (l < 0) return bad_char(eq, i);
    t->let[t->nlet++] = l;
  }
  return TFW_OK;
}

static tfw_status parse(const tfw__call *c, ein_plan *p) {
  const char *eq = c->a.str;
  int len = (int)strnlen(eq, (size_t)EQ_CAP);
  if (len == EQ_CAP)
    return tfw__error(TFW_EVALUE, "einsum: the equation is not NUL-terminated within %d bytes",
                      EQ_CAP);
  memset(p, 0, sizeof *p);
  p->n = c->n_in;
  if (p->n < 1)
    return tfw__error(TFW_EVALUE, "einsum: at least one operand is required, got %d", p->n);
  for (int l = 0; l < EIN_NLAB; l++) p->size[l] = -1;

  /* split "lhs->rhs" and the lhs at ',' */
  const char *arrow = strstr(eq, "->");
  int lhs_end = arrow ? (int)(arrow - eq) : len;
  if (arrow && strstr(arrow + 2, "->"))
    return tfw__error(TFW_EVALUE, "einsum: \"%s\" has more than one '->'", eq);
  for (int i = 0; i < len; i++) {
    char ch = eq[i];
    bool ok = label_of(ch) >= 0 || ch == ' ' || ch == '.' || (ch == ',' && i < lhs_end) ||
              (arrow && ((ch == '-' && i == lhs_end) || (ch == '>' && i == lhs_end + 1)));
    if (!ok) return bad_char(eq, i);
  }
  int nterms = 1;
  for (int i = 0; i < lhs_end; i++) nterms += eq[i] == ',';
  if (nterms != p->n)
    return tfw__error(TFW_EVALUE, "einsum: \"%s\" has subscripts for %d operand%s but %d "
                      "tensor%s given", eq, nterms, nterms == 1 ? "" : "s", p->n,
                      p->n == 1 ? " was" : "s were");

  ein_term_text tt;
  int count[EIN_LETTERS] = {0};
  int first_op[EIN_NLAB] = {0};
  int e_of[TFW__MAX_IN];
  ein_term_text terms[TFW__MAX_IN];
  tfw_status st;
  for (int k = 0, b = 0; k < p->n; k++) {
    int e = b;
    while (e < lhs_end && eq[e] != ',') e++;
    if ((st = parse_term(eq, b, e, &terms[k]))) return st;
    b = e + 1;
  }
  /* each operand's dims against its subscripts; the size of "..." */
  for (int k = 0; k < p->n; k++) {
    const ein_term_text *t = &terms[k];
    int nd = c->in[k]->ndim;
    e_of[k] = nd - t->nlet;
    if ((t->ell_at < 0 && e_of[k] != 0) || e_of[k] < 0)
      return tfw__error(TFW_ESHAPE, "einsum: operand %d has %d dimension%s but its subscripts "
                        "\"%.*s\" name %s%d", k, nd, nd == 1 ? "" : "s", t->end - t->begin,
                        eq + t->begin, t->ell_at >= 0 ? "at least " : "", t->nlet);
    if (e_of[k] > p->n_ell) p->n_ell = e_of[k];
  }
  /* labels of every operand dim, and their sizes */
  for (int k = 0; k < p->n; k++) {
    const ein_term_text *t = &terms[k];
    const tfw_tensor *x = c->in[k];
    int ell_at = t->ell_at >= 0 ? t->ell_at : t->nlet;
    for (int d = 0; d < x->ndim; d++) {
      int l;
      if (d < ell_at) l = t->let[d];
      else if (d < ell_at + e_of[k]) l = EIN_ELL + (p->n_ell - e_of[k]) + (d - ell_at);
      else l = t->let[d - e_of[k]];
      p->lab[k][d] = l;
      int64_t s = x->shape[d];
      if (l < EIN_ELL) {
        count[l]++;
        if (p->size[l] < 0) {
          p->size[l] = s;
          first_op[l] = k;
        } else if (p->size[l] != s) {
          return tfw__error(TFW_ESHAPE, "einsum: subscript '%c' has size %lld in operand %d "
                            "and size %lld in operand %d", label_char(l),
                            (long long)p->size[l], first_op[l], (long long)s, k);
        }
      } else if (p->size[l] < 0 || p->size[l] == 1) {
        p->size[l] = s;
        first_op[l] = k;
      } else if (s != 1 && s != p->size[l]) {
        return tfw__error(TFW_ESHAPE, "einsum: operands do not broadcast over '...': size %lld "
                          "in operand %d and size %lld in operand %d", (long long)p->size[l],
                          first_op[l], (long long)s, k);
      }
    }
  }
  /* output labels */
  int nout = 0;
  int out[EIN_NLAB];
  if (arrow) {
    if ((st = parse_term(eq, lhs_end + 2, len, &tt))) return st;
    bool seen[EIN_LETTERS] = {false};
    for (int i = 0; i < tt.nlet; i++) {
      int l = tt.let[i];
      if (count[l] == 0)
        return tfw__error(TFW_EVALUE, "einsum: output subscript '%c' of \"%s\" does not appear "
                          "in any operand", label_char(l), eq);
      if (seen[l])
        return tfw__error(TFW_EVALUE, "einsum: output subscript '%c' appears more than once in "
                          "\"%s\"", label_char(l), eq);
      seen[l] = true;
    }
    int ell_at = tt.ell_at >= 0 ? tt.ell_at : tt.nlet;
    for (int i = 0; i < ell_at; i++) out[nout++] = tt.let[i];
    if (tt.ell_at >= 0) /* without "..." in an explicit output, the block is summed */
      for (int j = 0; j < p->n_ell; j++) out[nout++] = EIN_ELL + j;
    for (int i = ell_at; i < tt.nlet; i++) out[nout++] = tt.let[i];
  } else { /* implicit: the "..." block, then letters used once, in ASCII order */
    for (int j = 0; j < p->n_ell; j++) out[nout++] = EIN_ELL + j;
    for (int l = 0; l < EIN_LETTERS; l++)
      if (count[l] == 1) out[nout++] = l;
  }
  if (nout > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "einsum: the output of \"%s\" would have %d dimensions; at "
                      "most %d are supported", eq, nout, TFW_MAX_DIMS);
  p->out_nd = nout;
  for (int i = 0; i < nout; i++) p->out_lab[i] = out[i];

  p->dtype = c->in[0]->dtype;
  for (int k = 1; k < p->n; k++) p->dtype = tfw_promote_types(p->dtype, c->in[k]->dtype);
  if (p->dtype == TFW_DTYPE_BOOL)
    return tfw__error(TFW_EDTYPE, "einsum: not implemented for bool tensors; cast to an integer "
                      "or floating dtype first");
  return TFW_OK;
}

tfw_status tfw__infer_einsum(const tfw__call *c, tfw__meta *out) {
  ein_plan p;
  tfw_status st = parse(c, &p);
  if (st) return st;
  out->dtype = p.dtype;
  out->ndim = p.out_nd;
  for (int i = 0; i < p.out_nd; i++) out->shape[i] = p.size[p.out_lab[i]];
  return TFW_OK;
}

/* ---- terms ----------------------------------------------------------------------------- */

typedef struct ein_term {
  tfw_tensor *base; /* owned reference; dtype = the compute dtype */
  int64_t offset;   /* elements */
  int nd;
  int lab[EIN_NLAB];
  int64_t size[EIN_NLAB], stride[EIN_NLAB];
} ein_term;

static int term_find(const ein_term *t, int l) {
  for (int i = 0; i < t->nd; i++)
    if (t->lab[i] == l) return i;
  return -1;
}

static void term_set_base(ein_term *t, tfw_tensor *base) {
  tfw_release(t->base);
  t->base = base;
  t->offset = base->offset;
}

/* t := a contiguous tensor `base` holding labels lab[0..nd) with sizes from plan. */
static void term_contiguous(ein_term *t, tfw_tensor *base, int nd, const int *lab,
                            const int64_t *size) {
  term_set_base(t, base);
  t->nd = nd;
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; i--) {
    t->lab[i] = lab[i];
    t->size[i] = size[lab[i]];
    t->stride[i] = s;
    s *= size[lab[i]];
  }
}

/* The group's merged (size, stride) if its dims (outer to inner) fold into one strided dim. */
static bool group_merge(const ein_term *t, int n, const int *g, int64_t *size, int64_t *stride) {
  int prev = -1;
  bool ok = true;
  *size = 1;
  for (int i = 0; i < n; i++) {
    int d = term_find(t, g[i]);
    TFW_ASSERT(d >= 0);
    *size *= t->size[d]; /* no overflow: bounded by the (valid) tensors' element counts */
    if (t->size[d] == 1) continue;
    if (prev >= 0 && t->stride[prev] != t->stride[d] * t->size[d]) ok = false;
    prev = d;
  }
  *stride = prev >= 0 ? t->stride[prev] : 0;
  return ok || *size == 0;
}

/* dst (contiguous, numel elements of es bytes) := t's dims in the order ord[0..nd). Dims
 * that fold are merged first; up to TFW_MAX_DIMS dims go through tfw__copy_cast (typed and
 * parallel), more through a plain odometer loop. */
static tfw_status gather(tfw_tensor *dst, const ein_term *t, int nd, const int *ord) {
  int64_t size[EIN_NLAB], stride[EIN_NLAB];
  int m = 0;
  for (int i = 0; i < nd; i++) {
    int d = term_find(t, ord[i]);
    if (t->size[d] == 1) continue;
    if (m > 0 && stride[m - 1] == t->stride[d] * t->size[d]) {
      size[m - 1] *= t->size[d];
      stride[m - 1] = t->stride[d];
    } else {
      size[m] = t->size[d];
      stride[m++] = t->stride[d];
    }
  }
  if (m <= TFW_MAX_DIMS) {
    tfw_tensor *src = tfw__tensor_view(t->base, m, size, stride, t->offset);
    int64_t cst[TFW_MAX_DIMS];
    tfw__contiguous_strides(m, size, cst);
    tfw_tensor *dv = src ? tfw__tensor_view(dst, m, size, cst, dst->offset) : NULL;
    tfw_status st = dv ? tfw__copy_cast(dv, src) : tfw_last_status();
    tfw_release(src);
    tfw_release(dv);
    return st;
  }
  size_t es = tfw_dtype_size(dst->dtype);
  const char *sp = tfw__data(t->base) + (t->offset - t->base->offset) * (int64_t)es;
  char *dp = tfw__data(dst);
  int64_t idx[EIN_NLAB] = {0}, total = 1;
  for (int i = 0; i < m; i++) total *= size[i];
  for (int64_t e = 0; e < total; e++) {
    int64_t off = 0;
    for (int i = 0; i < m; i++) off += idx[i] * stride[i];
    memcpy(dp + e * (int64_t)es, sp + off * (int64_t)es, es);
    for (int i = m - 1; i >= 0 && ++idx[i] == size[i]; i--) idx[i] = 0;
  }
  return TFW_OK;
}

/* A [size(g0), size(g1), size(g2)] view of t whose dims are the label groups g0, g1, g2
 * (together all of t's labels): a view when each group folds, else a copy. */
static tfw_tensor *group3(ein_term *t, const int *const g[3], const int n[3]) {
  int64_t shape[3], strides[3];
  bool ok = true;
  for (int i = 0; i < 3; i++) ok = group_merge(t, n[i], g[i], &shape[i], &strides[i]) && ok;
  if (ok) return tfw__tensor_view(t->base, 3, shape, strides, t->offset);
  tfw_tensor *dst = tfw__tensor_new("einsum", t->base->dtype, 3, shape);
  if (!dst) return NULL;
  int ord[EIN_NLAB], nd = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < n[i]; j++) ord[nd++] = g[i][j];
  if (gather(dst, t, nd, ord)) {
    tfw_release(dst);
    return NULL;
  }
  return dst;
}

/* Multiplies [B, M, C] @ [B, C, N] into a new term with labels (batch, M, N). */
static tfw_status term_gemm(ein_term *z, tfw_tensor *a3, tfw_tensor *b3, int nlab,
                            const int *lab, const int64_t *size) {
  if (!a3 || !b3) return tfw_last_status();
  int64_t shape[3] = {a3->shape[0], a3->shape[1], b3->shape[2]};
  tfw_tensor *o = tfw__tensor_new("einsum", a3->dtype, 3, shape);
  if (!o) return tfw_last_status();
  tfw_status st = tfw__matmul_strided("einsum", a3, b3, o, NULL, 1.0, 0.0);
  if (st) {
    tfw_release(o);
    return st;
  }
  term_contiguous(z, o, nlab, lab, size);
  return TFW_OK;
}

/* Sums t over its labels that keep[] does not hold: [1, kept, summed] @ ones[1, summed, 1]. */
static tfw_status term_reduce(ein_term *t, const bool *keep, const int64_t *size, tfw_tensor *one) {
  int kl[EIN_NLAB], sl[EIN_NLAB], nk = 0, ns = 0;
  for (int i = 0; i < t->nd; i++) {
    if (keep[t->lab[i]]) kl[nk++] = t->lab[i];
    else sl[ns++] = t->lab[i];
  }
  if (ns == 0) return TFW_OK;
  const int *g[3] = {NULL, kl, sl};
  const int n[3] = {0, nk, ns};
  tfw_tensor *a3 = group3(t, g, n);
  tfw_tensor *b3 = NULL;
  if (a3) {
    int64_t shape[3] = {1, a3->shape[2], 1}, strides[3] = {0, 0, 0};
    b3 = tfw__tensor_view(one, 3, shape, strides, one->offset);
  }
  tfw_status st = term_gemm(t, a3, b3, nk, kl, size);
  tfw_release(a3);
  tfw_release(b3);
  return st;
}

/* x := x (*) y contracted over the shared labels that keep[] does not hold. */
static tfw_status term_contract(ein_term *x, ein_term *y, const bool *keep,
                                const int64_t *size) {
  int bl[EIN_NLAB], ml[EIN_NLAB], cl[EIN_NLAB], nl[EIN_NLAB], nb = 0, nm = 0, nc = 0, nn = 0;
  for (int i = 0; i < x->nd; i++) {
    int l = x->lab[i];
    if (term_find(y, l) < 0) ml[nm++] = l;
    else if (keep[l]) bl[nb++] = l;
    else cl[nc++] = l;
  }
  for (int i = 0; i < y->nd; i++)
    if (term_find(x, y->lab[i]) < 0) nl[nn++] = y->lab[i];
  const int *ga[3] = {bl, ml, cl}, *gb[3] = {bl, cl, nl};
  const int na[3] = {nb, nm, nc}, nbn[3] = {nb, nc, nn};
  int zl[EIN_NLAB], nz = 0;
  for (int i = 0; i < nb; i++) zl[nz++] = bl[i];
  for (int i = 0; i < nm; i++) zl[nz++] = ml[i];
  for (int i = 0; i < nn; i++) zl[nz++] = nl[i];
  /* overflow guard for the result (the tensors' own sizes are valid, their product may not) */
  int64_t numel = 1;
  for (int i = 0; i < nz; i++)
    if (__builtin_mul_overflow(numel, size[zl[i]], &numel))
      return tfw__error(TFW_ESHAPE, "einsum: an intermediate result would have more than 2^63 "
                        "elements");
  tfw_tensor *a3 = group3(x, ga, na);
  tfw_tensor *b3 = a3 ? group3(y, gb, nbn) : NULL;
  tfw_status st = term_gemm(x, a3, b3, nz, zl, size);
  tfw_release(a3);
  tfw_release(b3);
  return st;
}

/* ---- kernel ---------------------------------------------------------------------------- */

tfw_status tfw__kernel_einsum(const tfw__call *c, tfw_tensor **outs) {
  ein_plan p;
  tfw_status st = parse(c, &p);
  if (st) return st;
  tfw_tensor *out = outs[0];
  tfw_dtype it = p.dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64
                 : tfw_dtype_is_floating(p.dtype) ? TFW_DTYPE_F32 : TFW_DTYPE_I64;
  ein_term terms[TFW__MAX_IN];
  memset(terms, 0, sizeof terms);
  tfw_tensor *one = tfw__tensor_new("einsum", it, 0, NULL), *view = NULL;
  if (!one) return tfw_last_status();
  tfw__store_f64(tfw__data(one), it, 1.0);

  /* 2. operands as terms (diagonals for repeated labels, stride 0 for "..." broadcast) */
  for (int k = 0; k < p.n; k++) {
    const tfw_tensor *x = c->in[k];
    tfw_tensor *base = x->dtype == it ? tfw_retain((tfw_tensor *)x) : tfw__as_contiguous(x, it);
    if (!base) {
      st = tfw_last_status();
      goto done;
    }
    ein_term *t = &terms[k];
    term_set_base(t, base);
    int64_t numel = 1;
    for (int d = 0; d < x->ndim; d++) {
      int l = p.lab[k][d];
      int64_t sz = base->shape[d], sd = base->strides[d];
      if (sz != p.size[l]) sd = 0; /* a size-1 "..." dim broadcast */
      int i = term_find(t, l);
      if (i >= 0) {
        t->stride[i] += sd;
        continue;
      }
      if (__builtin_mul_overflow(numel, p.size[l], &numel)) {
        st = tfw__error(TFW_ESHAPE, "einsum: operand %d broadcast over '...' would have more "
                        "than 2^63 elements", k);
        goto done;
      }
      t->lab[t->nd] = l;
      t->size[t->nd] = p.size[l];
      t->stride[t->nd++] = sd;
    }
  }

  /* 3-4. sum out private labels, contract left to right */
  bool keep[EIN_NLAB];
  for (int k = 1; k <= p.n; k++) {
    memset(keep, 0, sizeof keep);
    for (int i = 0; i < p.out_nd; i++) keep[p.out_lab[i]] = true;
    for (int j = k + 1; j < p.n; j++)
      for (int i = 0; i < terms[j].nd; i++) keep[terms[j].lab[i]] = true;
    if (k == p.n) { /* the last term: keep the output only */
      st = term_reduce(&terms[0], keep, p.size, one);
      break;
    }
    bool keep_x[EIN_NLAB], keep_y[EIN_NLAB];
    memcpy(keep_x, keep, sizeof keep);
    memcpy(keep_y, keep, sizeof keep);
    for (int i = 0; i < terms[k].nd; i++) keep_x[terms[k].lab[i]] = true;
    if ((st = term_reduce(&terms[0], keep_x, p.size, one))) goto done;
    for (int i = 0; i < terms[0].nd; i++) keep_y[terms[0].lab[i]] = true;
    if ((st = term_reduce(&terms[k], keep_y, p.size, one))) goto done;
    if ((st = term_contract(&terms[0], &terms[k], keep, p.size))) goto done;
  }
  if (st) goto done;

  /* 5. permute to the output order, cast into out */
  int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
  TFW_ASSERT(terms[0].nd == p.out_nd);
  for (int i = 0; i < p.out_nd; i++) {
    int d = term_find(&terms[0], p.out_lab[i]);
    TFW_ASSERT(d >= 0);
    shape[i] = terms[0].size[d];
    strides[i] = terms[0].stride[d];
  }
  view = tfw__tensor_view(terms[0].base, p.out_nd, shape, strides, terms[0].offset);
  st = view ? tfw__copy_cast(out, view) : tfw_last_status();
done:
  for (int k = 0; k < p.n; k++) tfw_release(terms[k].base);
  tfw_release(view);
  tfw_release(one);
  return st;
}

/* ---- samples and the public wrapper ---------------------------------------------------- */

typedef struct ein_sample {
  const char *eq;
  tfw_dtype dt;
  tfw__layout layout;
  int n_in;
  int nd[3];
  int64_t shape[3][4];
} ein_sample;

static const ein_sample k_samples[] = {
    {"ij,jk->ik", TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 2, {2, 2}, {{3, 4}, {4, 5}}},
    {"bij,bjk->bik", TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, {3, 3}, {{2, 3, 4}, {2, 4, 3}}},
    {"...ij,...jk", TFW_DTYPE_F32, TFW__LAYOUT_BROADCAST, 2, {3, 2}, {{2, 3, 4}, {4, 2}}},
    {"ii->i", TFW_DTYPE_I32, TFW__LAYOUT_STRIDED, 1, {2}, {{4, 4}}},
};

int tfw__sample_einsum(const tfw__op_def *op, tfw__call *calls, int cap) {
  int count = 0;
  for (size_t s = 0; s < sizeof k_samples / sizeof k_samples[0] && count < cap; s++) {
    const ein_sample *es = &k_samples[s];
    const tfw_tensor *in[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < es->n_in; i++) {
      in[i] = tfw__sample_tensor(es->dt, es->nd[i], es->shape[i], -2, 2,
                                 (uint64_t)count * 16 + (uint64_t)i, es->layout);
      ok = ok && in[i];
    }
    if (!ok) {
      for (int i = 0; i < es->n_in; i++) tfw_release((tfw_tensor *)in[i]);
      break;
    }
    tfw__call_init(&calls[count], op->id, es->n_in, in);
    snprintf(calls[count].a.str, sizeof calls[count].a.str, "%s", es->eq);
    count++;
  }
  return count;
}

tfw_tensor *tfw_einsum(const char *equation, int n, tfw_tensor *const *operands) {
  if (!equation) {
    tfw__error(TFW_EVALUE, "einsum: argument 'equation' is NULL");
    return NULL;
  }
  size_t len = strlen(equation);
  if (len >= (size_t)EQ_CAP) {
    tfw__error(TFW_EVALUE, "einsum: the equation is %zu characters long; at most %d are "
               "supported", len, EQ_CAP - 1);
    return NULL;
  }
  if (n < 1 || n > TFW__MAX_IN) {
    tfw__error(TFW_EVALUE, "einsum: %d operands given; between 1 and %d are supported", n,
               TFW__MAX_IN);
    return NULL;
  }
  if (!operands) {
    tfw__error(TFW_EVALUE, "einsum: argument 'operands' is NULL");
    return NULL;
  }
  tfw__call c;
  tfw__call_init(&c, TFW__OP_einsum, n, (const tfw_tensor *const *)operands);
  memcpy(c.a.str, equation, len + 1);
  return tfw__op_run(&c);
}
