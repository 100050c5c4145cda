/* Reductions over a list of dims: sum mean var std prod amax amin logsumexp norm all any,
 * and max/min over all elements. Inference, the kernel (which picks an engine kind and a
 * finaliser, see reduce_engine.c), samples and the public wrappers.
 *
 * Numerics (PyTorch semantics): integer/bool sum and prod accumulate in int64 (wrapping)
 * and return int64; floating sums accumulate in f64 and round once; f16/bf16 are reduced
 * from an f32 copy and rounded back. var/std are two-pass (mean, then squared deviations)
 * with divisor max(0, N - correction): correction >= N gives inf (or nan when every
 * deviation is 0), as in PyTorch. logsumexp subtracts the max (0 when the max is +-inf).
 * mean of nothing is nan, sum 0, prod 1, logsumexp -inf; amax/amin/max/min and the inf-norms
 * of nothing are errors. */
#include <math.h>
#include <stdlib.h>

#include "ops/reduce.h"
#include "ops/samples.h"

static bool is_id(const tfw__call *c, tfw__op_id id) { return c->op->id == id; }

/* Ops whose reduction has no identity: a zero-size reduced dim is an error. */
static bool needs_nonempty(const tfw__call *c) {
  switch (c->op->id) {
  case TFW__OP_amax: case TFW__OP_amin: case TFW__OP_max: case TFW__OP_min: return true;
  case TFW__OP_norm: return isinf(c->a.f[0]);
  default: return false;
  }
}

static bool all_dims(const tfw__call *c) {
  return is_id(c, TFW__OP_max) || is_id(c, TFW__OP_min);
}

tfw_status tfw__infer_reduce(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0];
  const char *name = c->op->name;
  if ((c->op->flags & TFW__OPF_FLOAT_ONLY) && tfw__check_float(name, "t", x)) return TFW_EDTYPE;
  if (is_id(c, TFW__OP_norm) && isnan(c->a.f[0]))
    return tfw__error(TFW_EVALUE, "norm: ord must not be nan");
  bool mask[TFW_MAX_DIMS];
  tfw__attrs a = c->a;
  if (all_dims(c)) a.n_ints = -1;
  tfw_status st = tfw__reduce_mask(name, x, &a, mask);
  if (st) return st;
  if (needs_nonempty(c)) {
    for (int d = 0; d < x->ndim; d++)
      if (mask[d] && x->shape[d] == 0) {
        char b[TFW__SHAPE_BUF];
        return tfw__error(TFW_EVALUE, "%s: cannot reduce over a zero-size dimension (dim %d of "
                          "shape %s)", name, d, tfw__shape_str(b, sizeof b, x->ndim, x->shape));
      }
  }
  bool keep = all_dims(c) ? false : c->a.b[0];
  switch (c->op->id) {
  case TFW__OP_sum: case TFW__OP_prod:
    out->dtype = tfw_dtype_is_floating(x->dtype) ? x->dtype : TFW_DTYPE_I64;
    break;
  case TFW__OP_all: case TFW__OP_any: out->dtype = TFW_DTYPE_BOOL; break;
  default: out->dtype = x->dtype; break;
  }
  out->ndim = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (!mask[d]) out->shape[out->ndim++] = x->shape[d];
    else if (keep) out->shape[out->ndim++] = 1;
  }
  return TFW_OK;
}

/* ---- finalisers ----------------------------------------------------------------------- */
typedef enum fin_mode {
  FIN_VAL,   /* store the accumulator */
  FIN_DIV,   /* d / div (mean, var) */
  FIN_SQRT_DIV, /* sqrt(d / div) (std, 2-norm with div 1) */
  FIN_POW,   /* d^(1/p) */
  FIN_LSE,   /* prm[o] + log(d) */
  FIN_PARAM, /* write d / div into the param array (first pass of var / logsumexp) */
} fin_mode;

typedef struct fin_ctx {
  fin_mode mode;
  bool is_int; /* the accumulator is int64 */
  char *out;
  tfw_dtype odt;
  size_t es;
  double div, p;
  double *prm;
  bool zero_inf; /* FIN_PARAM: store 0 for an infinite value (logsumexp's max) */
} fin_ctx;

static void store_i64(char *p, tfw_dtype dt, int64_t v) {
  switch (dt) {
  case TFW_DTYPE_I8: *(int8_t *)p = (int8_t)v; break;
  case TFW_DTYPE_U8: *(uint8_t *)p = (uint8_t)v; break;
  case TFW_DTYPE_I32: *(int32_t *)p = (int32_t)v; break;
  case TFW_DTYPE_I64: *(int64_t *)p = v; break;
  case TFW_DTYPE_BOOL: *(uint8_t *)p = v != 0; break;
  default: tfw__store_f64(p, dt, (double)v); break;
  }
}

static void fin_reduce(tfw__rval v, int64_t idx, int64_t o, void *vctx) {
  const fin_ctx *f = vctx;
  char *p = f->out + (size_t)o * f->es;
  double r;
  switch (f->mode) {
  case FIN_VAL:
    if (f->is_int) {
      store_i64(p, f->odt, v.i);
      return;
    }
    r = v.d;
    break;
  case FIN_DIV: r = v.d / f->div; break;
  case FIN_SQRT_DIV: r = sqrt(v.d / f->div); break;
  case FIN_POW: r = pow(v.d, 1.0 / f->p); break;
  case FIN_LSE: r = f->prm[o] + log(v.d); break;
  case FIN_PARAM: {
    r = v.d / f->div;
    if (f->zero_inf && isinf(r)) r = 0; /* an infinite max is not subtracted */
    f->prm[o] = r;
    return;
  }
  default: r = 0; break;
  }
  tfw__store_f64(p, f->odt, r);
}

/* Runs kind op over x (compute dtype) with finaliser settings f. */
static tfw_status run_kind(const char *name, const tfw_tensor *x, const bool *mask,
                           tfw__red_op op, const double *prm, fin_ctx *f) {
  const tfw__red_kind *k = tfw__red_kind_get(op, x->dtype);
  if (!k)
    return tfw__error(TFW_EDTYPE, "%s: dtype %s is not supported", name,
                      tfw_dtype_name(x->dtype));
  f->is_int = tfw__red_is_int(op, x->dtype);
  tfw__reduce_run(x, mask, k, prm, fin_reduce, f);
  return TFW_OK;
}

tfw_status tfw__kernel_reduce(const tfw__call *c, tfw_tensor **out) {
  const char *name = c->op->name;
  const tfw_tensor *x0 = c->in[0];
  tfw_tensor *y = out[0];
  bool mask[TFW_MAX_DIMS];
  tfw__attrs a = c->a;
  if (all_dims(c)) a.n_ints = -1;
  tfw_status st = tfw__reduce_mask(name, x0, &a, mask);
  if (st) return st;
  /* f16/bf16: reduce an f32 copy */
  tfw_tensor *xc = NULL;
  const tfw_tensor *x = x0;
  if (x0->dtype == TFW_DTYPE_F16 || x0->dtype == TFW_DTYPE_BF16) {
    xc = tfw__as_contiguous(x0, TFW_DTYPE_F32);
    if (!xc) return tfw_last_status();
    x = xc;
  }
  int64_t nout = tfw__numel(y->ndim, y->shape), nred = 1;
  for (int d = 0; d < x->ndim; d++)
    if (mask[d]) nred *= x->shape[d];
  fin_ctx f = {.mode = FIN_VAL, .out = tfw__data(y), .odt = y->dtype,
               .es = tfw_dtype_size(y->dtype), .div = 1, .p = 1};
  double *prm = NULL;
  switch (c->op->id) {
  case TFW__OP_sum: st = run_kind(name, x, mask, TFW__R_SUM, NULL, &f); break;
  case TFW__OP_prod: st = run_kind(name, x, mask, TFW__R_PROD, NULL, &f); break;
  case TFW__OP_mean:
    f.mode = FIN_DIV, f.div = (double)nred;
    st = run_kind(name, x, mask, TFW__R_SUM, NULL, &f);
    break;
  case TFW__OP_amax: case TFW__OP_max: st = run_kind(name, x, mask, TFW__R_MAX, NULL, &f); break;
  case TFW__OP_amin: case TFW__OP_min: st = run_kind(name, x, mask, TFW__R_MIN, NULL, &f); break;
  case TFW__OP_all: st = run_kind(name, x, mask, TFW__R_ALL, NULL, &f); break;
  case TFW__OP_any: st = run_kind(name, x, mask, TFW__R_ANY, NULL, &f); break;
  case TFW__OP_var: case TFW__OP_std: case TFW__OP_logsumexp: {
    bool lse = is_id(c, TFW__OP_logsumexp);
    prm = tfw__malloc(sizeof(double) * (size_t)(nout > 0 ? nout : 1));
    if (!prm) {
      st = tfw__error(TFW_ENOMEM, "%s: out of memory for %lld per-output values", name,
                      (long long)nout);
      break;
    }
    fin_ctx f1 = f;
    f1.mode = FIN_PARAM, f1.prm = prm, f1.div = lse ? 1.0 : (double)nred, f1.zero_inf = lse;
    st = run_kind(name, x, mask, lse ? TFW__R_MAX : TFW__R_SUM, NULL, &f1);
    if (st) break;
    if (lse) {
      f.mode = FIN_LSE, f.prm = prm;
    } else {
      double div = (double)nred - (double)c->a.i[0];
      f.mode = is_id(c, TFW__OP_std) ? FIN_SQRT_DIV : FIN_DIV;
      f.div = div > 0 ? div : 0;
    }
    st = run_kind(name, x, mask, lse ? TFW__R_SEXP : TFW__R_SQDEV, prm, &f);
    break;
  }
  case TFW__OP_norm: {
    double ord = c->a.f[0];
    if (ord == 0 || ord == 2) {
      f.mode = FIN_SQRT_DIV;
      st = run_kind(name, x, mask, TFW__R_SSQ, NULL, &f);
    } else if (ord == 1) {
      st = run_kind(name, x, mask, TFW__R_ASUM, NULL, &f);
    } else if (isinf(ord)) {
      st = run_kind(name, x, mask, ord > 0 ? TFW__R_AMAXABS : TFW__R_AMINABS, NULL, &f);
    } else {
      prm = tfw__malloc(sizeof(double) * (size_t)(nout > 0 ? nout : 1));
      if (!prm) {
        st = tfw__error(TFW_ENOMEM, "norm: out of memory for %lld per-output values",
                        (long long)nout);
        break;
      }
      for (int64_t o = 0; o < nout; o++) prm[o] = ord;
      f.mode = FIN_POW, f.p = ord;
      st = run_kind(name, x, mask, TFW__R_PSUM, prm, &f);
    }
    break;
  }
  default:
    st = tfw__error(TFW_EINTERNAL, "%s: not a reduce-family op", name);
    break;
  }
  tfw__free(prm);
  tfw_release(xc);
  return st;
}

/* ---- samples -------------------------------------------------------------------------- */
int tfw__sample_reduce(const tfw__op_def *op, tfw__call *calls, int cap) {
  bool flt = (op->flags & TFW__OPF_FLOAT_ONLY) != 0;
  bool prod = op->id == TFW__OP_prod;
  double lo = prod ? 0.5 : -2.0, hi = prod ? 1.5 : 2.0;
  static const int64_t s0[3] = {3, 4, 5}, s1[2] = {6, 4}, s2[3] = {2, 3, 4};
  struct {
    tfw_dtype dt;
    int nd;
    const int64_t *shape;
    tfw__layout lay;
    int nd_dims;
    int64_t dims[2];
    bool keep;
  } spec[4] = {
      {TFW_DTYPE_F32, 3, s0, TFW__LAYOUT_CONTIGUOUS, 1, {-1, 0}, false},
      {TFW_DTYPE_F64, 2, s1, TFW__LAYOUT_STRIDED, 1, {0, 0}, true},
      {TFW_DTYPE_F32, 3, s2, TFW__LAYOUT_BROADCAST, 2, {0, 2}, false},
      {flt ? TFW_DTYPE_F64 : TFW_DTYPE_I32, 3, s0, TFW__LAYOUT_CONTIGUOUS, 0, {0, 0}, false},
  };
  int n = 0;
  for (int i = 0; i < 4 && n < cap; i++) {
    tfw_tensor *t = tfw__sample_tensor(spec[i].dt, spec[i].nd, spec[i].shape, lo, hi,
                                       (uint64_t)i, spec[i].lay);
    if (!t) break;
    const tfw_tensor *in[1] = {t};
    tfw__call *c = &calls[n++];
    tfw__call_init(c, op->id, 1, in);
    c->a.n_ints = spec[i].nd_dims;
    for (int k = 0; k < spec[i].nd_dims; k++) c->a.ints[k] = spec[i].dims[k];
    c->a.b[0] = spec[i].keep;
    if (op->id == TFW__OP_var || op->id == TFW__OP_std) c->a.i[0] = i == 1 ? 0 : 1;
    if (op->id == TFW__OP_norm) {
      static const double ords[4] = {2, 1, INFINITY, 0};
      c->a.f[0] = ords[i];
    }
  }
  return n;
}

/* ---- public wrappers ------------------------------------------------------------------ */
static tfw_tensor *dims_op(tfw__op_id id, const tfw_tensor *t, int ndims, const int *dims,
                           bool keepdim, int64_t i0, double f0) {
  const char *name = tfw__ops[id].name;
  if (ndims < 0 || ndims > TFW_MAX_DIMS) {
    tfw__error(TFW_EVALUE, "%s: ndims is %d; expected 0 to %d", name, ndims, TFW_MAX_DIMS);
    return NULL;
  }
  if (ndims > 0 && !dims) {
    tfw__error(TFW_EVALUE, "%s: dims is NULL but ndims is %d", name, ndims);
    return NULL;
  }
  tfw__call c;
  tfw__call_init(&c, id, 1, &t);
  c.a.n_ints = ndims;
  for (int k = 0; k < ndims; k++) c.a.ints[k] = dims[k];
  c.a.b[0] = keepdim;
  c.a.i[0] = i0;
  c.a.f[0] = f0;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_sum(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_sum, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_mean(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_mean, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_var(const tfw_tensor *t, int ndims, const int *dims, int64_t correction,
                    bool keepdim) {
  return dims_op(TFW__OP_var, t, ndims, dims, keepdim, correction, 0);
}
tfw_tensor *tfw_std(const tfw_tensor *t, int ndims, const int *dims, int64_t correction,
                    bool keepdim) {
  return dims_op(TFW__OP_std, t, ndims, dims, keepdim, correction, 0);
}
tfw_tensor *tfw_prod(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_prod, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_amax(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_amax, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_amin(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_amin, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_logsumexp(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_logsumexp, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_norm(const tfw_tensor *t, double ord, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_norm, t, ndims, dims, keepdim, 0, ord);
}
tfw_tensor *tfw_all(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_all, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_any(const tfw_tensor *t, int ndims, const int *dims, bool keepdim) {
  return dims_op(TFW__OP_any, t, ndims, dims, keepdim, 0, 0);
}
tfw_tensor *tfw_max(const tfw_tensor *t) { return tfw__op1(TFW__OP_max, t); }
tfw_tensor *tfw_min(const tfw_tensor *t) { return tfw__op1(TFW__OP_min, t); }
