/* Internal interface between the elementwise ops (elementwise.c) and their typed inner
 * loops (ew_loops.c, ew_math.c). */
#ifndef TFW_ELEMENTWISE_H
#define TFW_ELEMENTWISE_H

#include "core/iter.h"
#include "ops/registry.h"

/* Typed inner loop of op id for compute dtype ct; NULL if the op has none for ct. Binary
 * loops see (out, a, b); unary loops (out, a); where (out, cond, a, b); masked_fill
 * (out, a, mask). Comparison, logical, isnan/isinf loops write bool. */
tfw__loop_fn tfw__ew_binary_loop(tfw__op_id id, tfw_dtype ct);
tfw__loop_fn tfw__ew_unary_loop(tfw__op_id id, tfw_dtype ct);
tfw__loop_fn tfw__ew_float_unary_loop(tfw__op_id id, tfw_dtype ct);
tfw__loop_fn tfw__ew_where_loop(tfw_dtype ct);
tfw__loop_fn tfw__ew_masked_fill_loop(tfw_dtype ct);

/* Context of the loops that take scalar attributes (clamp, nan_to_num, masked_fill). */
typedef struct tfw__ew_scalars {
  double f[3];
} tfw__ew_scalars;

/* PyTorch's result_type over tensors: dimensioned tensors win over 0-d tensors, which win
 * over wrapped numbers, unless the lower tier has a higher category (bool < int < float). */
tfw_dtype tfw__result_type(int n, const tfw_tensor *const *ts);

/* Integer operands whose division by zero must be reported (floor_div, remainder). */
bool tfw__ew_has_zero(const tfw_tensor *t);

/* The hot loops are compiled three times and the best is picked at load time. */
#define TFW__CLONES TFW_CLONES

#endif
