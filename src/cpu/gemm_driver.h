/* The blocked GEMM driver, written once for f32 and f64: gemm.c includes this file twice
 * with TFW__T (element type), TFW__UKR (micro-kernel descriptor type), TFW__FMA (fmaf/fma)
 * and TFW__NAME(x) (name suffix) defined. Not a public header; no include guard on purpose.
 *
 * Letters as in gemm.h; mr x nr is the micro-tile, mc/kc/nc the cache blocks. */

/* Packs rows [0, mc) x cols [0, kc) of A (already offset to the block) into mr-row
 * slivers: sliver s holds A(s*mr + r, k) at dst[s*mr*kc + k*mr + r], zero-padded rows. */
static void TFW__NAME(pack_a)(const TFW__UKR *u, int64_t mc, int64_t kc, const TFW__T *A,
                              int64_t rsa, int64_t csa, TFW__T *restrict dst) {
  const int64_t mr = u->mr;
  int64_t i0 = 0;
  if (rsa == 1 && u->pack_copy) {
    /* Column-major A (the B of a row-major product after the C^T swap): 16 k at a time
     * across all slivers, so each k's run of mc values is read in one go. Sliver by
     * sliver, each k read only mr*elt bytes from a new row (a new page for n >= 1024):
     * measured 1.5x slower from L3 for 256 x 512 blocks. */
    const int64_t full = mc / mr * mr;
    for (int64_t k0 = 0; k0 < kc; k0 += 16)
      for (int64_t i = 0; i < full; i += mr)
        u->pack_copy(kc - k0 < 16 ? kc - k0 : 16, mr, A + i + k0 * csa, csa,
                     dst + i * kc + k0 * mr);
    i0 = full;
  }
  for (dst += i0 * kc; i0 < mc; i0 += mr, dst += mr * kc) {
    const int64_t m = mc - i0 < mr ? mc - i0 : mr;
    const TFW__T *src = A + i0 * rsa;
    if (csa == 1 && m == mr && u->pack_tr) {
      u->pack_tr(kc, mr, src, rsa, dst);
    } else if (rsa == 1 && m == mr) { /* column-major A: each k is a contiguous run of rows */
      for (int64_t k = 0; k < kc; k++) memcpy(dst + k * mr, src + k * csa, sizeof(TFW__T) * mr);
    } else if (rsa == 1) {
      for (int64_t k = 0; k < kc; k++) {
        const TFW__T *s = src + k * csa;
        TFW__T *d = dst + k * mr;
        for (int64_t r = 0; r < m; r++) d[r] = s[r];
        for (int64_t r = m; r < mr; r++) d[r] = 0;
      }
    } else if (csa == 1) { /* row-major A: read each row contiguously, write strided */
      for (int64_t r = 0; r < m; r++) {
        const TFW__T *s = src + r * rsa;
        for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = s[k];
      }
      for (int64_t r = m; r < mr; r++)
        for (int64_t k = 0; k < kc; k++) dst[k * mr + r] = 0;
    } else {
      for (int64_t k = 0; k < kc; k++) {
        TFW__T *d = dst + k * mr;
        for (int64_t r = 0; r < m; r++) d[r] = src[r * rsa + k * csa];
        for (int64_t r = m; r < mr; r++) d[r] = 0;
      }
    }
  }
}

/* Packs nr-column slivers p in [p0, p1) of B (kc x nc, offset to the block): sliver p
 * holds B(k, p*nr + c) at dst[p*nr*kc + k*nr + c], zero-padded columns. */
static void TFW__NAME(pack_b)(const TFW__UKR *u, int64_t p0, int64_t p1, int64_t nc,
                              int64_t kc, const TFW__T *B, int64_t rsb, int64_t csb,
                              TFW__T *restrict dst) {
  const int64_t nr = u->nr;
  for (int64_t p = p0; p < p1; p++) {
    const int64_t j0 = p * nr, n = nc - j0 < nr ? nc - j0 : nr;
    const TFW__T *src = B + j0 * csb;
    TFW__T *d = dst + p * nr * kc;
    if (csb == 1 && n == nr && u->pack_copy) {
      u->pack_copy(kc, nr, src, rsb, d);
    } else if (rsb == 1 && n == nr && u->pack_tr) {
      u->pack_tr(kc, nr, src, csb, d);
    } else if (csb == 1) { /* row-major B: each k is a contiguous run of columns */
      for (int64_t k = 0; k < kc; k++) {
        for (int64_t c = 0; c < n; c++) d[k * nr + c] = src[k * rsb + c];
        for (int64_t c = n; c < nr; c++) d[k * nr + c] = 0;
      }
    } else if (rsb == 1) { /* column-major B: read each column contiguously */
      for (int64_t c = 0; c < n; c++) {
        const TFW__T *s = src + c * csb;
        for (int64_t k = 0; k < kc; k++) d[k * nr + c] = s[k];
      }
      for (int64_t c = n; c < nr; c++)
        for (int64_t k = 0; k < kc; k++) d[k * nr + c] = 0;
    } else {
      for (int64_t k = 0; k < kc; k++) {
        for (int64_t c = 0; c < n; c++) d[k * nr + c] = src[k * rsb + c * csb];
        for (int64_t c = n; c < nr; c++) d[k * nr + c] = 0;
      }
    }
  }
}

/* C(i,j) = t(i,j) + beta*C(i,j) for an m x n edge tile t (column-major, leading dim ldt),
 * rounded exactly like the micro-kernels' own store. */
static void TFW__NAME(merge)(int64_t m, int64_t n, const TFW__T *t, int64_t ldt, TFW__T beta,
                             TFW__T *C, int64_t rsc, int64_t csc) {
  for (int64_t j = 0; j < n; j++)
    for (int64_t i = 0; i < m; i++) {
      TFW__T *c = C + i * rsc + j * csc;
      *c = beta == 0 ? t[i + j * ldt] : TFW__FMA(beta, *c, t[i + j * ldt]);
    }
}

/* C = beta*C (the K == 0 / alpha == 0 case); beta == 0 writes zeros without reading. */
static void TFW__NAME(scale)(int64_t M, int64_t N, TFW__T beta, TFW__T *C, int64_t rsc,
                             int64_t csc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      TFW__T *c = C + i * rsc + j * csc;
      *c = beta == 0 ? 0 : beta * *c;
    }
}

/* Reference loop: used when scratch memory cannot be allocated. */
static void TFW__NAME(naive)(int64_t M, int64_t N, int64_t K, TFW__T alpha, const TFW__T *A,
                             int64_t rsa, int64_t csa, const TFW__T *B, int64_t rsb,
                             int64_t csb, TFW__T beta, TFW__T *C, int64_t rsc, int64_t csc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      TFW__T ab = 0;
      for (int64_t k = 0; k < K; k++) ab += A[i * rsa + k * csa] * B[k * rsb + j * csb];
      TFW__T *c = C + i * rsc + j * csc;
      *c = beta == 0 ? alpha * ab : TFW__FMA(beta, *c, alpha * ab);
    }
}

/* The macro-kernel: an mc x nc block of C (offset to the block) from packed A (all
 * slivers of the block) and packed B slivers [p0, p1). Loop order jr outer, ir inner: the
 * kc x nr B sliver stays in L1 while A slivers stream from L2. */
static void TFW__NAME(macro)(const TFW__UKR *u, int64_t mc, int64_t nc, int64_t kc,
                             int64_t p0, int64_t p1, const TFW__T *pa, const TFW__T *pb,
                             TFW__T alpha, TFW__T beta, TFW__T *C, int64_t rsc, int64_t csc) {
  const int64_t mr = u->mr, nr = u->nr;
  _Alignas(64) TFW__T tmp[TFW__GEMM_MAX_TILE];
  for (int64_t p = p0; p < p1; p++) {
    const int64_t j0 = p * nr, n = nc - j0 < nr ? nc - j0 : nr;
    const TFW__T *b = pb + p * nr * kc;
    for (int64_t i0 = 0; i0 < mc; i0 += mr) {
      const int64_t m = mc - i0 < mr ? mc - i0 : mr;
      const TFW__T *a = pa + i0 * kc;
      TFW__T *c = C + i0 * rsc + j0 * csc;
      if (m == mr && n == nr && rsc == 1) {
        u->fn(kc, a, b, c, csc, alpha, beta);
      } else {
        u->fn(kc, a, b, tmp, mr, alpha, 0);
        TFW__NAME(merge)(m, n, tmp, mr, beta, c, rsc, csc);
      }
    }
  }
}

typedef struct TFW__NAME(job) {
  const TFW__UKR *u;
  int64_t M, N, K;
  TFW__T alpha, beta;
  const TFW__T *A;
  int64_t rsa, csa;
  const TFW__T *B;
  int64_t rsb, csb;
  TFW__T *C;
  int64_t rsc, csc;
  int64_t mc, kc, nc, nkb; /* blocks; nkb = number of K blocks (kc balanced over K) */
  bool split_m;            /* threads split rows of C (else each its own columns) */
  TFW__T *pb;              /* kc x roundup(nc, nr) packed B: shared (split_m) or per thread */
  TFW__T *pa;              /* per thread: mc x kc packed A, pa_stride elements apart */
  int64_t pa_stride, pb_stride;
  int nt; /* threads (column split: shares) */
} TFW__NAME(job);

/* One thread's share. Column split (the default): each thread owns a contiguous range of
 * nr-column slivers of C and runs the whole loop nest on it with its own packed B and A,
 * so threads share nothing they write and never wait for each other (B packed jointly and
 * read by both threads cost ~4x more on a 2-core Zen 4 VM: every packed line moved between
 * the cores' L2s). Row split: all threads walk the same (jc, pc) sequence, pack B jointly
 * (each a range of slivers) and multiply their own rows, with a barrier after packing and
 * one before B is repacked. The split never changes which kc blocks feed a C element nor
 * their order, so results are the same bits for any thread count. */
static void TFW__NAME(run)(const TFW__NAME(job) *jb, int tid, int nth) {
  const TFW__UKR *u = jb->u;
  const int64_t mr = u->mr, nr = u->nr, M = jb->M, K = jb->K;
  TFW__T *pa = jb->pa + tid * jb->pa_stride, *pb = jb->pb;
  int64_t n0 = 0, n1 = jb->N, r0 = 0, r1 = M;
  if (jb->split_m) {
    const int64_t mt = (M + mr - 1) / mr;
    r0 = (tid * mt / nth) * mr;
    r1 = ((tid + 1) * mt / nth) * mr;
    if (r1 > M) r1 = M;
  } else {
    const int64_t nt = (jb->N + nr - 1) / nr;
    n0 = (tid * nt / nth) * nr;
    n1 = ((tid + 1) * nt / nth) * nr;
    if (n1 > jb->N) n1 = jb->N;
    pb += tid * jb->pb_stride;
  }
  int64_t mcb = jb->mc;
  if (r1 > r0) { /* balance the mc blocks of this thread's rows */
    const int64_t nb = (r1 - r0 + jb->mc - 1) / jb->mc;
    mcb = ((r1 - r0 + nb - 1) / nb + mr - 1) / mr * mr;
  }
  for (int64_t jc = n0; jc < n1; jc += jb->nc) {
    const int64_t nc = n1 - jc < jb->nc ? n1 - jc : jb->nc;
    const int64_t npan = (nc + nr - 1) / nr;
    for (int64_t kb = 0; kb < jb->nkb; kb++) {
      const int64_t pc = kb * jb->kc, kc = K - pc < jb->kc ? K - pc : jb->kc;
      const TFW__T beta = kb == 0 ? jb->beta : 1;
      const TFW__T *B = jb->B + pc * jb->rsb + jc * jb->csb;
      if (jb->split_m) {
        TFW__NAME(pack_b)(u, tid * npan / nth, (tid + 1) * npan / nth, nc, kc, B, jb->rsb,
                          jb->csb, pb);
#ifdef TFW_HAVE_OPENMP
        if (nth > 1) { /* everyone reads all of B */
#pragma omp barrier
        }
#endif
      } else {
        TFW__NAME(pack_b)(u, 0, npan, nc, kc, B, jb->rsb, jb->csb, pb);
      }
      for (int64_t ic = r0; ic < r1; ic += mcb) {
        const int64_t mc = r1 - ic < mcb ? r1 - ic : mcb;
        TFW__NAME(pack_a)(u, mc, kc, jb->A + ic * jb->rsa + pc * jb->csa, jb->rsa, jb->csa,
                          pa);
        TFW__NAME(macro)(u, mc, nc, kc, 0, npan, pa, pb, jb->alpha, beta,
                         jb->C + ic * jb->rsc + jc * jb->csc, jb->rsc, jb->csc);
      }
#ifdef TFW_HAVE_OPENMP
      /* Row split: nobody repacks B while another thread may still read it (the end of the
       * parallel region waits after the last block). */
      if (nth > 1 && jb->split_m && (kb + 1 < jb->nkb || jc + jb->nc < n1)) {
#pragma omp barrier
      }
#endif
    }
  }
}

/* Column split through the library's pool: chunk c is thread share c (any thread may run
 * any share: each has its own packed-B and packed-A scratch, indexed by the share). */
static void TFW__NAME(shares)(int64_t c0, int64_t c1, void *ctx) {
  const TFW__NAME(job) *jb = ctx;
  for (int64_t c = c0; c < c1; c++) TFW__NAME(run)(jb, (int)c, jb->nt);
}

/* Cache blocks from the cache sizes the CPU reports (see gemm.c): the kc x nr B sliver
 * takes half of L1, the mc x kc A block half of L2, the kc x nc B panel a quarter of L3. */
static void TFW__NAME(blocking)(const TFW__UKR *u, const tfw__cpu_info *ci, int64_t *mc,
                                int64_t *kc, int64_t *nc) {
  const int64_t esz = (int64_t)sizeof(TFW__T), mr = u->mr, nr = u->nr;
  int64_t k = ci->l1d_bytes / 2 / (nr * esz) / 8 * 8;
  k = k < 64 ? 64 : k > 1024 ? 1024 : k;
  int64_t m = ci->l2_bytes / 2 / (k * esz) / mr * mr;
  m = m < mr ? mr : m > 64 * mr ? 64 * mr : m;
  int64_t n = ci->l3_bytes / 4 / (k * esz) / nr * nr;
  n = n < 16 * nr ? 16 * nr : n > 8192 ? 8192 / nr * nr : n;
  TFW__GEMM_TUNE(mr, nr, &m, &k, &n);
  *mc = m;
  *kc = k;
  *nc = n;
}

/* Blocking and threading policy, then the run. See gemm.c for how the sizes were chosen. */
static void TFW__NAME(gemm)(const TFW__UKR *u, int64_t M, int64_t N, int64_t K, TFW__T alpha,
                            const TFW__T *A, int64_t rsa, int64_t csa, const TFW__T *B,
                            int64_t rsb, int64_t csb, TFW__T beta, TFW__T *C, int64_t rsc,
                            int64_t csc) {
  if (M <= 0 || N <= 0 || K < 0) return;
  if (K == 0 || alpha == 0) {
    TFW__NAME(scale)(M, N, beta, C, rsc, csc);
    return;
  }
  /* The micro-kernel stores columns of C with vector stores (rsc == 1). A row-major C is
   * computed as C^T = B^T A^T instead: swap the roles of A and B, M and N. */
  if (rsc != 1 && csc == 1) {
    const TFW__T *t = A;
    int64_t s;
    A = B;
    B = t;
    s = M, M = N, N = s;
    s = rsa, rsa = csb, csb = s;
    s = csa, csa = rsb, rsb = s;
    csc = rsc;
    rsc = 1;
  }

  const tfw__cpu_info *ci = tfw__cpu();
  const int64_t mr = u->mr, nr = u->nr, esz = (int64_t)sizeof(TFW__T);
  int64_t mcb, kcb, ncb;
  TFW__NAME(blocking)(u, ci, &mcb, &kcb, &ncb);
  /* Balance kc over K (a pure function of K: same K blocks for any thread count). */
  const int64_t nkb = (K + kcb - 1) / kcb;
  const int64_t kc = (K + nkb - 1) / nkb;
  const int64_t mt = (M + mr - 1) / mr, ntl = (N + nr - 1) / nr;

  int nt = 1;
#ifdef TFW_HAVE_OPENMP
  if (!tfw__in_parallel() && (double)M * (double)N * (double)K >= TFW__GEMM_MT_FLOOR)
    nt = tfw__num_threads(); /* the library-wide setting (tfw_set_num_threads) */
#else
  if (!tfw__in_parallel() && (double)M * (double)N * (double)K >= TFW__GEMM_MT_FLOOR)
    nt = tfw__num_threads();
#endif
  if (nt > mt && nt > ntl) nt = (int)(mt > ntl ? mt : ntl);
  if (nt < 1) nt = 1;
  /* Two threads: split columns (nothing shared, no barriers; see run) unless that leaves
   * them notably less evenly loaded than a row split. More threads: split rows unless the
   * columns balance notably better, since with a column split every thread packs all of A
   * (at 16 threads on a Sapphire Rapids VM: 15-30% faster at n = 256, 10-15% slower at
   * n = 512 and 2048; at 2 threads it is faster on Zen 4 and Sapphire Rapids alike). */
  bool split_m = false;
  if (nt > 1) {
    double im = (double)((mt + nt - 1) / nt) * nt / (double)mt;
    double in = (double)((ntl + nt - 1) / nt) * nt / (double)ntl;
    split_m = nt <= 2 ? in > im * 1.15 : im <= in * 1.15;
#ifdef TFW__GEMM_SPLIT_M
    split_m = TFW__GEMM_SPLIT_M;
#endif
  }
  /* Column split: one packed B per thread, nc capped at the widest thread's share (a
   * runtime that starts fewer threads only makes the shares longer, in more nc blocks). */
  int64_t nc = N < ncb ? N : ncb;
  if (!split_m) {
    const int64_t share = (ntl + nt - 1) / nt * nr;
    nc = nc < share ? nc : share;
  }
  const int64_t ncr = (nc + nr - 1) / nr * nr;
  const int64_t mcmax = M < mcb ? (M + mr - 1) / mr * mr : mcb;
  const int64_t pa_stride = (mcmax * kc + 63) / 64 * 64;
  const int64_t pb_stride = (ncr * kc + 63) / 64 * 64;
  const int64_t npb = split_m ? 1 : nt;
  const size_t bytes = (size_t)(npb * pb_stride + nt * pa_stride) * (size_t)esz;
  void *tmp;
  TFW__T *pb = ws_get(bytes, &tmp);
  if (!pb) {
    TFW__NAME(naive)(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
    return;
  }

  TFW__NAME(job) jb = {.u = u, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                       .A = A, .rsa = rsa, .csa = csa, .B = B, .rsb = rsb, .csb = csb,
                       .C = C, .rsc = rsc, .csc = csc, .mc = mcb, .kc = kc, .nc = nc,
                       .nkb = nkb, .split_m = split_m, .pb = pb, .pa = pb + npb * pb_stride,
                       .pa_stride = pa_stride, .pb_stride = pb_stride, .nt = nt};
  if (nt == 1) {
    TFW__NAME(run)(&jb, 0, 1);
  } else if (!split_m) { /* no barriers: the pool (see src/core/parallel.c) */
    tfw__parallel_for(nt, 1, TFW__NAME(shares), &jb);
  } else {
#ifdef TFW_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
    TFW__NAME(run)(&jb, omp_get_thread_num(), omp_get_num_threads());
#else
    TFW__NAME(run)(&jb, 0, 1);
#endif
  }
  free(tmp);
}
