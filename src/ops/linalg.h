/* Internal interface of the linear-algebra family (src/ops/linalg.c, src/ops/einsum.c). */
#ifndef TFW_OPS_LINALG_H
#define TFW_OPS_LINALG_H

#include "core/core.h"

/* The batched matrix-multiply engine behind matmul, bmm, addmm, baddbmm, outer, dot and
 * einsum:
 *   out[b..., :, :] = alpha * a[b..., :, :] @ bm[b..., :, :] + beta * c
 * a is [batch..., n, k], bm [batch..., k, m], out [batch..., n, m], all of the same rank
 * r >= 2 and the same batch shape (broadcast batch dims carry stride 0). Strides are
 * arbitrary; out must not overlap the inputs. c (may be NULL) is broadcast to out's shape;
 * with c == NULL or beta == 0 the old contents of out (and c's NaNs) are ignored.
 * The compute dtype follows out's dtype: f64 -> f64, f32/f16/bf16 -> f32, integers ->
 * int64 (wrapping), with a final cast into out. Bool out is the caller's error to report.
 * For integer out, alpha and beta must hold integer values (the caller checks). */
tfw_status tfw__matmul_strided(const char *op, const tfw_tensor *a, const tfw_tensor *bm,
                               tfw_tensor *out, const tfw_tensor *c, double alpha, double beta);

#endif
