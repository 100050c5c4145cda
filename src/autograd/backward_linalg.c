/* Backward and forward-mode (JVP) rules of the linear-algebra family: bmm, addmm, baddbmm,
 * outer, dot and einsum (matmul lives with the arithmetic core in backward_basic.c).
 *
 * Every op here is multilinear in its tensor inputs, so each JVP is a sum over the inputs
 * of the op with that input replaced by its tangent, and each backward is the op (or
 * another product op) applied to the output gradient and the other inputs. Rules use
 * registered ops only, so that with create_graph they are recorded (double backward).
 *
 * einsum's backward, for operand k, is one einsum of the output gradient with the other
 * operands, producing operand k's subscripts. Three things need care:
 *   - "..." dims get explicit letters (unused ones), so broadcasting is explicit: a "..."
 *     dim of size 1 in another operand, against a larger size elsewhere, gets its own
 *     letter (summed away, i.e. squeezed); one of size 1 in operand k itself is summed
 *     and comes back as a size-1 dim through a ones[1] operand;
 *   - a label of operand k found in no other operand and not in the output was summed in
 *     the forward: its gradient is broadcast back through a ones[n] operand;
 *   - a label repeated in operand k (a diagonal, "ii->i") scatters the gradient onto the
 *     diagonal: the second occurrence gets a fresh letter f and an eye[n, f] operand.
 * Limits: that einsum must fit the registry's 63-character equation and 8 operands; a
 * rule that would exceed them returns TFW_EUNSUPPORTED (never a silent zero). */
#include <stdio.h>

#include "autograd/autograd.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

/* gin[i] = sum_to(t) for input i (cast to its dtype), consuming t. */
static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

/* t * s, consuming t; t itself when s == 1. */
static tfw_tensor *scale(tfw_tensor *t, double s) {
  if (!t || s == 1.0) return t;
  tfw_tensor *r = tfw_mul_scalar(t, s);
  tfw_release(t);
  return r;
}

/* The tangent t (consumed) fitted to the output's shape and dtype. */
static tfw_status finish(tfw_tensor *t, const tfw_tensor *out, tfw_tensor **tout) {
  if (!t) return tfw_last_status();
  *tout = tfw__jvp_fit(t, out);
  tfw_release(t);
  return *tout ? TFW_OK : tfw_last_status();
}

/* Transposes the last two dims (a view). */
static tfw_tensor *mT(const tfw_tensor *t) { return tfw_transpose(t, -2, -1); }

/* Gradients of alpha * (a @ b) for 3-d (bmm) or 2-d (mm) a, b: inputs ia and ib. */
static tfw_status mm_grads(const tfw__node *node, const tfw_tensor *g, int ia, int ib, double alpha,
                           tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  const tfw_tensor *a = IN(ia), *b = IN(ib);
  if (NEED(ia)) {
    tfw_tensor *bt = mT(b); /* ga = g @ b^T */
    tfw_tensor *p = bt ? tfw_matmul(g, bt) : NULL;
    tfw_release(bt);
    st = give(node, gin, ia, scale(p, alpha));
  }
  if (!st && NEED(ib)) {
    tfw_tensor *at = mT(a); /* gb = a^T @ g */
    tfw_tensor *p = at ? tfw_matmul(at, g) : NULL;
    tfw_release(at);
    st = give(node, gin, ib, scale(p, alpha));
  }
  return st;
}

tfw_status tfw__backward_bmm(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return mm_grads(node, gout[0], 0, 1, 1.0, gin);
}

/* addmm and baddbmm: out = beta * c + alpha * (a @ b); inputs c, a, b. */
tfw_status tfw__backward_addmm(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  double beta = node->call.a.f[0], alpha = node->call.a.f[1];
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, scale(tfw_retain(gout[0]), beta));
  if (!st) st = mm_grads(node, gout[0], 1, 2, alpha, gin);
  return st;
}

tfw_status tfw__backward_baddbmm(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return tfw__backward_addmm(node, gout, gin);
}

/* outer: out[i, j] = a[i] b[j]; ga = g @ b, gb = a @ g (matrix-vector products). */
tfw_status tfw__backward_outer(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_matmul(gout[0], IN(1)));
  if (!st && NEED(1)) st = give(node, gin, 1, tfw_matmul(IN(0), gout[0]));
  return st;
}

/* dot: out = sum_i a[i] b[i] (0-d); ga = g * b, gb = g * a. */
tfw_status tfw__backward_dot(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_mul(gout[0], IN(1)));
  if (!st && NEED(1)) st = give(node, gin, 1, tfw_mul(gout[0], IN(0)));
  return st;
}

/* ---- JVPs of the fixed-arity products ------------------------------------------------------ */

typedef tfw_tensor *(*bin_fn)(const tfw_tensor *a, const tfw_tensor *b);

/* Product rule for a bilinear f(a, b) with a = in[ia], b = in[ib]: f(ta, b) + f(a, tb). */
static tfw_tensor *bilinear_jvp(bin_fn f, const tfw__call *c, tfw_tensor *const *tin, int ia, int ib) {
  tfw_tensor *t0 = tin[ia] ? f(tin[ia], c->in[ib]) : NULL;
  if (tin[ia] && !t0) return NULL;
  tfw_tensor *t1 = tin[ib] ? f(c->in[ia], tin[ib]) : NULL;
  if (tin[ib] && !t1) {
    tfw_release(t0);
    return NULL;
  }
  tfw_tensor *s = tfw__jvp_sum2(t0, t1);
  if (!s) tfw__error(TFW_EINTERNAL, "%s jvp: no tangent", c->op->name);
  return s;
}

tfw_status tfw__jvp_bmm(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  return finish(bilinear_jvp(tfw_bmm, c, tin, 0, 1), outputs[0], tout);
}

tfw_status tfw__jvp_outer(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                          tfw_tensor **tout) {
  return finish(bilinear_jvp(tfw_outer, c, tin, 0, 1), outputs[0], tout);
}

tfw_status tfw__jvp_dot(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  return finish(bilinear_jvp(tfw_dot, c, tin, 0, 1), outputs[0], tout);
}

/* addmm / baddbmm: d(out) = beta * dc + alpha * (da @ b + a @ db). */
tfw_status tfw__jvp_addmm(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                          tfw_tensor **tout) {
  double beta = c->a.f[0], alpha = c->a.f[1];
  bin_fn f = c->op->id == TFW__OP_addmm ? tfw_matmul : tfw_bmm;
  tfw_tensor *p = NULL, *tc = NULL;
  if (tin[1] || tin[2]) {
    p = scale(bilinear_jvp(f, c, tin, 1, 2), alpha);
    if (!p) return tfw_last_status();
  }
  if (tin[0]) {
    tc = scale(tfw_retain(tin[0]), beta);
    if (!tc) {
      tfw_release(p);
      return tfw_last_status();
    }
  }
  return finish(tfw__jvp_sum2(p, tc), outputs[0], tout);
}

tfw_status tfw__jvp_baddbmm(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                            tfw_tensor **tout) {
  return tfw__jvp_addmm(c, outputs, tin, tout);
}

/* ---- einsum ---------------------------------------------------------------------------------- */

/* Labels: 'A'..'Z' -> 0..25, 'a'..'z' -> 26..51 (as in src/ops/einsum.c); the dims of the
 * "..." block are 52..59, right-aligned across operands. */
#define EL_LETTERS 52
#define EL_ELL EL_LETTERS
#define EL_NLAB (EL_LETTERS + TFW_MAX_DIMS)
#define EQ_CAP ((int)sizeof(((tfw__attrs *)0)->str))

typedef struct el_eq {
  int n;                              /* operands */
  int nd[TFW__MAX_IN];
  int lab[TFW__MAX_IN][TFW_MAX_DIMS]; /* label of each operand dim */
  int out_nd;
  int out_lab[TFW_MAX_DIMS];
  int64_t size[EL_NLAB];              /* the broadcast size of each label (-1: unused) */
  char ch[EL_NLAB];                   /* the letter each label is written with */
  bool used[EL_LETTERS];              /* letters taken (equation letters and fresh ones) */
} el_eq;

static int el_label(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
  return -1;
}

static char el_char(int l) { return (char)(l < 26 ? 'A' + l : 'a' + (l - 26)); }

/* An unused letter, or 0 when all 52 are taken. */
static char el_fresh(el_eq *e) {
  for (int l = 0; l < EL_LETTERS; l++)
    if (!e->used[l]) {
      e->used[l] = true;
      return el_char(l);
    }
  return 0;
}

/* Parses eq[b, end) into letters (lets) and the position of "..." (*ell, -1: none). */
static int el_term(const char *eq, int b, int end, int *lets, int *ell) {
  int n = 0;
  *ell = -1;
  for (int i = b; i < end; i++) {
    if (eq[i] == '.') {
      *ell = n;
      i += 2;
    } else if (el_label(eq[i]) >= 0) {
      lets[n++] = el_label(eq[i]);
    }
  }
  return n;
}

/* Parses a call's equation; the forward already validated it against these operands. */
static tfw_status el_parse(const tfw__call *c, el_eq *e) {
  const char *eq = c->a.str;
  memset(e, 0, sizeof *e);
  e->n = c->n_in;
  for (int l = 0; l < EL_NLAB; l++) e->size[l] = -1;
  int len = (int)strnlen(eq, (size_t)EQ_CAP);
  const char *arrow = strstr(eq, "->");
  int lhs_end = arrow ? (int)(arrow - eq) : len;
  int lets[EQ_CAP], ell[TFW__MAX_IN], nlet[TFW__MAX_IN], count[EL_LETTERS] = {0};
  int tl[TFW__MAX_IN][EQ_CAP];
  int n_ell = 0;
  for (int k = 0, b = 0; k < e->n; k++) {
    int end = b;
    while (end < lhs_end && eq[end] != ',') end++;
    nlet[k] = el_term(eq, b, end, tl[k], &ell[k]);
    b = end + 1;
    e->nd[k] = c->in[k]->ndim;
    int ek = e->nd[k] - nlet[k];
    if (ek < 0 || ek > TFW_MAX_DIMS) return tfw__error(TFW_EINTERNAL, "einsum backward: bad operand %d", k);
    if (ek > n_ell) n_ell = ek;
  }
  for (int k = 0; k < e->n; k++) {
    int ek = e->nd[k] - nlet[k], at = ell[k] >= 0 ? ell[k] : nlet[k];
    for (int d = 0; d < e->nd[k]; d++) {
      int l = d < at ? tl[k][d] : d < at + ek ? EL_ELL + (n_ell - ek) + (d - at) : tl[k][d - ek];
      e->lab[k][d] = l;
      if (l < EL_LETTERS) count[l]++, e->used[l] = true;
      int64_t s = c->in[k]->shape[d];
      if (e->size[l] < 0 || e->size[l] == 1) e->size[l] = s; /* "..." dims broadcast 1 */
    }
  }
  if (arrow) {
    int oell, n = el_term(eq, lhs_end + 2, len, lets, &oell);
    int at = oell >= 0 ? oell : n;
    for (int i = 0; i < at; i++) e->out_lab[e->out_nd++] = lets[i];
    if (oell >= 0)
      for (int j = 0; j < n_ell; j++) e->out_lab[e->out_nd++] = EL_ELL + j;
    for (int i = at; i < n; i++) e->out_lab[e->out_nd++] = lets[i];
  } else {
    for (int j = 0; j < n_ell; j++) e->out_lab[e->out_nd++] = EL_ELL + j;
    for (int l = 0; l < EL_LETTERS; l++)
      if (count[l] == 1) e->out_lab[e->out_nd++] = l;
  }
  for (int l = 0; l < EL_LETTERS; l++) e->ch[l] = el_char(l);
  for (int j = 0; j < n_ell; j++)
    if (!(e->ch[EL_ELL + j] = el_fresh(e)))
      return tfw__error(TFW_EUNSUPPORTED, "einsum backward: \"%s\" uses too many letters to spell "
                        "out its \"...\" dims", eq);
  return TFW_OK;
}

/* Appends ch to the equation buffer; false when it would not fit. */
static bool put(char *buf, int *len, char ch) {
  if (*len + 1 >= EQ_CAP) return false;
  buf[(*len)++] = ch;
  buf[*len] = '\0';
  return true;
}

/* Appends operand j's subscripts: its letters, with a fresh letter for each "..." dim of
 * size 1 that is broadcast against a larger size (summed away: a squeeze). */
static bool put_operand(el_eq *e, const tfw__call *c, int j, char *buf, int *len) {
  for (int d = 0; d < e->nd[j]; d++) {
    int l = e->lab[j][d];
    char ch = e->ch[l];
    if (l >= EL_ELL && c->in[j]->shape[d] == 1 && e->size[l] != 1) ch = el_fresh(e);
    if (!ch || !put(buf, len, ch)) return false;
  }
  return true;
}

/* Gradient of einsum operand k: one einsum of gout with the other operands and constants
 * (ones for labels to broadcast back, eyes for diagonals). Returns a new reference. */
static tfw_tensor *einsum_grad(const tfw__node *node, const tfw_tensor *g, int k) {
  const tfw__call *c = &node->call;
  el_eq e;
  if (el_parse(c, &e)) return NULL;
  const tfw_tensor *x = IN(k);
  tfw_dtype dt = g->dtype;
  char buf[EQ_CAP];
  int len = 0;
  buf[0] = '\0';
  tfw_tensor *ops[TFW__MAX_IN] = {NULL}, *owned[TFW__MAX_IN] = {NULL};
  int nops = 0, nowned = 0;
  bool ok = true, avail[EL_NLAB] = {false};
  char res[TFW_MAX_DIMS]; /* the result's subscript for each dim of operand k */
  tfw_tensor *r = NULL;

  /* gout and the other operands */
  for (int i = 0; i < e.out_nd && ok; i++) {
    ok = put(buf, &len, e.ch[e.out_lab[i]]);
    avail[e.out_lab[i]] = true;
  }
  ops[nops++] = (tfw_tensor *)g;
  for (int j = 0; j < e.n && ok; j++) {
    if (j == k) continue;
    ok = put(buf, &len, ',') && put_operand(&e, c, j, buf, &len);
    for (int d = 0; d < e.nd[j]; d++)
      if (c->in[j]->shape[d] == e.size[e.lab[j][d]]) avail[e.lab[j][d]] = true;
    ops[nops++] = (tfw_tensor *)c->in[j];
  }
  /* constants for operand k's dims: ones where a label is not available or is broadcast in
   * operand k, an eye joining each repeat to the label's first occurrence */
  char first[EL_NLAB] = {0};
  for (int d = 0; d < e.nd[k] && ok; d++) {
    int l = e.lab[k][d];
    int64_t s = x->shape[d];
    tfw_tensor *cst = NULL;
    char cs[3] = {0};
    if (first[l]) { /* a repeat: eye[first, res] */
      res[d] = el_fresh(&e);
      cs[0] = first[l], cs[1] = res[d];
      if (res[d]) cst = tfw_eye(s, s, dt);
    } else if (!avail[l] || s != e.size[l]) { /* summed in the forward, or broadcast in x */
      res[d] = first[l] = el_fresh(&e);
      cs[0] = res[d];
      if (res[d]) cst = tfw_ones(dt, 1, &s);
    } else {
      res[d] = first[l] = e.ch[l];
    }
    if (!res[d]) ok = false;
    if (ok && cs[0]) {
      if (!cst) goto fail; /* out of memory: keep that error */
      owned[nowned++] = cst;
      if (nops == TFW__MAX_IN) ok = false;
      else ops[nops++] = cst;
      ok = ok && put(buf, &len, ',') && put(buf, &len, cs[0]) && (!cs[1] || put(buf, &len, cs[1]));
    }
  }
  ok = ok && put(buf, &len, '-') && put(buf, &len, '>');
  for (int d = 0; d < e.nd[k] && ok; d++) ok = put(buf, &len, res[d]);
  if (ok)
    r = tfw_einsum(buf, nops, ops);
  else
    tfw__error(TFW_EUNSUPPORTED, "einsum backward: the gradient of operand %d of \"%s\" needs "
               "more than %d operands, %d characters or 52 letters", k, c->a.str, TFW__MAX_IN,
               EQ_CAP - 1);
fail:
  for (int i = 0; i < nowned; i++) tfw_release(owned[i]);
  return r;
}

tfw_status tfw__backward_einsum(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  for (int k = 0; k < node->call.n_in && !st; k++)
    if (NEED(k)) st = give(node, gin, k, einsum_grad(node, gout[0], k));
  return st;
}

/* Multilinear: the sum over operands of the einsum with operand i replaced by its tangent. */
tfw_status tfw__jvp_einsum(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                           tfw_tensor **tout) {
  tfw_tensor *acc = NULL;
  for (int i = 0; i < c->n_in; i++) {
    if (!tin[i]) continue;
    tfw_tensor *ops[TFW__MAX_IN];
    for (int j = 0; j < c->n_in; j++) ops[j] = j == i ? tin[i] : (tfw_tensor *)c->in[j];
    tfw_tensor *t = tfw_einsum(c->a.str, c->n_in, ops);
    if (!t) {
      tfw_release(acc);
      return tfw_last_status();
    }
    acc = tfw__jvp_sum2(acc, t);
    if (!acc) return tfw_last_status();
  }
  if (!acc) return tfw__error(TFW_EINTERNAL, "einsum jvp: no tangent");
  return finish(acc, outputs[0], tout);
}
