/* tenflower — automatic mixed precision (autocast).
 *
 * Inside an autocast region, ops run in the precision that suits them, whatever the dtype
 * of their float32 inputs:
 *   - lower precision (the region's dtype, bfloat16 or float16): matmul, bmm, addmm,
 *     baddbmm, outer, dot, einsum, conv1d, conv2d, conv_transpose1d, conv_transpose2d
 *     (float32 inputs are cast down; float64 inputs are left alone, as PyTorch does);
 *   - float32: reductions (sum mean var std prod norm logsumexp cumsum cumprod amax amin),
 *     softmax, log_softmax, layer_norm, rms_norm and every loss (float16/bfloat16 inputs
 *     are cast up);
 *   - every other op runs in the dtype its inputs promote to.
 * The casts are ordinary registered ops, so gradients flow back to float32 parameters in
 * float32. Backward passes run with autocast off (as in PyTorch, call tfw_backward after
 * leaving the region; a backward started inside one turns it off for its duration).
 * The state is per thread. Pair autocast with a loss scaler for float16 (see optim.h). */
#ifndef TENFLOWER_AMP_H
#define TENFLOWER_AMP_H

#include <stdbool.h>

#include "dtype.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfw_autocast_state {
  bool enabled;
  tfw_dtype dtype; /* TFW_DTYPE_BF16 or TFW_DTYPE_F16 */
} tfw_autocast_state;

/* Turns autocast on (dtype TFW_DTYPE_BF16 or TFW_DTYPE_F16) or off for this thread and writes the
 * previous state to *prev (may be NULL) so that it can be restored. TFW_EVALUE for another
 * dtype. */
TFW_API tfw_status tfw_autocast_set(bool enabled, tfw_dtype dtype, tfw_autocast_state *prev);
/* Restores a state returned by tfw_autocast_set. */
TFW_API void tfw_autocast_restore(tfw_autocast_state prev);
TFW_API tfw_autocast_state tfw_autocast_get(void);

#ifdef __cplusplus
}
#endif

#endif
