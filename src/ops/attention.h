/* Internal interface between the attention op drivers (attention.c) and the fused tiled
 * kernels (attention_kernel.c). Internal header — never installed.
 *
 * Letters: BH = product of the batch dims (batch * heads), Lq queries, Lk keys, E the
 * query/key width, Ev the value width. q [BH, Lq, E], k [BH, Lk, E], v [BH, Lk, Ev], out and
 * grad_out [BH, Lq, Ev], logsumexp [BH, Lq]: contiguous, in the compute type (f32 or f64). */
#ifndef TFW_OPS_ATTENTION_H
#define TFW_OPS_ATTENTION_H

#include "ops/registry.h"

typedef struct tfw__att {
  int64_t BH, Lq, Lk, E, Ev;
  double scale;
  bool causal;
  double p;             /* dropout probability, 0 = none */
  uint64_t seed, offset; /* Philox stream of the dropout mask */
  bool f64;             /* compute type: f64, else f32 */
  /* optional mask: element (bh, i, j) at mask + moff[bh] + i * msi + j * msj (elements) */
  const void *mask;     /* NULL: none */
  bool mask_bool;       /* bool (true = keep), else additive in the compute type */
  const int64_t *moff;  /* [BH] */
  int64_t msi, msj;
} tfw__att;

/* Forward: out [BH, Lq, Ev], lse [BH, Lq]. */
tfw_status tfw__att_forward(const tfw__att *g, const void *q, const void *k, const void *v,
                            void *out, void *lse);
/* Backward: dq [BH, Lq, E], dkv [BH, Lk, E + Ev] (dk then dv in each row). glse may be NULL
 * (zero). */
tfw_status tfw__att_backward(const tfw__att *g, const void *q, const void *k, const void *v,
                             const void *out, const void *lse, const void *gout,
                             const void *glse, void *dq, void *dkv);

/* Dropout multiplier of key j for row r = bh * Lq + i: 0 or 1/(1-p). Counter layout: the
 * row's keys use Philox blocks offset + r * ceil(Lk/4) + j/4, word j % 4; dropped when the
 * word's 24-bit uniform is < p. The total reserved is BH * Lq * ceil(Lk/4) blocks. */
uint64_t tfw__att_dropout_blocks(int64_t BH, int64_t Lq, int64_t Lk);

#endif
