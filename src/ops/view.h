/* Internal helpers of the view and shape op families (src/ops/view.c, src/ops/shape*.c).
 * Internal header — never installed. */
#ifndef TFW_OPS_VIEW_H
#define TFW_OPS_VIEW_H

#include "ops/registry.h"

/* Resolves a requested shape (n sizes, at most one -1) against t's element count into out.
 * TFW_ESHAPE naming op and both shapes when the sizes are invalid or do not match. */
tfw_status tfw__infer_size(const char *op, const tfw_tensor *t, int n, const int64_t *sizes,
                           int64_t *out);
/* PyTorch's computeStride: the strides of a view with shape (ndim, shape) of a tensor with
 * (ondim, oshape, ostride) and the same element count; false if no view exists. */
bool tfw__view_strides(int ondim, const int64_t *oshape, const int64_t *ostride, int ndim,
                       const int64_t *shape, int64_t *strides);
/* Fills *v as an uncounted view of base's storage (no reference taken, nothing allocated):
 * for kernels that hand sub-blocks of a tensor to tfw__copy_cast while base stays alive.
 * strides NULL means contiguous. Never return one to a caller or release it. */
void tfw__light_view(tfw_tensor *v, const tfw_tensor *base, int ndim, const int64_t *shape,
                     const int64_t *strides, int64_t offset);
/* Copies a public list argument (n entries, 0..TFW_MAX_DIMS) into c->a.ints / n_ints;
 * TFW_ESHAPE / TFW_EVALUE naming the op and arg otherwise. */
tfw_status tfw__call_set_ints(tfw__call *c, const char *arg, int n, const int64_t *v);

#endif
