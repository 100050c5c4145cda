/* tenflower — convolution and pooling (torch.nn.functional names and argument semantics).
 *
 * Layouts: 1-d ops take [N, C, L] (or unbatched [C, L]); 2-d ops take [N, C, H, W] (or
 * [C, H, W]). Array arguments of 2-d ops hold (h, w) and may be NULL for the default
 * (stride 1, padding 0, dilation 1, output_padding 0; pooling stride NULL = kernel_size).
 * bias may be NULL. Input, weight and bias must share one floating dtype (TFW_EDTYPE
 * otherwise); f16/bf16 compute in f32. Every function returns a new reference, or NULL with
 * tfw_last_error() set: TFW_EVALUE for a NULL tensor or a bad parameter (stride or dilation
 * < 1, negative padding, groups < 1, pooling padding over half the kernel), TFW_ESHAPE for
 * shapes that do not fit (channel mismatch, a kernel larger than the padded input, an empty
 * output). All ops are differentiable (backward, double backward and forward mode). */
#ifndef TENFLOWER_NN_FUNCTIONAL_CONV_H
#define TENFLOWER_NN_FUNCTIONAL_CONV_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* weight [O, C/groups, k...]; bias [O]. */
TFW_API tfw_tensor *tfw_conv1d(const tfw_tensor *input, const tfw_tensor *weight,
                               const tfw_tensor *bias, int64_t stride, int64_t padding,
                               int64_t dilation, int64_t groups);
TFW_API tfw_tensor *tfw_conv2d(const tfw_tensor *input, const tfw_tensor *weight,
                               const tfw_tensor *bias, const int64_t *stride,
                               const int64_t *padding, const int64_t *dilation, int64_t groups);
/* padding='same' (stride 1): total padding dilation*(k-1) per dim, the odd element on the
 * right, as PyTorch. padding='valid' is padding 0 in the functions above. */
TFW_API tfw_tensor *tfw_conv1d_same(const tfw_tensor *input, const tfw_tensor *weight,
                                    const tfw_tensor *bias, int64_t dilation, int64_t groups);
TFW_API tfw_tensor *tfw_conv2d_same(const tfw_tensor *input, const tfw_tensor *weight,
                                    const tfw_tensor *bias, const int64_t *dilation,
                                    int64_t groups);
/* weight [C, O/groups, k...]; bias [O]; output size (L-1)*stride - 2*padding +
 * dilation*(k-1) + output_padding + 1; output_padding < stride or < dilation. */
TFW_API tfw_tensor *tfw_conv_transpose1d(const tfw_tensor *input, const tfw_tensor *weight,
                                         const tfw_tensor *bias, int64_t stride, int64_t padding,
                                         int64_t output_padding, int64_t groups,
                                         int64_t dilation);
TFW_API tfw_tensor *tfw_conv_transpose2d(const tfw_tensor *input, const tfw_tensor *weight,
                                         const tfw_tensor *bias, const int64_t *stride,
                                         const int64_t *padding, const int64_t *output_padding,
                                         int64_t groups, const int64_t *dilation);

/* Max pooling; kernel_size must not be NULL; stride NULL (1-d: 0) = kernel_size. Returns the
 * values; *indices (if indices is non-NULL) receives int64 flat positions in the input's
 * spatial plane (a new reference), as return_indices=True. NaN propagates. */
TFW_API tfw_tensor *tfw_max_pool1d(const tfw_tensor *input, int64_t kernel_size, int64_t stride,
                                   int64_t padding, int64_t dilation, bool ceil_mode,
                                   tfw_tensor **indices);
TFW_API tfw_tensor *tfw_max_pool2d(const tfw_tensor *input, const int64_t *kernel_size,
                                   const int64_t *stride, const int64_t *padding,
                                   const int64_t *dilation, bool ceil_mode, tfw_tensor **indices);
/* Average pooling; divisor_override 0 = none. */
TFW_API tfw_tensor *tfw_avg_pool1d(const tfw_tensor *input, int64_t kernel_size, int64_t stride,
                                   int64_t padding, bool ceil_mode, bool count_include_pad);
TFW_API tfw_tensor *tfw_avg_pool2d(const tfw_tensor *input, const int64_t *kernel_size,
                                   const int64_t *stride, const int64_t *padding, bool ceil_mode,
                                   bool count_include_pad, int64_t divisor_override);
/* output_size (oh, ow), each >= 1. */
TFW_API tfw_tensor *tfw_adaptive_avg_pool2d(const tfw_tensor *input, const int64_t *output_size);

#ifdef __cplusplus
}
#endif

#endif
