/* selective_scan and selective_scan_backward: the selective state-space scan of Mamba
 * (Gu & Dao 2023), forward and reverse, on the CPU.
 *
 * Letters: b batch (B), d channel (D = d_inner), t time (L), n state (N = d_state),
 * c chunk (nc chunks of K steps). Per (b, d) and state n the recurrence is
 *     h_t = a_t h_{t-1} + delta_t B_t u_t,  a_t = exp(delta_t A),  y_t = C_t . h_t + D u_t.
 *
 * Parallel scan (training): time is cut into chunks of K = 128 steps (a constant, never a
 * function of the thread count, so results are bit-identical for any number of threads).
 *   pass 1, tasks (b, c) in parallel: each chunk scanned from a zero state, keeping its end
 *           state and S = sum of delta A over the chunk (the log of its total decay);
 *   pass 2, tasks b*d in parallel: the associative combine of (decay, state) pairs across
 *           chunks, h_in(c+1) = exp(S_c) h_in(c) + local_c, in log space: only exp(S) of a
 *           sum of logs is ever taken, never a product of many exps, and with delta >= 0,
 *           A <= 0 no exponent is positive, so 32K-step sequences neither overflow nor
 *           underflow into NaN (exp of a very negative S is a clean 0);
 *   pass 3, tasks (b, c) in parallel: each chunk rescanned from its true carry-in, writing y.
 * The state vector of one (b, d) lives in a small local array (N <= 256 fits registers /
 * L1). Everything is computed in f64 from contiguous f64 copies of the inputs: the scan is
 * latency-bound on exp, and f64 keeps 32K-step sums exact enough that f32 outputs round
 * once. B and C are read in their [B, N, L] layout; for fixed t the N reads touch N cache
 * lines that stay hot for the next 8 steps, so no transpose is made.
 *
 * Backward (a reverse scan): the adjoint g_t = dL/dh_t obeys
 *     g_t = C_t gy_t + a_{t+1} g_{t+1}   (g_{L-1} also receives the final-state gradient),
 * chunked the same way: local reverse scans per chunk, a combine of adjoints from right to
 * left (G_{c-1} = a_{t0} g_local(t0) + exp(S_c) G_c), and a last pass per (b, c) that
 * recomputes the chunk's states h_t from its carry-in into a K x N buffer and walks back:
 *     gu_t = D gy_t + sum_n g dt B,   gdelta_t = sum_n g (B u + A a_t h_{t-1}),
 *     gA += g dt a_t h_{t-1},  gB_t += g dt u,  gC_t += gy h_t,  gD += gy u.
 * gB and gC sum over d: a (b, c) task owns its (b, time range) outright and loops over d
 * in order, so no atomics. gA and gD are summed per task and then reduced in task order. */
#include <math.h>
#include <string.h>

#include "ops/registry.h"
#include "ops/samples.h"

#define SS_CHUNK 128

/* exp in f64 that gcc can vectorise (glibc's exp is a scalar call; it was the whole profile):
 * x = k ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2), e^r by its Taylor series to r^12
 * (truncation < 2e-16 relative), 2^k built in the exponent bits. Below -708: 0; above 709:
 * inf; NaN stays NaN. The scan's arguments are delta*A <= 0 in normal use. */
static inline double exp_f64(double x) {
  const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
  double xc = x < -708.0 ? -708.0 : x > 709.0 ? 709.0 : x;
  double kf = xc * 1.4426950408889634 + magic, k = kf - magic;
  double r = xc - k * 6.93147180369123816490e-01;
  r = r - k * 1.90821492927058770002e-10;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t ki;
  memcpy(&ki, &kf, sizeof ki);
  ki = (ki - 0x4338000000000000LL + 1023) << 52; /* the low bits of kf hold k */
  double s2;
  memcpy(&s2, &ki, sizeof s2);
  double res = p * s2;
  res = x < -708.0 ? 0.0 : res;
  res = x > 709.0 ? INFINITY : res;
  return x != x ? x : res;
}

/* ---- inference -------------------------------------------------------------------------- */

static tfw_status want_shape(const char *op, const char *arg, const tfw_tensor *t, int ndim,
                             const int64_t *shape) {
  bool ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
  if (ok) return TFW_OK;
  char got[TFW__SHAPE_BUF], want[TFW__SHAPE_BUF];
  return tfw__error(TFW_ESHAPE, "%s: %s has shape %s, expected %s", op, arg,
                    tfw__shape_str(got, sizeof got, t->ndim, t->shape),
                    tfw__shape_str(want, sizeof want, ndim, shape));
}

/* Checks the six scan inputs; fills dims = {B, D, L, N}. */
static tfw_status check_scan(const tfw__call *c, int64_t *dims) {
  const char *op = c->op->name;
  static const char *names[8] = {"u", "delta", "A", "B", "C", "D", "grad_y", "grad_state"};
  for (int i = 0; i < c->n_in; i++)
    if (tfw__check_float(op, names[i], c->in[i])) return TFW_EDTYPE;
  const tfw_tensor *u = c->in[0];
  if (u->ndim != 3) {
    char buf[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: u must be [batch, channels, length], got shape %s", op,
                      tfw__shape_str(buf, sizeof buf, u->ndim, u->shape));
  }
  const tfw_tensor *A = c->in[2];
  if (A->ndim != 2 || A->shape[0] != u->shape[1]) {
    char buf[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: A must be [channels, d_state] = [%lld, N], got shape %s", op,
                      (long long)u->shape[1], tfw__shape_str(buf, sizeof buf, A->ndim, A->shape));
  }
  int64_t B = u->shape[0], D = u->shape[1], L = u->shape[2], N = A->shape[1];
  if (N > 256) return tfw__error(TFW_EVALUE, "%s: d_state %lld is too large (at most 256)", op, (long long)N);
  tfw_status st = want_shape(op, "delta", c->in[1], 3, u->shape);
  if (!st) st = want_shape(op, "B", c->in[3], 3, (int64_t[]){B, N, L});
  if (!st) st = want_shape(op, "C", c->in[4], 3, (int64_t[]){B, N, L});
  if (!st) st = want_shape(op, "D", c->in[5], 1, (int64_t[]){D});
  if (!st && c->n_in > 6) st = want_shape(op, "grad_y", c->in[6], 3, u->shape);
  if (!st && c->n_in > 7) st = want_shape(op, "grad_state", c->in[7], 3, (int64_t[]){B, D, N});
  dims[0] = B, dims[1] = D, dims[2] = L, dims[3] = N;
  return st;
}

tfw_status tfw__infer_selective_scan(const tfw__call *c, tfw__meta *out) {
  int64_t s[4];
  tfw_status st = check_scan(c, s);
  if (st) return st;
  out[0].dtype = out[1].dtype = c->in[0]->dtype;
  out[0].ndim = out[1].ndim = 3;
  memcpy(out[0].shape, (int64_t[]){s[0], s[1], s[2]}, 3 * sizeof(int64_t));
  memcpy(out[1].shape, (int64_t[]){s[0], s[1], s[3]}, 3 * sizeof(int64_t));
  return TFW_OK;
}

tfw_status tfw__infer_selective_scan_backward(const tfw__call *c, tfw__meta *out) {
  int64_t s[4];
  tfw_status st = check_scan(c, s);
  if (st) return st;
  int64_t B = s[0], D = s[1], L = s[2], N = s[3];
  out[0].dtype = c->in[0]->dtype;
  out[0].ndim = 1;
  out[0].shape[0] = 2 * B * D * L + D * N + 2 * B * N * L + D;
  return TFW_OK;
}

/* ---- the scan ----------------------------------------------------------------------------- */

typedef struct scan {
  int64_t B, D, L, N, nc;
  const double *u, *dl, *A, *Bm, *Cm, *Dv, *gy, *gs; /* contiguous f64 inputs */
  double *S;     /* [B, nc, D, N] sum of delta A over each chunk */
  double *loc;   /* [B, nc, D, N] chunk end state from zero (forward) / local adjoint (backward) */
  double *hin;   /* [B, nc, D, N] true state entering each chunk */
  double *gin;   /* [B, nc, D, N] adjoint entering each chunk from the right (backward) */
  double *y, *hlast;                       /* forward outputs [B, D, L], [B, D, N] */
  double *gu, *gdl, *gB, *gC, *gA_p, *gD_p; /* backward: gA_p [B*nc, D, N], gD_p [B*nc, D] */
  double *hb;                               /* backward: [B*nc, K + 1, N] recomputed states */
} scan;

#define IDX4(s, b, c, d) ((((b) * (s)->nc + (c)) * (s)->D + (d)) * (s)->N)

/* pass 1: each chunk from a zero state (loc, S). */
TFW_CLONES static void pass_local(int64_t begin, int64_t end, void *ctx) {
  const scan *s = ctx;
  const int64_t D = s->D, L = s->L, N = s->N;
  for (int64_t task = begin; task < end; task++) {
    int64_t b = task / s->nc, c = task % s->nc, t0 = c * SS_CHUNK;
    int64_t t1 = t0 + SS_CHUNK < L ? t0 + SS_CHUNK : L;
    for (int64_t d = 0; d < D; d++) {
      double h[256], S[256];
      const double *A = s->A + d * N, *u = s->u + (b * D + d) * L, *dl = s->dl + (b * D + d) * L;
      const double *Bm = s->Bm + b * N * L;
      for (int64_t n = 0; n < N; n++) h[n] = 0, S[n] = 0;
      for (int64_t t = t0; t < t1; t++) {
        double dt = dl[t], du = dt * u[t];
        for (int64_t n = 0; n < N; n++) {
          double la = dt * A[n];
          S[n] += la;
          h[n] = exp_f64(la) * h[n] + du * Bm[n * L + t];
        }
      }
      memcpy(s->loc + IDX4(s, b, c, d), h, sizeof(double) * (size_t)N);
      memcpy(s->S + IDX4(s, b, c, d), S, sizeof(double) * (size_t)N);
    }
  }
}

/* pass 2: carries across chunks per (b, d), in log space. */
static void pass_carry(int64_t begin, int64_t end, void *ctx) {
  const scan *s = ctx;
  const int64_t N = s->N;
  for (int64_t bd = begin; bd < end; bd++) {
    int64_t b = bd / s->D, d = bd % s->D;
    double h[256];
    for (int64_t n = 0; n < N; n++) h[n] = 0;
    for (int64_t c = 0; c < s->nc; c++) {
      int64_t o = IDX4(s, b, c, d);
      memcpy(s->hin + o, h, sizeof(double) * (size_t)N);
      for (int64_t n = 0; n < N; n++) h[n] = exp(s->S[o + n]) * h[n] + s->loc[o + n];
    }
    if (s->hlast) memcpy(s->hlast + bd * N, h, sizeof(double) * (size_t)N);
  }
}

/* pass 3: each chunk from its carry-in, writing y. */
TFW_CLONES static void pass_output(int64_t begin, int64_t end, void *ctx) {
  const scan *s = ctx;
  const int64_t D = s->D, L = s->L, N = s->N;
  for (int64_t task = begin; task < end; task++) {
    int64_t b = task / s->nc, c = task % s->nc, t0 = c * SS_CHUNK;
    int64_t t1 = t0 + SS_CHUNK < L ? t0 + SS_CHUNK : L;
    for (int64_t d = 0; d < D; d++) {
      double h[256];
      const double *A = s->A + d * N, *u = s->u + (b * D + d) * L, *dl = s->dl + (b * D + d) * L;
      const double *Bm = s->Bm + b * N * L, *Cm = s->Cm + b * N * L;
      double *y = s->y + (b * D + d) * L, Dd = s->Dv[d];
      memcpy(h, s->hin + IDX4(s, b, c, d), sizeof(double) * (size_t)N);
      for (int64_t t = t0; t < t1; t++) {
        double dt = dl[t], du = dt * u[t], acc = 0;
        for (int64_t n = 0; n < N; n++) h[n] = exp_f64(dt * A[n]) * h[n] + du * Bm[n * L + t];
        for (int64_t n = 0; n < N; n++) acc += Cm[n * L + t] * h[n];
        y[t] = acc + Dd * u[t];
      }
    }
  }
}

/* backward pass 1: local reverse scan per chunk from a zero adjoint; loc = a_{t0} g(t0). */
TFW_CLONES static void pass_local_adjoint(int64_t begin, int64_t end, void *ctx) {
  const scan *s = ctx;
  const int64_t D = s->D, L = s->L, N = s->N;
  for (int64_t task = begin; task < end; task++) {
    int64_t b = task / s->nc, c = task % s->nc, t0 = c * SS_CHUNK;
    int64_t t1 = t0 + SS_CHUNK < L ? t0 + SS_CHUNK : L;
    for (int64_t d = 0; d < D; d++) {
      double g[256];
      const double *A = s->A + d * N, *dl = s->dl + (b * D + d) * L, *gy = s->gy + (b * D + d) * L;
      const double *Cm = s->Cm + b * N * L;
      for (int64_t n = 0; n < N; n++) g[n] = 0;
      for (int64_t t = t1 - 1; t >= t0; t--) /* g <- a_t (C_t gy_t + g) */
        for (int64_t n = 0; n < N; n++) g[n] = exp_f64(dl[t] * A[n]) * (Cm[n * L + t] * gy[t] + g[n]);
      memcpy(s->loc + IDX4(s, b, c, d), g, sizeof(double) * (size_t)N);
    }
  }
}

/* backward pass 2: adjoints entering each chunk from the right. */
static void pass_carry_adjoint(int64_t begin, int64_t end, void *ctx) {
  const scan *s = ctx;
  const int64_t N = s->N;
  for (int64_t bd = begin; bd < end; bd++) {
    int64_t b = bd / s->D, d = bd % s->D;
    double g[256];
    for (int64_t n = 0; n < N; n++) g[n] = s->gs[bd * N + n];
    for (int64_t c = s->nc - 1; c >= 0; c--) {
      int64_t o = IDX4(s, b, c, d);
      memcpy(s->gin + o, g, sizeof(double) * (size_t)N);
      for (int64_t n = 0; n < N; n++) g[n] = exp(s->S[o + n]) * g[n] + s->loc[o + n];
    }
  }
}

/* backward pass 3: per chunk, recompute the states, walk back and accumulate gradients. */
TFW_CLONES static void pass_grads(int64_t begin, int64_t end, void *ctx) {
  const scan *s = ctx;
  const int64_t D = s->D, L = s->L, N = s->N;
  for (int64_t task = begin; task < end; task++) {
    double *hb = s->hb + task * (SS_CHUNK + 1) * N; /* [K + 1, N] states of this chunk */
    int64_t b = task / s->nc, c = task % s->nc, t0 = c * SS_CHUNK;
    int64_t t1 = t0 + SS_CHUNK < L ? t0 + SS_CHUNK : L;
    double *gA = s->gA_p + task * D * N, *gD = s->gD_p + task * D;
    double *gB = s->gB + b * N * L, *gC = s->gC + b * N * L;
    const double *Bm = s->Bm + b * N * L, *Cm = s->Cm + b * N * L;
    for (int64_t d = 0; d < D; d++) {
      const double *A = s->A + d * N;
      const double *u = s->u + (b * D + d) * L, *dl = s->dl + (b * D + d) * L, *gy = s->gy + (b * D + d) * L;
      double *gu = s->gu + (b * D + d) * L, *gdl = s->gdl + (b * D + d) * L, Dd = s->Dv[d];
      /* hb row 0: h_{t0-1} (the carry-in), row k: h_{t0+k-1} */
      memcpy(hb, s->hin + IDX4(s, b, c, d), sizeof(double) * (size_t)N);
      for (int64_t t = t0; t < t1; t++) {
        double dt = dl[t], du = dt * u[t], *hp = hb + (t - t0) * N, *h = hp + N;
        for (int64_t n = 0; n < N; n++) h[n] = exp_f64(dt * A[n]) * hp[n] + du * Bm[n * L + t];
      }
      double g[256], gDd = 0;
      memcpy(g, s->gin + IDX4(s, b, c, d), sizeof(double) * (size_t)N);
      for (int64_t t = t1 - 1; t >= t0; t--) {
        const double *hp = hb + (t - t0) * N, *h = hp + N;
        double dt = dl[t], ut = u[t], gyt = gy[t], gut = Dd * gyt, gdt = 0;
        for (int64_t n = 0; n < N; n++) {
          double a = exp_f64(dt * A[n]), bn = Bm[n * L + t];
          double gn = g[n] + Cm[n * L + t] * gyt; /* dL/dh_t */
          double gah = gn * a * hp[n];            /* dL/d(delta A) through a_t */
          gut += gn * dt * bn;
          gdt += gn * bn * ut + gah * A[n];
          gA[d * N + n] += gah * dt;
          gB[n * L + t] += gn * dt * ut;
          gC[n * L + t] += gyt * h[n];
          g[n] = a * gn; /* carried to t - 1 */
        }
        gDd += gyt * ut;
        gu[t] = gut;
        gdl[t] = gdt;
      }
      gD[d] += gDd;
    }
  }
}

/* Contiguous f64 copies of the first n inputs into x[]; false (error set) on failure. */
static bool load_inputs(const tfw__call *c, int n, tfw_tensor **x) {
  for (int i = 0; i < n; i++) x[i] = NULL;
  for (int i = 0; i < n; i++)
    if (!(x[i] = tfw__as_contiguous(c->in[i], TFW_DTYPE_F64))) return false;
  return true;
}

static void scan_setup(scan *s, const int64_t *dims, tfw_tensor *const *x, int n_in) {
  memset(s, 0, sizeof *s);
  s->B = dims[0], s->D = dims[1], s->L = dims[2], s->N = dims[3];
  s->nc = (s->L + SS_CHUNK - 1) / SS_CHUNK;
  const double **p[8] = {&s->u, &s->dl, &s->A, &s->Bm, &s->Cm, &s->Dv, &s->gy, &s->gs};
  for (int i = 0; i < n_in; i++) *p[i] = (const double *)tfw__data(x[i]);
}

/* Grain for a pass over `tasks` tasks: everything in one chunk (serial) when the whole scan
 * is under 2^16 state-steps (B*D*L*N), else the pass's own grain. Waking the pool costs more
 * than such a scan: [1, 2, 300, 3] took 15 ms forward with 2 threads on a loaded 2-core
 * machine and 0.18 ms serial. Tasks are independent and partial sums are reduced in task
 * order, so the result is the same bits either way. */
static int64_t pass_grain(const scan *s, int64_t tasks, int64_t grain) {
  return s->B * s->D * s->L * s->N < (1 << 16) ? (tasks > 0 ? tasks : 1) : grain;
}

/* Allocates the chunk buffers (S, loc, hin and, for backward, gin) and runs passes 1-2. */
static tfw_status scan_forward_carries(const char *op, scan *s, bool backward) {
  size_t cn = (size_t)(s->B * s->nc * s->D * s->N);
  s->S = tfw__malloc(sizeof(double) * (cn ? cn : 1));
  s->loc = tfw__malloc(sizeof(double) * (cn ? cn : 1));
  s->hin = tfw__malloc(sizeof(double) * (cn ? cn : 1));
  if (backward) s->gin = tfw__malloc(sizeof(double) * (cn ? cn : 1));
  if (!s->S || !s->loc || !s->hin || (backward && !s->gin))
    return tfw__error(TFW_ENOMEM, "%s: out of memory for the chunk states (%zu bytes)", op,
                      4 * sizeof(double) * cn);
  tfw__parallel_for(s->B * s->nc, pass_grain(s, s->B * s->nc, 1), pass_local, s);
  tfw__parallel_for(s->B * s->D, pass_grain(s, s->B * s->D, 16), pass_carry, s);
  return TFW_OK;
}

static void scan_free(scan *s) {
  tfw__free(s->S), tfw__free(s->loc), tfw__free(s->hin), tfw__free(s->gin);
}

static void store(tfw_tensor *dst, int64_t off, const double *src, int64_t n) {
  char *p = tfw__data(dst);
  size_t es = tfw_dtype_size(dst->dtype);
  if (dst->dtype == TFW_DTYPE_F64) memcpy(p + off * 8, src, sizeof(double) * (size_t)n);
  else for (int64_t i = 0; i < n; i++) tfw__store_f64(p + (size_t)(off + i) * es, dst->dtype, src[i]);
}

tfw_status tfw__kernel_selective_scan(const tfw__call *c, tfw_tensor **out) {
  int64_t dims[4];
  tfw_status st = check_scan(c, dims);
  if (st) return st;
  tfw_tensor *x[6];
  scan s;
  if (!load_inputs(c, 6, x)) {
    st = tfw_last_status();
    goto done_inputs;
  }
  scan_setup(&s, dims, x, 6);
  int64_t ny = s.B * s.D * s.L, nh = s.B * s.D * s.N;
  s.y = tfw__malloc(sizeof(double) * (size_t)(ny + nh + 1));
  if (!s.y) {
    st = tfw__error(TFW_ENOMEM, "selective_scan: out of memory");
    goto done_inputs;
  }
  s.hlast = s.y + ny;
  memset(s.hlast, 0, sizeof(double) * (size_t)nh);
  st = scan_forward_carries("selective_scan", &s, false);
  if (!st) {
    tfw__parallel_for(s.B * s.nc, pass_grain(&s, s.B * s.nc, 1), pass_output, &s);
    store(out[0], 0, s.y, ny);
    store(out[1], 0, s.hlast, nh);
  }
  scan_free(&s);
  tfw__free(s.y);
done_inputs:
  for (int i = 0; i < 6; i++) tfw_release(x[i]);
  return st;
}

tfw_status tfw__kernel_selective_scan_backward(const tfw__call *c, tfw_tensor **out) {
  int64_t dims[4];
  tfw_status st = check_scan(c, dims);
  if (st) return st;
  tfw_tensor *x[8];
  scan s;
  memset(&s, 0, sizeof s);
  double *buf = NULL;
  if (!load_inputs(c, 8, x)) {
    st = tfw_last_status();
    goto done;
  }
  scan_setup(&s, dims, x, 8);
  int64_t B = s.B, D = s.D, L = s.L, N = s.N, nt = B * s.nc;
  int64_t n_u = B * D * L, n_bc = B * N * L;
  int64_t total = 2 * n_u + D * N + 2 * n_bc + D + nt * D * N + nt * D + nt * (SS_CHUNK + 1) * N;
  buf = tfw__calloc((size_t)(total + 1), sizeof(double));
  if (!buf) {
    st = tfw__error(TFW_ENOMEM, "selective_scan_backward: out of memory");
    goto done;
  }
  /* packed in the output's order: gu, gdelta, gA, gB, gC, gD; then the partial sums */
  s.gu = buf, s.gdl = s.gu + n_u;
  double *gA = s.gdl + n_u;
  s.gB = gA + D * N, s.gC = s.gB + n_bc;
  double *gD = s.gC + n_bc;
  s.gA_p = gD + D, s.gD_p = s.gA_p + nt * D * N, s.hb = s.gD_p + nt * D;
  st = scan_forward_carries("selective_scan_backward", &s, true);
  if (st) goto done;
  tfw__parallel_for(nt, pass_grain(&s, nt, 1), pass_local_adjoint, &s);
  tfw__parallel_for(B * D, pass_grain(&s, B * D, 16), pass_carry_adjoint, &s);
  tfw__parallel_for(nt, pass_grain(&s, nt, 1), pass_grads, &s);
  for (int64_t k = 0; k < nt; k++) { /* task order: deterministic */
    for (int64_t i = 0; i < D * N; i++) gA[i] += s.gA_p[k * D * N + i];
    for (int64_t i = 0; i < D; i++) gD[i] += s.gD_p[k * D + i];
  }
  store(out[0], 0, buf, 2 * n_u + D * N + 2 * n_bc + D);
done:
  scan_free(&s);
  tfw__free(buf);
  for (int i = 0; i < 8; i++) tfw_release(x[i]);
  return st;
}

/* ---- samples ------------------------------------------------------------------------------ */

/* u, delta >= 0 (softplus-like), A < 0, B, C, D; shapes {B, D, L, N}. */
static void scan_sample(tfw__call *call, const tfw__op_def *op, const int64_t *s, tfw_dtype dt,
                        tfw__layout lay, uint64_t seed, bool backward) {
  const int64_t B = s[0], D = s[1], L = s[2], N = s[3];
  const tfw_tensor *in[8];
  in[0] = tfw__sample_tensor(dt, 3, (int64_t[]){B, D, L}, -1, 1, seed, lay);
  in[1] = tfw__sample_tensor(dt, 3, (int64_t[]){B, D, L}, 0.05, 0.6, seed + 1, lay);
  in[2] = tfw__sample_tensor(dt, 2, (int64_t[]){D, N}, -2, -0.2, seed + 2, lay);
  in[3] = tfw__sample_tensor(dt, 3, (int64_t[]){B, N, L}, -1, 1, seed + 3, lay);
  in[4] = tfw__sample_tensor(dt, 3, (int64_t[]){B, N, L}, -1, 1, seed + 4, lay);
  in[5] = tfw__sample_tensor(dt, 1, (int64_t[]){D}, -1, 1, seed + 5, TFW__LAYOUT_CONTIGUOUS);
  if (backward) {
    in[6] = tfw__sample_tensor(dt, 3, (int64_t[]){B, D, L}, -1, 1, seed + 6, lay);
    in[7] = tfw__sample_tensor(dt, 3, (int64_t[]){B, D, N}, -1, 1, seed + 7, lay);
  }
  tfw__call_init(call, op->id, backward ? 8 : 6, in);
}

static int samples(const tfw__op_def *op, tfw__call *calls, int cap, bool backward) {
  if (cap < 3) return 0;
  scan_sample(&calls[0], op, (int64_t[]){2, 3, 5, 4}, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 1, backward);
  scan_sample(&calls[1], op, (int64_t[]){1, 2, 300, 3}, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 11, backward);
  scan_sample(&calls[2], op, (int64_t[]){2, 2, 3, 2}, TFW_DTYPE_BF16, TFW__LAYOUT_CONTIGUOUS, 21, backward);
  return 3;
}

int tfw__sample_selective_scan(const tfw__op_def *op, tfw__call *calls, int cap) {
  return samples(op, calls, cap, false);
}

int tfw__sample_selective_scan_backward(const tfw__op_def *op, tfw__call *calls, int cap) {
  return samples(op, calls, cap, true);
}
