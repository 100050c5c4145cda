/* Shared geometry of the convolution family (conv.c, conv_kernels.c, pool.c).
 *
 * Letters: every conv-like op relates a "big" tensor [N, C, L...] and a "small" one
 * [N, O, P...] through a weight [O, C/G, K...]: small position o of dim s reads big
 * position o*stride - pad + j*dil for tap j (positions outside [0, L) are zeros).
 *   conv            small = W (*) big           (x = big, out = small)
 *   conv_transpose  big   = W^T (*) small       (x = small, out = big)
 *   conv_weight_grad W    = small (*) big^T     (x = big, gy = small)
 * 1-d ops are 2-d ops with a leading spatial dim of size 1 (H = P0 = k0 = 1). */
#ifndef TFW_OPS_CONV_H
#define TFW_OPS_CONV_H

#include "ops/registry.h"

typedef struct tfw__conv_geom {
  int S;                  /* spatial dims of the op: 1 or 2 */
  int64_t N, C, O, G;     /* batch, big channels, small channels, groups */
  int64_t L[2], P[2];     /* big and small spatial sizes (dim 0 is 1 for S = 1) */
  int64_t k[2], s[2], p[2], d[2];
} tfw__conv_geom;

/* Largest stride, padding, dilation or kernel accepted: keeps every size product in int64. */
#define TFW__CONV_ATTR_MAX ((int64_t)1 << 24)

/* Geometry of a conv-family call (validated by its infer function first). */
tfw_status tfw__conv_geometry(const tfw__call *c, tfw__conv_geom *g);
/* Runs the op of c on its inputs into out (contiguous, already allocated). */
tfw_status tfw__conv_compute(const tfw__call *c, const tfw__conv_geom *g, tfw_tensor *out);

/* Winograd F(2x2, 3x3) (conv_winograd.c): whether it applies (f32 compute, AVX-512, 3x3,
 * stride 1, dilation 1, groups 1, padding <= 2, >= 4 channels each side); the forward or
 * transposed conv (x, w, bias as the op's inputs, contiguous f32; y = the op's output), and
 * the weight gradient (x = big, gy = small, dw [O, C, 3, 3]). */
bool tfw__conv_winograd_ok(const tfw__conv_geom *g, tfw_dtype ct);
tfw_status tfw__conv_winograd(const tfw__conv_geom *g, bool transposed, const float *x,
                              const float *w, const float *bias, float *y);
tfw_status tfw__conv_winograd_wgrad(const tfw__conv_geom *g, const float *x, const float *gy,
                                    float *dw);

/* Pooling output size: floor/ceil((L + 2p - d(k-1) - 1) / s) + 1, the last window starting
 * inside the input or its left padding (PyTorch's rule). Assumes validated attributes. */
/* Fused gradient of max_pool1d/2d call c (c->in[0] = x) for the output gradient gy: in one
 * pass per plane, each window's argmax is recomputed and gy written there (pool.c). Not
 * recorded by autograd: for first-order backward only. *gx gets x's dtype and shape. */
tfw_status tfw__max_pool_grad(const tfw__call *c, const tfw_tensor *gy, tfw_tensor **gx);

int64_t tfw__pool_out_size(int64_t L, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode);

#endif
