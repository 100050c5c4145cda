/* The tiled attention kernels for one compute type, included twice by attention_kernel.c with
 * AT_T (float/double), AT_S (name suffix), AT_GEMM (tfw__sgemm/tfw__dgemm) and AT_EXP
 * (the exp to use) defined. See attention_kernel.c for the algorithm and the choices. */

/* Scores of one tile are in S [nq, BK] (row stride BK): applies the mask and the causal
 * limit (to -inf / added), row i being query i0 + i, column j key j0 + j. */
static void AT_NAME(mask_tile)(const tfw__att *g, int64_t bh, int64_t i0, int64_t nq, int64_t j0,
                               int64_t nk, AT_T *S) {
  if (g->mask) {
    for (int64_t i = 0; i < nq; i++) {
      AT_T *row = S + i * BK;
      int64_t base = g->moff[bh] + (i0 + i) * g->msi + j0 * g->msj;
      if (g->mask_bool) {
        const bool *mk = (const bool *)g->mask + base;
        for (int64_t j = 0; j < nk; j++)
          if (!mk[j * g->msj]) row[j] = -INFINITY;
      } else {
        const AT_T *mk = (const AT_T *)g->mask + base;
        if (g->msj == 1)
          for (int64_t j = 0; j < nk; j++) row[j] += mk[j];
        else
          for (int64_t j = 0; j < nk; j++) row[j] += mk[j * g->msj];
      }
    }
  }
  if (g->causal && j0 + nk - 1 > i0) /* some key of the tile lies after some query */
    for (int64_t i = 0; i < nq; i++) {
      int64_t first = i0 + i + 1 - j0; /* first hidden column of row i */
      for (int64_t j = first < 0 ? 0 : first; j < nk; j++) S[i * BK + j] = -INFINITY;
    }
}

/* The dropout multipliers of row r, keys j0 .. j0 + nk - 1 (j0 a multiple of 4, nk <= BK);
 * the draws come from tfw__philox_blocks (vectorised) in one call per row. */
static void AT_NAME(drop_row)(const tfw__att *g, int64_t r, int64_t j0, int64_t nk, AT_T *mult) {
  uint64_t nbj = (uint64_t)((g->Lk + 3) / 4);
  AT_T keep = (AT_T)(1.0 / (1.0 - g->p));
  float p = (float)g->p;
  uint32_t w[BK + 4];
  tfw__philox_blocks(g->seed, g->offset + (uint64_t)r * nbj + (uint64_t)(j0 / 4), (nk + 3) / 4, w);
  for (int64_t j = 0; j < nk; j++) mult[j] = tfw__u32_to_unit_f32(w[j]) < p ? (AT_T)0 : keep;
}

static AT_CLONES AT_T AT_NAME(row_max)(const AT_T *x, int64_t n) {
  AT_T m = -INFINITY;
  for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

/* x = exp(x - m) in place; returns the sum */
static AT_CLONES AT_T AT_NAME(row_exp)(AT_T *x, int64_t n, AT_T m) {
  AT_T s = 0;
  for (int64_t j = 0; j < n; j++) {
    AT_T e = AT_EXP(x[j] - m);
    x[j] = e;
    s += e;
  }
  return s;
}

static AT_CLONES void AT_NAME(row_scale)(AT_T *x, int64_t n, AT_T a) {
  for (int64_t j = 0; j < n; j++) x[j] *= a;
}

static AT_CLONES void AT_NAME(row_mul)(AT_T *x, const AT_T *y, int64_t n) {
  for (int64_t j = 0; j < n; j++) x[j] *= y[j];
}

/* dS = P * (dP * mult - D) (mult = NULL: no dropout), written into dP */
static AT_CLONES void AT_NAME(row_ds)(const AT_T *P, AT_T *dP, const AT_T *mult, int64_t n,
                                      AT_T D) {
  if (mult)
    for (int64_t j = 0; j < n; j++) dP[j] = P[j] * (dP[j] * mult[j] - D);
  else
    for (int64_t j = 0; j < n; j++) dP[j] = P[j] * (dP[j] - D);
}

/* P = exp(S - lse) in place */
static AT_CLONES void AT_NAME(row_prob)(AT_T *x, int64_t n, AT_T lse) {
  for (int64_t j = 0; j < n; j++) x[j] = AT_EXP(x[j] - lse);
}

typedef struct {
  const tfw__att *g;
  const AT_T *q, *k, *v, *o, *lse, *go, *glse, *D;
  _Atomic int *fail;
  AT_T *out, *lse_out, *dqp, *dkv;
  int64_t nqb, nkb, nkc;
} AT_NAME(job);

/* ---- forward: work item = (bh, query block) ------------------------------------------------ */
static void AT_NAME(fwd_range)(int64_t w0, int64_t w1, void *ctx) {
  const AT_NAME(job) *J = ctx;
  const tfw__att *g = J->g;
  const int64_t E = g->E, Ev = g->Ev, Lq = g->Lq, Lk = g->Lk;
  AT_T *S = malloc(sizeof(AT_T) * (size_t)(BQ * BK + BQ * Ev + 2 * BQ + BK));
  if (!S) {
    *J->fail = 1;
    return;
  }
  AT_T *acc = S + BQ * BK, *m = acc + BQ * Ev, *l = m + BQ, *mult = l + BQ;
  for (int64_t w = w0; w < w1; w++) {
    int64_t bh = w / J->nqb, i0 = (w % J->nqb) * BQ;
    int64_t nq = Lq - i0 < BQ ? Lq - i0 : BQ;
    const AT_T *Q = J->q + (bh * Lq + i0) * E;
    for (int64_t i = 0; i < nq; i++) m[i] = -INFINITY, l[i] = 0;
    memset(acc, 0, sizeof(AT_T) * (size_t)(nq * Ev));
    int64_t kend = g->causal && i0 + nq < Lk ? i0 + nq : Lk;
    for (int64_t j0 = 0; j0 < kend; j0 += BK) {
      int64_t nk = kend - j0 < BK ? kend - j0 : BK;
      /* S = scale * Q K^T: B(e, j) = K[j, e] */
      AT_GEMM(nq, nk, E, (AT_T)g->scale, Q, E, 1, J->k + (bh * Lk + j0) * E, 1, E, 0, S, BK, 1);
      AT_NAME(mask_tile)(g, bh, i0, nq, j0, nk, S);
      for (int64_t i = 0; i < nq; i++) {
        AT_T *row = S + i * BK;
        AT_T mx = AT_NAME(row_max)(row, nk);
        AT_T mn = mx > m[i] ? mx : m[i];
        if (mn == -INFINITY) { /* every key so far is masked out */
          memset(row, 0, sizeof(AT_T) * (size_t)nk);
          continue;
        }
        AT_T alpha = AT_EXP(m[i] - mn); /* 0 when m was -inf */
        AT_T s = AT_NAME(row_exp)(row, nk, mn);
        l[i] = l[i] * alpha + s;
        m[i] = mn;
        if (alpha != (AT_T)1) AT_NAME(row_scale)(acc + i * Ev, Ev, alpha);
        if (g->p > 0) {
          AT_NAME(drop_row)(g, bh * Lq + i0 + i, j0, nk, mult);
          AT_NAME(row_mul)(row, mult, nk);
        }
      }
      /* acc += P V */
      AT_GEMM(nq, Ev, nk, 1, S, BK, 1, J->v + (bh * Lk + j0) * Ev, Ev, 1, 1, acc, Ev, 1);
    }
    AT_T *O = J->out + (bh * Lq + i0) * Ev;
    for (int64_t i = 0; i < nq; i++) {
      AT_T inv = (AT_T)1 / l[i]; /* l == 0 (fully masked row): NaN, as softmax gives */
      if (l[i] == 0) inv = NAN;
      for (int64_t e = 0; e < Ev; e++) O[i * Ev + e] = acc[i * Ev + e] * inv;
      J->lse_out[bh * Lq + i0 + i] = m[i] + (AT_T)log((double)l[i]);
    }
  }
  free(S);
}

/* ---- backward ------------------------------------------------------------------------------ */
/* D[r] = sum_e dO[r, e] O[r, e] - glse[r] */
static void AT_NAME(d_range)(int64_t r0, int64_t r1, void *ctx) {
  const AT_NAME(job) *J = ctx;
  const int64_t Ev = J->g->Ev;
  AT_T *D = (AT_T *)J->D;
  for (int64_t r = r0; r < r1; r++) {
    double s = 0;
    for (int64_t e = 0; e < Ev; e++) s += (double)J->go[r * Ev + e] * (double)J->o[r * Ev + e];
    D[r] = (AT_T)(s - (J->glse ? (double)J->glse[r] : 0));
  }
}

/* work item = (bh, chunk of key blocks); dQ partial sums go to dqp[(bh, chunk)] */
static void AT_NAME(bwd_range)(int64_t w0, int64_t w1, void *ctx) {
  const AT_NAME(job) *J = ctx;
  const tfw__att *g = J->g;
  const int64_t E = g->E, Ev = g->Ev, Lq = g->Lq, Lk = g->Lk;
  size_t n = (size_t)(3 * BQ * BK + BK * E + BK * Ev + BK);
  AT_T *P = malloc(sizeof(AT_T) * n);
  if (!P) {
    *J->fail = 1;
    return;
  }
  AT_T *Pd = P + BQ * BK, *dP = Pd + BQ * BK, *dK = dP + BQ * BK, *dV = dK + BK * E,
       *mult = dV + BK * Ev;
  for (int64_t w = w0; w < w1; w++) {
    int64_t bh = w / J->nkc, c = w % J->nkc;
    AT_T *dQ = J->dqp + w * Lq * E;
    memset(dQ, 0, sizeof(AT_T) * (size_t)(Lq * E));
    int64_t kb0 = c * J->nkb / J->nkc, kb1 = (c + 1) * J->nkb / J->nkc;
    for (int64_t kb = kb0; kb < kb1; kb++) {
      int64_t j0 = kb * BK, nk = Lk - j0 < BK ? Lk - j0 : BK;
      const AT_T *K = J->k + (bh * Lk + j0) * E, *V = J->v + (bh * Lk + j0) * Ev;
      memset(dK, 0, sizeof(AT_T) * (size_t)(BK * (E + Ev)));
      for (int64_t i0 = g->causal ? j0 / BQ * BQ : 0; i0 < Lq; i0 += BQ) {
        int64_t nq = Lq - i0 < BQ ? Lq - i0 : BQ;
        const AT_T *Q = J->q + (bh * Lq + i0) * E, *dO = J->go + (bh * Lq + i0) * Ev;
        AT_GEMM(nq, nk, E, (AT_T)g->scale, Q, E, 1, K, 1, E, 0, P, BK, 1);
        AT_NAME(mask_tile)(g, bh, i0, nq, j0, nk, P);
        /* dP = dO V^T */
        AT_GEMM(nq, nk, Ev, 1, dO, Ev, 1, V, 1, Ev, 0, dP, BK, 1);
        const AT_T *PV = P; /* the probabilities that multiplied V */
        for (int64_t i = 0; i < nq; i++) {
          AT_T *row = P + i * BK;
          AT_NAME(row_prob)(row, nk, J->lse[bh * Lq + i0 + i]);
          const AT_T *mu = NULL;
          if (g->p > 0) {
            AT_NAME(drop_row)(g, bh * Lq + i0 + i, j0, nk, mult);
            memcpy(Pd + i * BK, row, sizeof(AT_T) * (size_t)nk);
            AT_NAME(row_mul)(Pd + i * BK, mult, nk);
            mu = mult;
          }
          AT_NAME(row_ds)(row, dP + i * BK, mu, nk, J->D[bh * Lq + i0 + i]);
        }
        if (g->p > 0) PV = Pd;
        /* dV += Pd^T dO, dK += scale dS^T Q, dQ += scale dS K */
        AT_GEMM(nk, Ev, nq, 1, PV, 1, BK, dO, Ev, 1, 1, dV, Ev, 1);
        AT_GEMM(nk, E, nq, (AT_T)g->scale, dP, 1, BK, Q, E, 1, 1, dK, E, 1);
        AT_GEMM(nq, E, nk, (AT_T)g->scale, dP, BK, 1, K, E, 1, 1, dQ + i0 * E, E, 1);
      }
      AT_T *dst = J->dkv + (bh * Lk + j0) * (E + Ev);
      for (int64_t j = 0; j < nk; j++) {
        memcpy(dst + j * (E + Ev), dK + j * E, sizeof(AT_T) * (size_t)E);
        memcpy(dst + j * (E + Ev) + E, dV + j * Ev, sizeof(AT_T) * (size_t)Ev);
      }
    }
  }
  free(P);
}
