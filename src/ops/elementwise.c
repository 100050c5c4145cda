/* Elementwise ops: type promotion, shape inference, the shared kernel driver, samples and
 * the public wrappers. The typed loops are in ew_loops.c and ew_math.c.
 *
 * A kernel runs in a compute dtype: the output dtype for arithmetic, the promoted input
 * dtype for comparisons, bool for logical ops, and float32 whenever that would be f16 or
 * bf16 (those are storage types: inputs are widened, the result is rounded once). Inputs
 * of another dtype are cast first; their (possibly broadcast) shape is kept so a scalar
 * operand costs one element. */
#include <math.h>

#include "ops/elementwise.h"
#include "ops/samples.h"

/* ---- type promotion --------------------------------------------------------------------- */

static int category(tfw_dtype dt) {
  if (dt == TFW_DTYPE_BOOL) return 0;
  return tfw_dtype_is_floating(dt) ? 2 : 1;
}

/* PyTorch's combine_categories(higher, lower) (c10/core/ScalarType.h, ResultTypeState). */
static tfw_dtype combine(tfw_dtype higher, tfw_dtype lower) {
  if (higher == TFW_DTYPE_COUNT) return lower;
  if (lower == TFW_DTYPE_COUNT) return higher;
  if (category(higher) == 2) return higher;
  if (higher == TFW_DTYPE_BOOL || category(lower) == 2) return tfw_promote_types(higher, lower);
  return higher;
}

static tfw_dtype promote_opt(tfw_dtype a, tfw_dtype b) {
  if (a == TFW_DTYPE_COUNT) return b;
  return tfw_promote_types(a, b);
}

tfw_dtype tfw__result_type(int n, const tfw_tensor *const *ts) {
  tfw_dtype dim = TFW_DTYPE_COUNT, zero = TFW_DTYPE_COUNT, wrapped = TFW_DTYPE_COUNT;
  for (int i = 0; i < n; i++) {
    const tfw_tensor *t = ts[i];
    if (t->wrapped_number) {
      /* a float C scalar counts as the default dtype (float32), an integral one as int64 */
      tfw_dtype d = tfw_dtype_is_floating(t->dtype) ? TFW_DTYPE_F32 : t->dtype;
      wrapped = promote_opt(wrapped, d);
    } else if (t->ndim == 0) {
      zero = promote_opt(zero, t->dtype);
    } else {
      dim = promote_opt(dim, t->dtype);
    }
  }
  return combine(dim, combine(zero, wrapped));
}

static tfw_dtype compute_dtype(tfw_dtype dt) {
  return (dt == TFW_DTYPE_F16 || dt == TFW_DTYPE_BF16) ? TFW_DTYPE_F32 : dt;
}

/* ---- inference ------------------------------------------------------------------------------ */

static tfw_status infer_broadcast(const tfw__call *c, tfw__meta *out) {
  return tfw__broadcast_shapes(c->op->name, c->n_in, c->in, &out->ndim, out->shape);
}


tfw_status tfw__infer_ew_binary(const tfw__call *c, tfw__meta *out) {
  tfw_status st = infer_broadcast(c, out);
  if (st) return st;
  tfw_dtype rt = tfw__result_type(2, c->in);
  const char *name = c->op->name;
  switch (c->op->id) {
  case TFW__OP_div:
    if (!tfw_dtype_is_floating(rt)) rt = TFW_DTYPE_F32;
    break;
  case TFW__OP_sub:
    if (rt == TFW_DTYPE_BOOL)
      return tfw__error(TFW_EDTYPE, "sub: subtracting bool tensors is not supported; use "
                        "logical_xor or bitwise_xor");
    break;
  case TFW__OP_floor_div:
  case TFW__OP_remainder:
  case TFW__OP_pow:
    if (rt == TFW_DTYPE_BOOL)
      return tfw__error(TFW_EDTYPE, "%s: not supported for bool tensors", name);
    break;
  default:
    break;
  }
  out->dtype = rt;
  return TFW_OK;
}

tfw_status tfw__infer_ew_compare(const tfw__call *c, tfw__meta *out) {
  out->dtype = TFW_DTYPE_BOOL;
  return infer_broadcast(c, out);
}

tfw_status tfw__infer_ew_logical(const tfw__call *c, tfw__meta *out) {
  out->dtype = TFW_DTYPE_BOOL;
  return infer_broadcast(c, out);
}

tfw_status tfw__infer_ew_bitwise(const tfw__call *c, tfw__meta *out) {
  tfw_status st = infer_broadcast(c, out);
  if (st) return st;
  tfw_dtype rt = tfw__result_type(2, c->in);
  if (tfw_dtype_is_floating(rt))
    return tfw__error(TFW_EDTYPE, "%s: needs integral or bool tensors, got %s and %s",
                      c->op->name, tfw_dtype_name(c->in[0]->dtype), tfw_dtype_name(c->in[1]->dtype));
  out->dtype = rt;
  return TFW_OK;
}

static void meta_like(const tfw_tensor *t, tfw_dtype dt, tfw__meta *out) {
  out->dtype = dt;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
}

tfw_status tfw__infer_ew_unary_same(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *a = c->in[0];
  if (c->op->id == TFW__OP_neg && a->dtype == TFW_DTYPE_BOOL)
    return tfw__error(TFW_EDTYPE, "neg: negating a bool tensor is not supported; use logical_not");
  meta_like(a, a->dtype, out);
  return TFW_OK;
}

tfw_status tfw__infer_ew_unary_float(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *a = c->in[0];
  if ((c->op->flags & TFW__OPF_FLOAT_ONLY) && !tfw_dtype_is_floating(a->dtype))
    return tfw__check_float(c->op->name, "a", a);
  meta_like(a, tfw_dtype_is_floating(a->dtype) ? a->dtype : TFW_DTYPE_F32, out);
  return TFW_OK;
}

tfw_status tfw__infer_ew_unary_bool(const tfw__call *c, tfw__meta *out) {
  meta_like(c->in[0], TFW_DTYPE_BOOL, out);
  return TFW_OK;
}

tfw_status tfw__infer_ew_unary_bits(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *a = c->in[0];
  if (tfw_dtype_is_floating(a->dtype))
    return tfw__error(TFW_EDTYPE, "%s: needs an integral or bool tensor, got %s", c->op->name,
                      tfw_dtype_name(a->dtype));
  meta_like(a, a->dtype, out);
  return TFW_OK;
}

tfw_status tfw__infer_ew_where(const tfw__call *c, tfw__meta *out) {
  if (c->in[0]->dtype != TFW_DTYPE_BOOL)
    return tfw__error(TFW_EDTYPE, "where: condition must be a bool tensor, got %s",
                      tfw_dtype_name(c->in[0]->dtype));
  tfw_status st = infer_broadcast(c, out);
  if (st) return st;
  out->dtype = tfw__result_type(2, c->in + 1);
  return TFW_OK;
}

tfw_status tfw__infer_ew_masked_fill(const tfw__call *c, tfw__meta *out) {
  if (c->in[1]->dtype != TFW_DTYPE_BOOL)
    return tfw__error(TFW_EDTYPE, "masked_fill: mask must be a bool tensor, got %s",
                      tfw_dtype_name(c->in[1]->dtype));
  tfw_status st = infer_broadcast(c, out);
  if (st) return st;
  out->dtype = c->in[0]->dtype;
  return TFW_OK;
}

/* ---- the kernel driver ------------------------------------------------------------------------ */

/* Runs fn over out and inputs cast to in_dt[i]; the loop writes dtype loop_out. */
static tfw_status run_ew(tfw_tensor *out, tfw_dtype loop_out, int nin, const tfw_tensor *const *in,
                         const tfw_dtype *in_dt, tfw__loop_fn fn, void *ctx, int64_t grain) {
  const tfw_tensor *ops[TFW__ITER_MAX_OPS];
  tfw_tensor *tmp[TFW__ITER_MAX_OPS] = {NULL};
  tfw_status st = TFW_OK;
  tfw_tensor *dst = out;
  if (out->dtype != loop_out) {
    dst = tfw__tensor_new("elementwise", loop_out, out->ndim, out->shape);
    if (!dst) return tfw_last_status();
  }
  ops[0] = dst;
  for (int i = 0; i < nin; i++) {
    if (in[i]->dtype != in_dt[i]) {
      tmp[i] = tfw__as_contiguous(in[i], in_dt[i]);
      if (!tmp[i]) {
        st = tfw_last_status();
        goto done;
      }
      ops[i + 1] = tmp[i];
    } else {
      ops[i + 1] = in[i];
    }
  }
  tfw__iter it;
  tfw__iter_init(&it, nin + 1, ops, out->ndim, out->shape);
  tfw__iter_run(&it, grain, fn, ctx);
  if (dst != out) st = tfw__copy_cast(out, dst);
done:
  for (int i = 0; i < nin; i++) tfw_release(tmp[i]);
  if (dst != out) tfw_release(dst);
  return st;
}

static tfw_status unsupported(const tfw__call *c, tfw_dtype ct) {
  return tfw__error(TFW_EDTYPE, "%s: not supported for dtype %s", c->op->name, tfw_dtype_name(ct));
}

bool tfw__ew_has_zero(const tfw_tensor *t) {
  if (tfw_dtype_is_floating(t->dtype)) return false;
  int64_t n = tfw__numel(t->ndim, t->shape);
  if (n == 0) return false;
  int64_t idx[TFW_MAX_DIMS] = {0};
  size_t es = tfw_dtype_size(t->dtype);
  for (int64_t i = 0; i < n; i++) {
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->strides[d];
    if (tfw__load_i64(tfw__data(t) + off * (int64_t)es, t->dtype) == 0) return true;
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (++idx[d] < t->shape[d]) break;
      idx[d] = 0;
    }
  }
  return false;
}

tfw_status tfw__kernel_ew_binary(const tfw__call *c, tfw_tensor **out) {
  tfw__op_id id = c->op->id;
  tfw_dtype ct, loop_out;
  if (id >= TFW__OP_logical_and && id <= TFW__OP_logical_xor) {
    ct = loop_out = TFW_DTYPE_BOOL;
  } else if (id >= TFW__OP_eq && id <= TFW__OP_ge) {
    ct = compute_dtype(tfw__result_type(2, c->in));
    loop_out = TFW_DTYPE_BOOL;
  } else {
    ct = loop_out = compute_dtype(out[0]->dtype);
  }
  if ((id == TFW__OP_floor_div || id == TFW__OP_remainder) && !tfw_dtype_is_floating(ct) &&
      tfw__ew_has_zero(c->in[1]))
    return tfw__error(TFW_EVALUE, "%s: integer division by zero", c->op->name);
  tfw__loop_fn fn = tfw__ew_binary_loop(id, ct);
  if (!fn) return unsupported(c, ct);
  tfw_dtype in_dt[2] = {ct, ct};
  return run_ew(out[0], loop_out, 2, c->in, in_dt, fn, NULL, TFW__GRAIN_EW);
}

tfw_status tfw__kernel_ew_unary(const tfw__call *c, tfw_tensor **out) {
  tfw__op_id id = c->op->id;
  const tfw_tensor *a = c->in[0];
  tfw_dtype ct = compute_dtype(out[0]->dtype), loop_out = ct;
  int64_t grain = TFW__GRAIN_EW;
  tfw__ew_scalars sc = {{c->a.f[0], c->a.f[1], c->a.f[2]}};
  switch (id) {
  case TFW__OP_isnan:
  case TFW__OP_isinf:
    ct = compute_dtype(a->dtype);
    if (!tfw_dtype_is_floating(ct)) return tfw_fill_(out[0], 0.0); /* integers are finite */
    break;
  case TFW__OP_logical_not:
    ct = TFW_DTYPE_BOOL;
    break;
  default:
    if (tfw_dtype_is_floating(ct) && tfw__ew_unary_loop(id, ct) == tfw__ew_float_unary_loop(id, ct))
      grain = TFW__GRAIN_EW / 4; /* transcendental: more work per element */
    break;
  }
  tfw__loop_fn fn = tfw__ew_unary_loop(id, ct);
  if (!fn) return unsupported(c, ct);
  return run_ew(out[0], loop_out, 1, c->in, &ct, fn, &sc, grain);
}

tfw_status tfw__kernel_ew_where(const tfw__call *c, tfw_tensor **out) {
  tfw_dtype ct = compute_dtype(out[0]->dtype);
  tfw__loop_fn fn = tfw__ew_where_loop(ct);
  if (!fn) return unsupported(c, ct);
  tfw_dtype in_dt[3] = {TFW_DTYPE_BOOL, ct, ct};
  return run_ew(out[0], ct, 3, c->in, in_dt, fn, NULL, TFW__GRAIN_EW);
}

tfw_status tfw__kernel_ew_masked_fill(const tfw__call *c, tfw_tensor **out) {
  tfw_dtype ct = compute_dtype(out[0]->dtype);
  tfw__loop_fn fn = tfw__ew_masked_fill_loop(ct);
  if (!fn) return unsupported(c, ct);
  tfw__ew_scalars sc = {{c->a.f[0], 0, 0}};
  tfw_dtype in_dt[2] = {ct, TFW_DTYPE_BOOL};
  return run_ew(out[0], ct, 2, c->in, in_dt, fn, &sc, TFW__GRAIN_EW);
}

/* ---- samples ----------------------------------------------------------------------------------- */

static const int64_t S34[2] = {3, 4}, S4[1] = {4}, S5[1] = {5}, S45[2] = {4, 5}, S23[2] = {2, 3};
static const int64_t S3[1] = {3};

static int binary_samples(const tfw__op_def *op, tfw__call *calls, int cap, double lo, double hi,
                          double blo, double bhi, bool floats, bool ints) {
  int n = 0;
  struct { tfw_dtype da, db; int na; const int64_t *sa; int nb; const int64_t *sb; tfw__layout la, lb; bool is_float; } spec[] = {
    {TFW_DTYPE_F32, TFW_DTYPE_F32, 2, S34, 2, S34, TFW__LAYOUT_CONTIGUOUS, TFW__LAYOUT_CONTIGUOUS, true},
    {TFW_DTYPE_F64, TFW_DTYPE_F64, 2, S45, 1, S5, TFW__LAYOUT_STRIDED, TFW__LAYOUT_CONTIGUOUS, true},
    {TFW_DTYPE_F16, TFW_DTYPE_F32, 2, S34, 2, S34, TFW__LAYOUT_CONTIGUOUS, TFW__LAYOUT_BROADCAST, true},
    {TFW_DTYPE_I64, TFW_DTYPE_I32, 2, S23, 1, S3, TFW__LAYOUT_STRIDED, TFW__LAYOUT_CONTIGUOUS, false},
    {TFW_DTYPE_U8, TFW_DTYPE_U8, 1, S4, 1, S4, TFW__LAYOUT_CONTIGUOUS, TFW__LAYOUT_CONTIGUOUS, false},
  };
  for (size_t k = 0; k < sizeof spec / sizeof spec[0] && n < cap; k++) {
    if (spec[k].is_float ? !floats : !ints) continue;
    tfw__call *c = &calls[n];
    const tfw_tensor *in[2];
    in[0] = tfw__sample_tensor(spec[k].da, spec[k].na, spec[k].sa, lo, hi, 10 * k + 1, spec[k].la);
    in[1] = tfw__sample_tensor(spec[k].db, spec[k].nb, spec[k].sb, blo, bhi, 10 * k + 2, spec[k].lb);
    tfw__call_init(c, op->id, 2, in);
    n++;
  }
  return n;
}

int tfw__sample_ew_arith(const tfw__op_def *op, tfw__call *calls, int cap) {
  return binary_samples(op, calls, cap, -3, 3, -3, 3, true, true);
}
int tfw__sample_ew_divisor(const tfw__op_def *op, tfw__call *calls, int cap) {
  return binary_samples(op, calls, cap, -6, 6, 1, 4, true, true);
}
int tfw__sample_ew_pow(const tfw__op_def *op, tfw__call *calls, int cap) {
  return binary_samples(op, calls, cap, 0.5, 3, 0, 4, true, true);
}
int tfw__sample_ew_bitwise(const tfw__op_def *op, tfw__call *calls, int cap) {
  return binary_samples(op, calls, cap, -50, 50, -50, 50, false, true);
}

static int unary_samples(const tfw__op_def *op, tfw__call *calls, int cap, double lo, double hi,
                         bool floats, bool ints, bool bools) {
  struct { tfw_dtype dt; int nd; const int64_t *s; tfw__layout l; } spec[] = {
    {TFW_DTYPE_F32, 2, S34, TFW__LAYOUT_CONTIGUOUS},
    {TFW_DTYPE_F64, 2, S45, TFW__LAYOUT_STRIDED},
    {TFW_DTYPE_BF16, 1, S5, TFW__LAYOUT_CONTIGUOUS},
    {TFW_DTYPE_I32, 2, S23, TFW__LAYOUT_BROADCAST},
    {TFW_DTYPE_BOOL, 1, S4, TFW__LAYOUT_CONTIGUOUS},
  };
  int n = 0;
  for (size_t k = 0; k < sizeof spec / sizeof spec[0] && n < cap; k++) {
    tfw_dtype dt = spec[k].dt;
    if (tfw_dtype_is_floating(dt) ? !floats : (dt == TFW_DTYPE_BOOL ? !bools : !ints)) continue;
    const tfw_tensor *a = tfw__sample_tensor(dt, spec[k].nd, spec[k].s, lo, hi, 7 * k + 3, spec[k].l);
    tfw__call_init(&calls[n], op->id, 1, &a);
    calls[n].a.f[0] = -0.5;
    calls[n].a.f[1] = 0.5;
    n++;
  }
  return n;
}

int tfw__sample_ew_unary_any(const tfw__op_def *op, tfw__call *calls, int cap) {
  bool ints = !(op->flags & TFW__OPF_FLOAT_ONLY);
  return unary_samples(op, calls, cap, -3, 3, true, ints, ints);
}
int tfw__sample_ew_unary_signed(const tfw__op_def *op, tfw__call *calls, int cap) {
  return unary_samples(op, calls, cap, -3, 3, true, true, false);
}
int tfw__sample_ew_unary_pos(const tfw__op_def *op, tfw__call *calls, int cap) {
  return unary_samples(op, calls, cap, 0.1, 4, true, true, false);
}
int tfw__sample_ew_bitwise_unary(const tfw__op_def *op, tfw__call *calls, int cap) {
  return unary_samples(op, calls, cap, -100, 100, false, true, true);
}
int tfw__sample_ew_clamp(const tfw__op_def *op, tfw__call *calls, int cap) {
  return unary_samples(op, calls, cap, -3, 3, true, true, false);
}
int tfw__sample_ew_nan_to_num(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = unary_samples(op, calls, cap, -3, 3, true, true, false);
  for (int i = 0; i < n; i++) {
    calls[i].a.f[0] = 0;
    calls[i].a.f[1] = NAN;
    calls[i].a.f[2] = NAN;
  }
  return n;
}

int tfw__sample_ew_where(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 2) return 0;
  const tfw_tensor *in[3];
  in[0] = tfw__sample_tensor(TFW_DTYPE_BOOL, 2, S34, 0, 1, 1, TFW__LAYOUT_CONTIGUOUS);
  in[1] = tfw__sample_tensor(TFW_DTYPE_F32, 2, S34, -2, 2, 2, TFW__LAYOUT_STRIDED);
  in[2] = tfw__sample_tensor(TFW_DTYPE_F32, 1, S4, -2, 2, 3, TFW__LAYOUT_CONTIGUOUS);
  tfw__call_init(&calls[0], op->id, 3, in);
  in[0] = tfw__sample_tensor(TFW_DTYPE_BOOL, 1, S4, 0, 1, 4, TFW__LAYOUT_CONTIGUOUS);
  in[1] = tfw__sample_tensor(TFW_DTYPE_I64, 2, S34, -9, 9, 5, TFW__LAYOUT_CONTIGUOUS);
  in[2] = tfw__sample_tensor(TFW_DTYPE_F64, 2, S34, -2, 2, 6, TFW__LAYOUT_BROADCAST);
  tfw__call_init(&calls[1], op->id, 3, in);
  return 2;
}

int tfw__sample_ew_masked_fill(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 2) return 0;
  const tfw_tensor *in[2];
  in[0] = tfw__sample_tensor(TFW_DTYPE_F32, 2, S34, -2, 2, 1, TFW__LAYOUT_STRIDED);
  in[1] = tfw__sample_tensor(TFW_DTYPE_BOOL, 1, S4, 0, 1, 2, TFW__LAYOUT_CONTIGUOUS);
  tfw__call_init(&calls[0], op->id, 2, in);
  calls[0].a.f[0] = 7.5;
  in[0] = tfw__sample_tensor(TFW_DTYPE_I32, 2, S34, -9, 9, 3, TFW__LAYOUT_CONTIGUOUS);
  in[1] = tfw__sample_tensor(TFW_DTYPE_BOOL, 2, S34, 0, 1, 4, TFW__LAYOUT_CONTIGUOUS);
  tfw__call_init(&calls[1], op->id, 2, in);
  calls[1].a.f[0] = -3;
  return 2;
}

/* ---- public wrappers ---------------------------------------------------------------------------- */

#define BIN(name) \
  tfw_tensor *tfw_##name(const tfw_tensor *a, const tfw_tensor *b) { return tfw__op2(TFW__OP_##name, a, b); }
#define UN(name) \
  tfw_tensor *tfw_##name(const tfw_tensor *a) { return tfw__op1(TFW__OP_##name, a); }
BIN(add) BIN(sub) BIN(mul) BIN(div) BIN(floor_div) BIN(remainder) BIN(pow) BIN(minimum)
BIN(maximum) BIN(eq) BIN(ne) BIN(lt) BIN(le) BIN(gt) BIN(ge) BIN(logical_and) BIN(logical_or)
BIN(logical_xor) BIN(bitwise_and) BIN(bitwise_or) BIN(bitwise_xor)
UN(neg) UN(abs) UN(sign) UN(relu) UN(sqrt) UN(rsqrt) UN(exp) UN(exp2) UN(log) UN(log2) UN(log1p)
UN(expm1) UN(sin) UN(cos) UN(tan) UN(tanh) UN(sigmoid) UN(erf) UN(gelu) UN(isnan) UN(isinf)
UN(logical_not) UN(bitwise_not)

/* A C scalar as a "wrapped number": integral values act as int64, others as float. */
static tfw_tensor *wrapped(double v) {
  bool integral = isfinite(v) && v == floor(v) && fabs(v) < 9.0e15;
  tfw_tensor *t = tfw_scalar(integral ? TFW_DTYPE_I64 : TFW_DTYPE_F64, v);
  if (t) t->wrapped_number = true;
  return t;
}

static tfw_tensor *scalar_op(tfw__op_id id, const tfw_tensor *a, double b) {
  tfw_tensor *s = wrapped(b);
  if (!s) return NULL;
  tfw_tensor *r = tfw__op2(id, a, s);
  tfw_release(s);
  return r;
}
tfw_tensor *tfw_add_scalar(const tfw_tensor *a, double b) { return scalar_op(TFW__OP_add, a, b); }
tfw_tensor *tfw_mul_scalar(const tfw_tensor *a, double b) { return scalar_op(TFW__OP_mul, a, b); }
tfw_tensor *tfw_pow_scalar(const tfw_tensor *a, double b) { return scalar_op(TFW__OP_pow, a, b); }

static tfw_tensor *unary_attrs(tfw__op_id id, const tfw_tensor *a, double f0, double f1, double f2) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &a);
  c.a.f[0] = f0;
  c.a.f[1] = f1;
  c.a.f[2] = f2;
  return tfw__op_run(&c);
}
tfw_tensor *tfw_clamp(const tfw_tensor *a, double lo, double hi) {
  return unary_attrs(TFW__OP_clamp, a, lo, hi, 0);
}
tfw_tensor *tfw_nan_to_num(const tfw_tensor *a, double nan, double posinf, double neginf) {
  return unary_attrs(TFW__OP_nan_to_num, a, nan, posinf, neginf);
}

tfw_tensor *tfw_where(const tfw_tensor *cond, const tfw_tensor *a, const tfw_tensor *b) {
  const tfw_tensor *in[3] = {cond, a, b};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_where, 3, in);
  return tfw__op_run(&c);
}

tfw_tensor *tfw_masked_fill(const tfw_tensor *a, const tfw_tensor *mask, double value) {
  const tfw_tensor *in[2] = {a, mask};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_masked_fill, 2, in);
  c.a.f[0] = value;
  return tfw__op_run(&c);
}
