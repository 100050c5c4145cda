/* Scaled dot-product attention (attention.def): inference, the kernel drivers, samples, the
 * dropout mask op and the public wrapper. The fused tiled kernels are in attention_kernel.c.
 *
 * The drivers make q, k, v (and for backward out, grad_out, logsumexp) contiguous in the
 * compute type (f64 for f64, f32 otherwise: f16/bf16 are computed in f32), flatten the
 * batch dims into BH, and read the mask through broadcast strides (a float mask of another
 * dtype is cast once, before broadcasting, so a [Lq, Lk] mask stays [Lq, Lk]). Outputs are
 * written in place when their dtype is the compute type, else through a cast copy. */
#include <math.h>
#include <stdlib.h>

#include "core/rng.h"
#include "ops/attention.h"
#include "ops/samples.h"
#include "tenflower/nn_functional_attention.h"

/* ---- inference ------------------------------------------------------------------------------ */

static tfw_status check_qkv(const char *op, const tfw__call *c) {
  const tfw_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF], b3[TFW__SHAPE_BUF];
  if (tfw__check_float(op, "query", q) || tfw__check_float(op, "key", k) ||
      tfw__check_float(op, "value", v))
    return TFW_EDTYPE;
  if (k->dtype != q->dtype || v->dtype != q->dtype)
    return tfw__error(TFW_EDTYPE, "%s: query, key and value must have one dtype, got %s, %s, %s",
                      op, tfw_dtype_name(q->dtype), tfw_dtype_name(k->dtype), tfw_dtype_name(v->dtype));
  int nd = q->ndim;
  bool ok = nd >= 2 && k->ndim == nd && v->ndim == nd;
  for (int d = 0; ok && d < nd - 2; d++) ok = k->shape[d] == q->shape[d] && v->shape[d] == q->shape[d];
  if (ok) ok = k->shape[nd - 1] == q->shape[nd - 1] && v->shape[nd - 2] == k->shape[nd - 2];
  if (!ok)
    return tfw__error(TFW_ESHAPE, "%s: expected query [B.., Lq, E], key [B.., Lk, E], value "
                      "[B.., Lk, Ev] with the same batch dims, got %s, %s, %s", op,
                      tfw__shape_str(b1, sizeof b1, q->ndim, q->shape),
                      tfw__shape_str(b2, sizeof b2, k->ndim, k->shape),
                      tfw__shape_str(b3, sizeof b3, v->ndim, v->shape));
  double p = c->a.f[0], s = c->a.f[1];
  if (!(p >= 0 && p < 1))
    return tfw__error(TFW_EVALUE, "%s: dropout_p must be in [0, 1), got %g", op, p);
  if (!isfinite(s)) return tfw__error(TFW_EVALUE, "%s: scale must be finite, got %g", op, s);
  return TFW_OK;
}

static tfw_status check_mask(const char *op, const tfw_tensor *q, const tfw_tensor *k,
                             const tfw_tensor *m) {
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (m->dtype != TFW_DTYPE_BOOL && !tfw_dtype_is_floating(m->dtype))
    return tfw__error(TFW_EDTYPE, "%s: attn_mask must be bool or floating-point, got %s", op,
                      tfw_dtype_name(m->dtype));
  int nd = q->ndim;
  int64_t target[TFW_MAX_DIMS];
  memcpy(target, q->shape, sizeof(int64_t) * (size_t)nd);
  target[nd - 1] = k->shape[nd - 2];
  bool ok = m->ndim <= nd;
  for (int d = 0; ok && d < m->ndim; d++) {
    int64_t ms = m->shape[m->ndim - 1 - d], ts = target[nd - 1 - d];
    ok = ms == ts || ms == 1;
  }
  if (!ok)
    return tfw__error(TFW_ESHAPE, "%s: attn_mask of shape %s does not broadcast to %s", op,
                      tfw__shape_str(b1, sizeof b1, m->ndim, m->shape),
                      tfw__shape_str(b2, sizeof b2, nd, target));
  return TFW_OK;
}

static tfw_dtype compute_type(tfw_dtype dt) { return dt == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32; }
static void sdpa_meta(const tfw__call *c, tfw__meta *out);

tfw_status tfw__infer_sdpa(const tfw__call *c, tfw__meta *out) {
  const char *op = "scaled_dot_product_attention";
  if (c->n_in != 3 && c->n_in != 4)
    return tfw__error(TFW_EVALUE, "%s: takes query, key, value and an optional attn_mask, got %d "
                      "inputs", op, c->n_in);
  tfw_status st = check_qkv(op, c);
  if (!st && c->n_in == 4) st = check_mask(op, c->in[0], c->in[1], c->in[3]);
  if (st) return st;
  sdpa_meta(c, out);
  return TFW_OK;
}

/* The forward's output shapes (inputs 0..2 already checked). */
static void sdpa_meta(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *q = c->in[0], *v = c->in[2];
  int nd = q->ndim;
  out[0].dtype = q->dtype;
  out[0].ndim = nd;
  memcpy(out[0].shape, q->shape, sizeof(int64_t) * (size_t)nd);
  out[0].shape[nd - 1] = v->shape[nd - 1];
  out[1].dtype = compute_type(q->dtype);
  out[1].ndim = nd - 1;
  memcpy(out[1].shape, q->shape, sizeof(int64_t) * (size_t)(nd - 1));
}

static bool same_shape(const tfw_tensor *t, int nd, const int64_t *shape) {
  if (t->ndim != nd) return false;
  for (int d = 0; d < nd; d++)
    if (t->shape[d] != shape[d]) return false;
  return true;
}

tfw_status tfw__infer_sdpa_backward(const tfw__call *c, tfw__meta *out) {
  const char *op = "sdpa_backward";
  if (c->n_in != 7 && c->n_in != 8)
    return tfw__error(TFW_EVALUE, "%s: takes q, k, v, out, logsumexp, grad_out, grad_logsumexp "
                      "and an optional attn_mask, got %d inputs", op, c->n_in);
  tfw_status st = check_qkv(op, c);
  if (!st && c->n_in == 8) st = check_mask(op, c->in[0], c->in[1], c->in[7]);
  if (st) return st;
  tfw__meta fm[2];
  sdpa_meta(c, fm);
  for (int i = 3; i < 7; i++) {
    const tfw__meta *m = &fm[i == 4 || i == 6 ? 1 : 0];
    if (tfw__check_float(op, "gradient input", c->in[i])) return TFW_EDTYPE;
    if (!same_shape(c->in[i], m->ndim, m->shape)) {
      char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
      return tfw__error(TFW_ESHAPE, "%s: input %d has shape %s, expected %s", op, i,
                        tfw__shape_str(b1, sizeof b1, c->in[i]->ndim, c->in[i]->shape),
                        tfw__shape_str(b2, sizeof b2, m->ndim, m->shape));
    }
  }
  const tfw_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
  int nd = q->ndim;
  out[0].dtype = out[1].dtype = q->dtype;
  out[0].ndim = out[1].ndim = nd;
  memcpy(out[0].shape, q->shape, sizeof(int64_t) * (size_t)nd);
  memcpy(out[1].shape, k->shape, sizeof(int64_t) * (size_t)nd);
  out[1].shape[nd - 1] = k->shape[nd - 1] + v->shape[nd - 1];
  return TFW_OK;
}

/* ---- drivers ------------------------------------------------------------------------------- */

typedef struct {
  tfw__att g;
  tfw_tensor *mask; /* the mask in its read dtype (retained or cast) */
  int64_t *moff;
} att_setup;

static void setup_free(att_setup *s) {
  tfw_release(s->mask);
  free(s->moff);
}

/* Fills the geometry from q, k, v (inputs 0..2), the attrs and the mask (may be NULL). */
static tfw_status setup(const tfw__call *c, const tfw_tensor *mask, att_setup *s) {
  memset(s, 0, sizeof *s);
  const tfw_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
  int nd = q->ndim;
  tfw__att *g = &s->g;
  g->BH = 1;
  for (int d = 0; d < nd - 2; d++) g->BH *= q->shape[d];
  g->Lq = q->shape[nd - 2], g->Lk = k->shape[nd - 2], g->E = q->shape[nd - 1];
  g->Ev = v->shape[nd - 1];
  g->p = c->a.f[0], g->scale = c->a.f[1], g->causal = c->a.b[0];
  g->seed = (uint64_t)c->a.i[0], g->offset = (uint64_t)c->a.i[1];
  g->f64 = q->dtype == TFW_DTYPE_F64;
  if (!mask) return TFW_OK;
  tfw_dtype ct = compute_type(q->dtype);
  g->mask_bool = mask->dtype == TFW_DTYPE_BOOL;
  s->mask = g->mask_bool || mask->dtype == ct ? tfw_retain((tfw_tensor *)mask)
                                              : tfw_to_dtype(mask, ct);
  s->moff = malloc(sizeof(int64_t) * (size_t)(g->BH > 0 ? g->BH : 1));
  if (!s->mask || !s->moff) {
    setup_free(s);
    return s->mask ? tfw__error(TFW_ENOMEM, "scaled_dot_product_attention: out of memory")
                   : tfw_last_status();
  }
  const tfw_tensor *m = s->mask;
  /* broadcast strides of the mask against [B.., Lq, Lk] */
  int64_t st[TFW_MAX_DIMS] = {0};
  for (int d = 0; d < m->ndim; d++) {
    int td = nd - m->ndim + d;
    st[td] = m->shape[d] == 1 ? 0 : m->strides[d];
  }
  g->msi = st[nd - 2], g->msj = st[nd - 1];
  for (int64_t bh = 0; bh < g->BH; bh++) {
    int64_t r = bh, off = m->offset;
    for (int d = nd - 3; d >= 0; d--) {
      off += (r % q->shape[d]) * st[d];
      r /= q->shape[d];
    }
    s->moff[bh] = off;
  }
  g->mask = m->storage->data;
  g->moff = s->moff;
  return TFW_OK;
}

/* dst (the op's output) from src in the compute type; retains nothing */
static tfw_status finish(tfw_tensor *dst, tfw_tensor *src) {
  tfw_status st = src == dst ? TFW_OK : tfw__copy_cast(dst, src);
  if (src != dst) tfw_release(src);
  return st;
}

/* out itself when it has the compute type (kernel outputs are contiguous), else a temp */
static tfw_tensor *work_out(tfw_tensor *out, tfw_dtype ct) {
  if (out->dtype == ct) return out;
  return tfw__tensor_new("scaled_dot_product_attention", ct, out->ndim, out->shape);
}

tfw_status tfw__kernel_sdpa(const tfw__call *c, tfw_tensor **out) {
  tfw_dtype ct = compute_type(c->in[0]->dtype);
  att_setup s;
  tfw_status st = setup(c, c->n_in == 4 ? c->in[3] : NULL, &s);
  if (st) return st;
  tfw_tensor *qc = tfw__as_contiguous(c->in[0], ct), *kc = tfw__as_contiguous(c->in[1], ct);
  tfw_tensor *vc = tfw__as_contiguous(c->in[2], ct), *o = work_out(out[0], ct);
  if (!qc || !kc || !vc || !o) st = tfw_last_status();
  if (!st) st = tfw__att_forward(&s.g, tfw__data(qc), tfw__data(kc), tfw__data(vc), tfw__data(o),
                                 tfw__data(out[1]));
  if (o) {
    tfw_status st2 = finish(out[0], o);
    if (!st) st = st2;
  }
  tfw_release(qc), tfw_release(kc), tfw_release(vc);
  setup_free(&s);
  return st;
}

tfw_status tfw__kernel_sdpa_backward(const tfw__call *c, tfw_tensor **out) {
  tfw_dtype ct = compute_type(c->in[0]->dtype);
  att_setup s;
  tfw_status st = setup(c, c->n_in == 8 ? c->in[7] : NULL, &s);
  if (st) return st;
  tfw_tensor *in[7] = {NULL};
  for (int i = 0; i < 7; i++) {
    in[i] = tfw__as_contiguous(c->in[i], ct);
    if (!in[i]) st = tfw_last_status();
  }
  tfw_tensor *dq = work_out(out[0], ct), *dkv = work_out(out[1], ct);
  if (!st && (!dq || !dkv)) st = tfw_last_status();
  if (!st)
    st = tfw__att_backward(&s.g, tfw__data(in[0]), tfw__data(in[1]), tfw__data(in[2]),
                           tfw__data(in[3]), tfw__data(in[4]), tfw__data(in[5]), tfw__data(in[6]),
                           tfw__data(dq), tfw__data(dkv));
  if (dq) {
    tfw_status st2 = finish(out[0], dq);
    if (!st) st = st2;
  }
  if (dkv) {
    tfw_status st2 = finish(out[1], dkv);
    if (!st) st = st2;
  }
  for (int i = 0; i < 7; i++) tfw_release(in[i]);
  setup_free(&s);
  return st;
}

/* ---- the dropout mask (for the composite double-backward and JVP paths, and tests) ---------- */

tfw_status tfw__infer_sdpa_dropout_mask(const tfw__call *c, tfw__meta *out) {
  const tfw__attrs *a = &c->a;
  const char *op = "sdpa_dropout_mask";
  if (!tfw_dtype_is_floating(a->dtype))
    return tfw__error(TFW_EDTYPE, "%s: dtype must be floating-point, got %s", op,
                      tfw_dtype_is_valid(a->dtype) ? tfw_dtype_name(a->dtype) : "(invalid)");
  if (a->n_ints < 2 || a->n_ints > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: shape must have 2 to %d dims, got %d", op, TFW_MAX_DIMS,
                      a->n_ints);
  if (!(a->f[0] >= 0 && a->f[0] < 1))
    return tfw__error(TFW_EVALUE, "%s: p must be in [0, 1), got %g", op, a->f[0]);
  tfw_status st = tfw__check_shape(op, a->n_ints, a->ints, tfw_dtype_size(a->dtype), NULL);
  if (st) return st;
  out->dtype = a->dtype;
  out->ndim = a->n_ints;
  memcpy(out->shape, a->ints, sizeof(int64_t) * (size_t)a->n_ints);
  return TFW_OK;
}

tfw_status tfw__kernel_sdpa_dropout_mask(const tfw__call *c, tfw_tensor **out) {
  const tfw__attrs *a = &c->a;
  int nd = a->n_ints;
  if (tfw__numel(out[0]->ndim, out[0]->shape) == 0) return TFW_OK; /* dims may be huge */
  int64_t R = 1, Lk = a->ints[nd - 1];
  for (int d = 0; d < nd - 1; d++) R *= a->ints[d];
  uint64_t nbj = (uint64_t)Lk / 4 + ((uint64_t)Lk % 4 != 0);
  double keep = 1.0 / (1.0 - a->f[0]);
  float p = (float)a->f[0];
  char *dst = tfw__data(out[0]);
  size_t es = tfw_dtype_size(out[0]->dtype);
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < Lk; j += 4) {
      uint32_t w[4];
      tfw__philox_block((uint64_t)a->i[0], (uint64_t)a->i[1] + (uint64_t)r * nbj + (uint64_t)(j / 4), w);
      for (int t = 0; t < 4 && j + t < Lk; t++)
        tfw__store_f64(dst + (size_t)(r * Lk + j + t) * es, out[0]->dtype,
                       tfw__u32_to_unit_f32(w[t]) < p ? 0.0 : keep);
    }
  return TFW_OK;
}

int tfw__sample_sdpa_dropout_mask(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 1) return 0;
  tfw__call_init(&calls[0], op->id, 0, NULL);
  tfw__attrs *a = &calls[0].a;
  a->n_ints = 3, a->ints[0] = 2, a->ints[1] = 3, a->ints[2] = 7;
  a->dtype = TFW_DTYPE_F32, a->f[0] = 0.5, a->i[0] = 3, a->i[1] = 10;
  return 1;
}

/* ---- samples ------------------------------------------------------------------------------- */

/* q, k, v of the given sizes (batch dims bd[0..nb)) */
static void sample_qkv(tfw__call *c, const tfw__op_def *op, tfw_dtype dt, int nb, const int64_t *bd,
                       int64_t Lq, int64_t Lk, int64_t E, int64_t Ev, uint64_t seed,
                       tfw__layout lay) {
  int64_t sq[TFW_MAX_DIMS], sk[TFW_MAX_DIMS], sv[TFW_MAX_DIMS];
  for (int d = 0; d < nb; d++) sq[d] = sk[d] = sv[d] = bd[d];
  sq[nb] = Lq, sq[nb + 1] = E, sk[nb] = Lk, sk[nb + 1] = E, sv[nb] = Lk, sv[nb + 1] = Ev;
  const tfw_tensor *in[3] = {
      tfw__sample_tensor(dt, nb + 2, sq, -1.5, 1.5, seed, lay),
      tfw__sample_tensor(dt, nb + 2, sk, -1.5, 1.5, seed + 1, lay),
      tfw__sample_tensor(dt, nb + 2, sv, -1, 1, seed + 2, TFW__LAYOUT_CONTIGUOUS)};
  tfw__call_init(c, op->id, 3, in);
  c->a.f[1] = 1.0 / sqrt((double)E);
}

/* a bool [Lq, Lk] mask keeping the diagonal (no empty rows) and a pattern elsewhere */
static tfw_tensor *sample_bool_mask(int64_t Lq, int64_t Lk) {
  bool mk[64];
  for (int64_t i = 0; i < Lq; i++)
    for (int64_t j = 0; j < Lk; j++) mk[i * Lk + j] = j == i % Lk || (i * 7 + j * 3) % 5 < 3;
  return tfw_from_data(TFW_DTYPE_BOOL, 2, (int64_t[]){Lq, Lk}, mk);
}

int tfw__sample_sdpa(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 6) return 0;
  int n = 0;
  sample_qkv(&calls[n++], op, TFW_DTYPE_F64, 1, (int64_t[]){2}, 3, 5, 4, 3, 1, TFW__LAYOUT_CONTIGUOUS);
  calls[n - 1].a.f[1] = 0.7;
  sample_qkv(&calls[n], op, TFW_DTYPE_F32, 2, (int64_t[]){2, 2}, 4, 3, 3, 2, 2, TFW__LAYOUT_STRIDED);
  calls[n++].a.b[0] = true; /* causal, Lq > Lk */
  sample_qkv(&calls[n], op, TFW_DTYPE_F64, 1, (int64_t[]){2}, 3, 4, 2, 2, 3, TFW__LAYOUT_CONTIGUOUS);
  calls[n].in[calls[n].n_in++] = sample_bool_mask(3, 4);
  n++;
  sample_qkv(&calls[n], op, TFW_DTYPE_F64, 2, (int64_t[]){2, 2}, 3, 4, 2, 3, 4, TFW__LAYOUT_CONTIGUOUS);
  calls[n].in[calls[n].n_in++] =
      tfw__sample_tensor(TFW_DTYPE_F64, 3, (int64_t[]){2, 1, 4}, -1, 1, 5, TFW__LAYOUT_CONTIGUOUS);
  n++;
  sample_qkv(&calls[n], op, TFW_DTYPE_F64, 1, (int64_t[]){2}, 4, 5, 3, 2, 6, TFW__LAYOUT_CONTIGUOUS);
  calls[n].a.f[0] = 0.3, calls[n].a.i[0] = 11, calls[n].a.i[1] = 4, calls[n].a.b[0] = true;
  n++;
  sample_qkv(&calls[n++], op, TFW_DTYPE_F16, 1, (int64_t[]){3}, 2, 3, 4, 2, 7, TFW__LAYOUT_CONTIGUOUS);
  return n;
}

int tfw__sample_sdpa_backward(const tfw__op_def *op, tfw__call *calls, int cap) {
  tfw__call fw[6];
  int nf = tfw__sample_sdpa(&tfw__ops[TFW__OP_sdpa], fw, 6), n = 0;
  for (int s = 0; s < nf; s++) {
    tfw_tensor *o[2];
    if (n < cap && s % 2 == 0 && tfw__op_run_multi(&fw[s], o) == TFW_OK) {
      const tfw_tensor *in[8] = {fw[s].in[0], fw[s].in[1], fw[s].in[2], o[0], o[1],
                                 tfw__sample_tensor(o[0]->dtype, o[0]->ndim, o[0]->shape, -1, 1, 40 + (uint64_t)s, TFW__LAYOUT_CONTIGUOUS),
                                 tfw__sample_tensor(o[1]->dtype, o[1]->ndim, o[1]->shape, -1, 1, 50 + (uint64_t)s, TFW__LAYOUT_CONTIGUOUS),
                                 fw[s].n_in == 4 ? fw[s].in[3] : NULL};
      for (int i = 0; i < 3; i++) tfw_retain((tfw_tensor *)in[i]);
      if (in[7]) tfw_retain((tfw_tensor *)in[7]);
      tfw__call_init(&calls[n], op->id, in[7] ? 8 : 7, in);
      calls[n++].a = fw[s].a;
    }
  }
  tfw__samples_free(fw, nf);
  return n;
}

/* ---- public wrapper -------------------------------------------------------------------------- */

tfw_status tfw__sdpa_call(const tfw_tensor *q, const tfw_tensor *k, const tfw_tensor *v,
                          const tfw_tensor *attn_mask, double dropout_p, bool is_causal,
                          double scale, tfw_tensor **out, tfw_tensor **lse) {
  const char *op = "scaled_dot_product_attention";
  *out = NULL;
  if (lse) *lse = NULL;
  if (tfw__check_tensor(op, "query", q) || tfw__check_tensor(op, "key", k) ||
      tfw__check_tensor(op, "value", v))
    return tfw_last_status();
  const tfw_tensor *in[4] = {q, k, v, attn_mask};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_sdpa, attn_mask ? 4 : 3, in);
  c.a.f[0] = dropout_p;
  c.a.f[1] = scale != 0 ? scale : (q->ndim > 0 ? 1.0 / sqrt((double)q->shape[q->ndim - 1]) : 1);
  c.a.b[0] = is_causal;
  if (dropout_p > 0 && dropout_p < 1 && q->ndim >= 2 && k->ndim >= 2) {
    int64_t BH = 1;
    for (int d = 0; d < q->ndim - 2; d++) BH *= q->shape[d];
    uint64_t seed;
    uint64_t first = tfw__rng_reserve(tfw__att_dropout_blocks(BH, q->shape[q->ndim - 2],
                                                               k->shape[k->ndim - 2]), &seed);
    c.a.i[0] = (int64_t)seed, c.a.i[1] = (int64_t)first;
  }
  tfw_tensor *o[2];
  tfw_status st = tfw__op_run_multi(&c, o);
  if (st) return st;
  *out = o[0];
  if (lse) *lse = o[1];
  else tfw_release(o[1]);
  return TFW_OK;
}

tfw_tensor *tfw_scaled_dot_product_attention(const tfw_tensor *q, const tfw_tensor *k,
                                             const tfw_tensor *v, const tfw_tensor *attn_mask,
                                             double dropout_p, bool is_causal, double scale) {
  tfw_tensor *out;
  tfw__sdpa_call(q, k, v, attn_mask, dropout_p, is_causal, scale, &out, NULL);
  return out;
}
