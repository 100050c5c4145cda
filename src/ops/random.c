/* Random ops: rand, randn, randint, bernoulli (entries in random.def).
 *
 * Every op reserves ceil(numel / per) Philox blocks from the global generator (rng.h) and
 * element i of the (contiguous, row-major) output is made from block offset + i / per, word
 * i % per; per is 4 for 32-bit draws (f32/f16/bf16 rand, randn and bernoulli) and 2 for
 * 64-bit draws (f64, randint). Chunks of the parallel loop are whole blocks, so the output
 * is bit-identical for any thread count and a GPU kernel with the same (seed, offset) can
 * reproduce it.
 *
 * Conversions (the GPU backend must match them):
 *   rand f32: (w >> 8) * 2^-24; f16: (w >> 21) * 2^-11; bf16: (w >> 24) * 2^-8 (exact in
 *     the storage type, so a cast never rounds up to 1); f64: (u64 >> 11) * 2^-53 with
 *     u64 = w[2k] | w[2k+1] << 32.
 *   randn (Box-Muller in double): f32/f16/bf16 take pairs (w0, w1), (w2, w3):
 *     u1 = (w0 + 1) * 2^-32 in (0, 1], u2 = w1 * 2^-32, r = sqrt(-2 log u1),
 *     z0 = r cos(2 pi u2), z1 = r sin(2 pi u2); f64 takes u1, u2 from the two u64 of a block
 *     (53 bits each) and gives 2 normals per block.
 *   randint: v = low + floor(u64 * (high - low) / 2^64) (multiply-shift; the bias is at most
 *     (high - low) / 2^64, negligible for any range).
 *   bernoulli: f32/f16/bf16: (w >> 8) * 2^-24 < p (p in f32); f64: 53-bit uniform < p. */
#include <math.h>

#include "core/iter.h"
#include "core/rng.h"
#include "ops/registry.h"
#include "ops/samples.h"

#define RNG_GRAIN_BLOCKS 4096 /* blocks per chunk: ~16k elements, tens of microseconds */

static const double TWO_PI = 6.283185307179586476925286766559;

/* ---- inference ------------------------------------------------------------------------ */

/* Largest integer magnitude the dtype holds exactly (floats) or its range (integers). */
static void int_range(tfw_dtype dt, int64_t *lo, int64_t *hi) {
  switch (dt) {
  case TFW_DTYPE_F32: *lo = -(INT64_C(1) << 24); *hi = INT64_C(1) << 24; break;
  case TFW_DTYPE_F64: *lo = -(INT64_C(1) << 53); *hi = INT64_C(1) << 53; break;
  case TFW_DTYPE_F16: *lo = -(INT64_C(1) << 11); *hi = INT64_C(1) << 11; break;
  case TFW_DTYPE_BF16: *lo = -(INT64_C(1) << 8); *hi = INT64_C(1) << 8; break;
  case TFW_DTYPE_I8: *lo = INT8_MIN; *hi = INT8_MAX; break;
  case TFW_DTYPE_U8: *lo = 0; *hi = UINT8_MAX; break;
  case TFW_DTYPE_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
  case TFW_DTYPE_BOOL: *lo = 0; *hi = 1; break;
  default: *lo = INT64_MIN; *hi = INT64_MAX; break;
  }
}

tfw_status tfw__infer_random_fill(const tfw__call *c, tfw__meta *out) {
  const char *name = c->op->name;
  const tfw__attrs *a = &c->a;
  if (!tfw_dtype_is_valid(a->dtype))
    return tfw__error(TFW_EDTYPE, "%s: invalid dtype %d", name, (int)a->dtype);
  if (c->op->id != TFW__OP_randint && !tfw_dtype_is_floating(a->dtype))
    return tfw__error(TFW_EDTYPE, "%s: dtype must be floating-point, got %s", name,
                      tfw_dtype_name(a->dtype));
  if (a->n_ints < 0 || a->n_ints > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: shape must have 0 to %d dims, got n_ints = %d", name,
                      TFW_MAX_DIMS, a->n_ints);
  tfw_status st = tfw__check_shape(name, a->n_ints, a->ints, tfw_dtype_size(a->dtype), NULL);
  if (st) return st;
  if (c->op->id == TFW__OP_randint) {
    int64_t low = a->i[0], high = a->i[1], lo, hi;
    if (high <= low)
      return tfw__error(TFW_EVALUE, "randint: high (%lld) must be greater than low (%lld)",
                        (long long)high, (long long)low);
    int_range(a->dtype, &lo, &hi);
    if (low < lo || high - 1 > hi)
      return tfw__error(TFW_EVALUE,
                        "randint: [low, high) = [%lld, %lld) does not fit in %s (values must be "
                        "in [%lld, %lld])",
                        (long long)low, (long long)high, tfw_dtype_name(a->dtype), (long long)lo,
                        (long long)hi);
  }
  out->dtype = a->dtype;
  out->ndim = a->n_ints;
  for (int d = 0; d < a->n_ints; d++) out->shape[d] = a->ints[d];
  return TFW_OK;
}

/* ---- rand / randn / randint kernel --------------------------------------------------- */

typedef struct {
  tfw__op_id op;
  tfw_dtype dt;
  char *out;
  int64_t n;      /* elements */
  int per;        /* elements per block */
  uint64_t seed;
  uint64_t first; /* first block */
  int64_t low;
  uint64_t range; /* randint: high - low (mod 2^64) */
} fill_ctx;

static inline void store_f32(const fill_ctx *f, int64_t i, float v) {
  switch (f->dt) {
  case TFW_DTYPE_F32: ((float *)f->out)[i] = v; break;
  case TFW_DTYPE_F16: ((uint16_t *)f->out)[i] = tfw_f32_to_f16(v); break;
  default: ((uint16_t *)f->out)[i] = tfw_f32_to_bf16(v); break;
  }
}

static inline void store_int(const fill_ctx *f, int64_t i, int64_t v) {
  switch (f->dt) {
  case TFW_DTYPE_F32: ((float *)f->out)[i] = (float)v; break;
  case TFW_DTYPE_F64: ((double *)f->out)[i] = (double)v; break;
  case TFW_DTYPE_F16: ((uint16_t *)f->out)[i] = tfw_f32_to_f16((float)v); break;
  case TFW_DTYPE_BF16: ((uint16_t *)f->out)[i] = tfw_f32_to_bf16((float)v); break;
  case TFW_DTYPE_I8: ((int8_t *)f->out)[i] = (int8_t)v; break;
  case TFW_DTYPE_U8: ((uint8_t *)f->out)[i] = (uint8_t)v; break;
  case TFW_DTYPE_I32: ((int32_t *)f->out)[i] = (int32_t)v; break;
  case TFW_DTYPE_I64: ((int64_t *)f->out)[i] = v; break;
  default: ((bool *)f->out)[i] = v != 0; break;
  }
}

static void fill_range(int64_t b0, int64_t b1, void *p) {
  const fill_ctx *f = p;
  uint32_t w[4];
  int bits = f->dt == TFW_DTYPE_F16 ? 11 : f->dt == TFW_DTYPE_BF16 ? 8 : 24;
  for (int64_t b = b0; b < b1; b++) {
    tfw__philox_block(f->seed, f->first + (uint64_t)b, w);
    int64_t i0 = b * f->per;
    int m = (int)(f->n - i0 < f->per ? f->n - i0 : f->per);
    uint64_t u64[2] = {w[0] | (uint64_t)w[1] << 32, w[2] | (uint64_t)w[3] << 32};
    if (f->op == TFW__OP_rand) {
      if (f->dt == TFW_DTYPE_F64) {
        for (int j = 0; j < m; j++) ((double *)f->out)[i0 + j] = tfw__u64_to_unit_f64(u64[j]);
      } else {
        for (int j = 0; j < m; j++) store_f32(f, i0 + j, tfw__u32_to_unit_bits(w[j], bits));
      }
    } else if (f->op == TFW__OP_randn) {
      double z[4];
      if (f->dt == TFW_DTYPE_F64) {
        double r = sqrt(-2.0 * log(tfw__u64_to_open_unit(u64[0])));
        double th = TWO_PI * tfw__u64_to_unit_f64(u64[1]);
        z[0] = r * cos(th);
        z[1] = r * sin(th);
        for (int j = 0; j < m; j++) ((double *)f->out)[i0 + j] = z[j];
      } else {
        for (int k = 0; k < 2; k++) {
          double r = sqrt(-2.0 * log(tfw__u32_to_open_unit(w[2 * k])));
          double th = TWO_PI * ((double)w[2 * k + 1] * 0x1p-32);
          z[2 * k] = r * cos(th);
          z[2 * k + 1] = r * sin(th);
        }
        for (int j = 0; j < m; j++) store_f32(f, i0 + j, (float)z[j]);
      }
    } else { /* randint */
      for (int j = 0; j < m; j++) {
        uint64_t v = (uint64_t)(((unsigned __int128)u64[j] * f->range) >> 64);
        store_int(f, i0 + j, (int64_t)((uint64_t)f->low + v));
      }
    }
  }
}

tfw_status tfw__kernel_random_fill(const tfw__call *c, tfw_tensor **out) {
  tfw_tensor *o = out[0];
  fill_ctx f;
  f.op = c->op->id;
  f.dt = o->dtype;
  f.out = tfw__data(o);
  f.n = tfw__numel(o->ndim, o->shape);
  bool wide = f.op == TFW__OP_randint || f.dt == TFW_DTYPE_F64;
  f.per = wide ? 2 : 4;
  f.low = c->a.i[0];
  f.range = (uint64_t)c->a.i[1] - (uint64_t)c->a.i[0];
  int64_t blocks = (f.n + f.per - 1) / f.per;
  if (c->a.b[1]) { /* op-local (seed, offset), recorded in the call: replayable */
    f.seed = (uint64_t)c->a.i[2];
    f.first = (uint64_t)c->a.i[3];
  } else {
    f.first = tfw__rng_reserve((uint64_t)blocks, &f.seed);
  }
  tfw__parallel_for(blocks, RNG_GRAIN_BLOCKS, fill_range, &f);
  return TFW_OK;
}

/* ---- bernoulli ----------------------------------------------------------------------- */

tfw_status tfw__infer_bernoulli(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *p = c->in[0];
  if (!tfw_dtype_is_floating(p->dtype))
    return tfw__error(TFW_EDTYPE, "bernoulli: 'p' must be a floating-point tensor, got %s",
                      tfw_dtype_name(p->dtype));
  out->dtype = p->dtype;
  out->ndim = p->ndim;
  for (int d = 0; d < p->ndim; d++) out->shape[d] = p->shape[d];
  return TFW_OK;
}

static inline bool prob_ok(double v) { return v >= 0.0 && v <= 1.0; } /* false for NaN */

static void check_probs(int64_t n, char **ptrs, const int64_t *strides, void *ctx) {
  _Atomic bool *bad = ((void **)ctx)[0];
  tfw_dtype dt = *(const tfw_dtype *)((void **)ctx)[1];
  if (atomic_load_explicit(bad, memory_order_relaxed)) return;
  for (int64_t i = 0; i < n; i++)
    if (!prob_ok(tfw__load_f64(ptrs[0] + i * strides[0], dt))) {
      atomic_store(bad, true);
      return;
    }
}

typedef struct {
  char *obase;
  tfw_dtype dt;
  uint64_t seed, first;
  int per;
} bern_ctx;

static void bern_loop(int64_t n, char **ptrs, const int64_t *strides, void *ctx) {
  const bern_ctx *b = ctx;
  int64_t es = (int64_t)tfw_dtype_size(b->dt);
  int64_t i0 = (ptrs[0] - b->obase) / es; /* out is contiguous: its linear index */
  uint32_t w[4];
  int64_t cached = -1;
  for (int64_t k = 0; k < n; k++) {
    int64_t i = i0 + k, blk = i / b->per;
    int j = (int)(i % b->per);
    if (blk != cached) {
      tfw__philox_block(b->seed, b->first + (uint64_t)blk, w);
      cached = blk;
    }
    char *o = ptrs[0] + k * strides[0];
    const char *pp = ptrs[1] + k * strides[1];
    if (b->dt == TFW_DTYPE_F64) {
      uint64_t u = w[2 * j] | (uint64_t)w[2 * j + 1] << 32;
      *(double *)o = tfw__u64_to_unit_f64(u) < *(const double *)pp ? 1.0 : 0.0;
    } else {
      float p = (float)tfw__load_f64(pp, b->dt);
      float v = tfw__u32_to_unit_f32(w[j]) < p ? 1.0f : 0.0f;
      if (b->dt == TFW_DTYPE_F32) *(float *)o = v;
      else tfw__store_f64(o, b->dt, v);
    }
  }
}

/* Fails with TFW_EVALUE naming the first p outside [0, 1] (or NaN). Checked in parallel, then
 * the first bad value is located for the message. */
static tfw_status validate_probs(const tfw_tensor *p) {
  int64_t n = tfw__numel(p->ndim, p->shape);
  if (n == 0) return TFW_OK;
  tfw__iter it;
  tfw__iter_init(&it, 1, &p, p->ndim, p->shape);
  _Atomic bool bad = false;
  void *cctx[2] = {(void *)&bad, (void *)&p->dtype};
  tfw__iter_run(&it, TFW__GRAIN_EW, check_probs, cctx);
  if (atomic_load(&bad)) {
    const int64_t es = (int64_t)tfw_dtype_size(p->dtype);
    int64_t idx[TFW_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
      int64_t r = i, off = 0;
      for (int d = p->ndim - 1; d >= 0; d--) {
        idx[d] = r % p->shape[d];
        r /= p->shape[d];
        off += idx[d] * p->strides[d];
      }
      double v = tfw__load_f64(tfw__data(p) + off * es, p->dtype);
      if (!prob_ok(v))
        return tfw__error(TFW_EVALUE, "bernoulli: p must be in [0, 1], got %g at flat index %lld",
                          v, (long long)i);
    }
  }
  return TFW_OK;
}

tfw_status tfw__kernel_bernoulli(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *p = c->in[0];
  tfw_tensor *o = out[0];
  int64_t n = tfw__numel(o->ndim, o->shape);
  if (n == 0) return TFW_OK;
  tfw_status vst = validate_probs(p);
  if (vst) return vst;
  tfw__iter it;
  bern_ctx b;
  b.obase = tfw__data(o);
  b.dt = o->dtype;
  b.per = o->dtype == TFW_DTYPE_F64 ? 2 : 4;
  if (c->a.b[1]) { /* op-local (seed, offset), recorded in the call: replayable */
    b.seed = (uint64_t)c->a.i[2];
    b.first = (uint64_t)c->a.i[3];
  } else {
    b.first = tfw__rng_reserve((uint64_t)((n + b.per - 1) / b.per), &b.seed);
  }
  const tfw_tensor *ops[2] = {o, p};
  tfw__iter_init(&it, 2, ops, o->ndim, o->shape);
  tfw__iter_run(&it, TFW__GRAIN_EW, bern_loop, &b);
  return TFW_OK;
}

/* ---- samples --------------------------------------------------------------------------- */

int tfw__sample_random_fill(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t shapes[3][3] = {{2, 3, 5}, {7, 1, 1}, {0, 4, 1}};
  static const int ndims[3] = {3, 1, 2};
  tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_BF16};
  if (op->id == TFW__OP_randint) {
    dts[0] = TFW_DTYPE_I64;
    dts[2] = TFW_DTYPE_U8;
  }
  int n = 0;
  for (int s = 0; s < 3 && n < cap; s++, n++) {
    tfw__call_init(&calls[n], op->id, 0, NULL);
    calls[n].a.dtype = dts[s];
    calls[n].a.n_ints = ndims[s];
    for (int d = 0; d < ndims[s]; d++) calls[n].a.ints[d] = shapes[s][d];
    calls[n].a.i[0] = s == 0 ? -5 : 0;
    calls[n].a.i[1] = s == 0 ? 17 : 200;
  }
  return n;
}

int tfw__sample_bernoulli(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t shape[2] = {4, 6};
  const tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16};
  int n = 0;
  for (int s = 0; s < 3 && n < cap; s++) {
    tfw_tensor *p =
        tfw__sample_tensor(dts[s], 2, shape, 0.0, 1.0, (uint64_t)s, (tfw__layout)s);
    if (!p) break;
    const tfw_tensor *in[1] = {p};
    tfw__call_init(&calls[n], op->id, 1, in);
    n++;
  }
  return n;
}

/* ---- public wrappers ------------------------------------------------------------------ */

/* Counter blocks a draw of n values of dtype dt uses (4 32-bit draws per Philox block, 2 for
 * 64-bit ones), so that a wrapper can reserve exactly the kernel's range. */
static uint64_t blocks_for(tfw__op_id id, tfw_dtype dt, int64_t n) {
  int64_t per = (id == TFW__OP_randint || dt == TFW_DTYPE_F64) ? 2 : 4;
  return (uint64_t)((n + per - 1) / per);
}

/* explicit: use (seed, offset); otherwise reserve them from the global generator here, so
 * every recorded call carries its own (seed, offset) and can be replayed exactly. */
static tfw_tensor *run_fill(tfw__op_id id, tfw_dtype dt, int ndim, const int64_t *shape,
                            int64_t low, int64_t high, bool explicit_seed, uint64_t seed,
                            uint64_t offset) {
  const char *name = tfw__ops[id].name;
  int64_t numel;
  if (tfw__check_shape(name, ndim, shape, 1, &numel)) return NULL;
  tfw__call c;
  tfw__call_init(&c, id, 0, NULL);
  c.a.dtype = dt;
  c.a.n_ints = ndim;
  for (int d = 0; d < ndim; d++) c.a.ints[d] = shape[d];
  c.a.i[0] = low;
  c.a.i[1] = high;
  if (!explicit_seed) {
    tfw__meta meta[TFW__MAX_OUT];
    if (tfw__infer_random_fill(&c, meta)) return NULL; /* a failing call consumes no counters */
    offset = tfw__rng_reserve(blocks_for(id, dt, numel), &seed);
  }
  c.a.b[1] = true;
  c.a.i[2] = (int64_t)seed;
  c.a.i[3] = (int64_t)offset;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_rand(tfw_dtype dt, int ndim, const int64_t *shape) {
  return run_fill(TFW__OP_rand, dt, ndim, shape, 0, 0, false, 0, 0);
}

tfw_tensor *tfw_randn(tfw_dtype dt, int ndim, const int64_t *shape) {
  return run_fill(TFW__OP_randn, dt, ndim, shape, 0, 0, false, 0, 0);
}

tfw_tensor *tfw_randint(int64_t low, int64_t high, tfw_dtype dt, int ndim, const int64_t *shape) {
  return run_fill(TFW__OP_randint, dt, ndim, shape, low, high, false, 0, 0);
}

tfw_tensor *tfw_rand_at(uint64_t seed, uint64_t offset, tfw_dtype dt, int ndim, const int64_t *shape) {
  return run_fill(TFW__OP_rand, dt, ndim, shape, 0, 0, true, seed, offset);
}

tfw_tensor *tfw_randn_at(uint64_t seed, uint64_t offset, tfw_dtype dt, int ndim, const int64_t *shape) {
  return run_fill(TFW__OP_randn, dt, ndim, shape, 0, 0, true, seed, offset);
}

static tfw_tensor *bernoulli(const tfw_tensor *p, bool explicit_seed, uint64_t seed, uint64_t offset) {
  if (tfw__check_tensor("bernoulli", "p", p)) return NULL;
  tfw__call c;
  tfw__call_init(&c, TFW__OP_bernoulli, 1, &p);
  if (!explicit_seed) {
    tfw__meta meta[TFW__MAX_OUT];
    if (tfw__infer_bernoulli(&c, meta) || validate_probs(p)) return NULL; /* consumes nothing */
    offset = tfw__rng_reserve(blocks_for(TFW__OP_bernoulli, p->dtype, tfw__numel(p->ndim, p->shape)), &seed);
  }
  c.a.b[1] = true;
  c.a.i[2] = (int64_t)seed;
  c.a.i[3] = (int64_t)offset;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_bernoulli(const tfw_tensor *p) { return bernoulli(p, false, 0, 0); }
tfw_tensor *tfw_bernoulli_at(uint64_t seed, uint64_t offset, const tfw_tensor *p) {
  return bernoulli(p, true, seed, offset);
}
