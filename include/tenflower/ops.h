/* tenflower — operations. Every function here is one entry of the op registry
 * (src/ops/ops.def) or a thin composite of entries. All return a new reference (or NULL
 * and set tfw_last_error()); inputs are borrowed. Dimensions may be negative (counted from
 * the end). Binary ops broadcast like NumPy and promote dtypes like PyTorch
 * (docs/dtypes.md). */
#ifndef TENFLOWER_OPS_H
#define TENFLOWER_OPS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- views (share storage with the input; never copy) ---------------------------------- */
/* Errors: TFW_EVALUE for a NULL tensor or list, TFW_EINDEX for a dim out of range,
 * TFW_ESHAPE for sizes that do not fit the input (the message names both shapes). */
/* reshape/view: one entry of shape may be -1. view fails with TFW_ESHAPE when the strides
 * do not allow a view (PyTorch's rule: each run of input dims that the new shape merges
 * must be contiguous); reshape returns a contiguous copy in that case. */
TFW_API tfw_tensor *tfw_view(const tfw_tensor *t, int ndim, const int64_t *shape);
TFW_API tfw_tensor *tfw_reshape(const tfw_tensor *t, int ndim, const int64_t *shape);
TFW_API tfw_tensor *tfw_transpose(const tfw_tensor *t, int dim0, int dim1);
TFW_API tfw_tensor *tfw_permute(const tfw_tensor *t, int ndim, const int *dims);
/* Elements start, start+step, ... < end along dim; start/end clamp like Python slices
 * (negative values count from the end); step > 0, else TFW_EVALUE. */
TFW_API tfw_tensor *tfw_slice(const tfw_tensor *t, int dim, int64_t start, int64_t end,
                              int64_t step);
/* start may be negative (from the end); start + length <= size, else TFW_EINDEX. */
TFW_API tfw_tensor *tfw_narrow(const tfw_tensor *t, int dim, int64_t start, int64_t length);
/* Drops dim; index may be negative; out of range is TFW_EINDEX. */
TFW_API tfw_tensor *tfw_select(const tfw_tensor *t, int dim, int64_t index);
/* -1 keeps a size; only size-1 dims expand (stride 0); new leading dims may be added. */
TFW_API tfw_tensor *tfw_expand(const tfw_tensor *t, int ndim, const int64_t *shape);
/* Drops dim if its size is 1; otherwise returns an unchanged view (like PyTorch). */
TFW_API tfw_tensor *tfw_squeeze(const tfw_tensor *t, int dim);
TFW_API tfw_tensor *tfw_squeeze_all(const tfw_tensor *t);
TFW_API tfw_tensor *tfw_unsqueeze(const tfw_tensor *t, int dim);
/* Merges dims start_dim..end_dim; a view when the strides allow, else a copy (composite of
 * tfw_reshape, not a registry entry). A 0-d tensor gives shape [1]. */
TFW_API tfw_tensor *tfw_flatten(const tfw_tensor *t, int start_dim, int end_dim);
/* Splits dim into sizes (n >= 1, one entry may be -1; the product must equal the size). */
TFW_API tfw_tensor *tfw_unflatten(const tfw_tensor *t, int dim, int n, const int64_t *sizes);

/* ---- elementwise ------------------------------------------------------------------------- */
TFW_API tfw_tensor *tfw_add(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_sub(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_mul(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_div(const tfw_tensor *a, const tfw_tensor *b); /* true division */
TFW_API tfw_tensor *tfw_floor_div(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_remainder(const tfw_tensor *a, const tfw_tensor *b); /* sign of b */
TFW_API tfw_tensor *tfw_pow(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_minimum(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_maximum(const tfw_tensor *a, const tfw_tensor *b);
/* Scalar forms: the scalar is a "wrapped number" for type promotion (int tensor + 2.5 is
 * float32, float16 tensor * 2.0 stays float16). */
TFW_API tfw_tensor *tfw_add_scalar(const tfw_tensor *a, double b);
TFW_API tfw_tensor *tfw_mul_scalar(const tfw_tensor *a, double b);
TFW_API tfw_tensor *tfw_pow_scalar(const tfw_tensor *a, double b);
TFW_API tfw_tensor *tfw_neg(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_abs(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_sign(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_sqrt(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_rsqrt(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_exp(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_exp2(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_log(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_log2(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_log1p(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_expm1(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_sin(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_cos(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_tan(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_tanh(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_sigmoid(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_erf(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_relu(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_gelu(const tfw_tensor *a); /* exact (erf) form */
TFW_API tfw_tensor *tfw_clamp(const tfw_tensor *a, double lo, double hi); /* NaN bound = none */
/* Comparisons return bool tensors. */
TFW_API tfw_tensor *tfw_eq(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_ne(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_lt(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_le(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_gt(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_ge(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_logical_and(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_logical_or(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_logical_xor(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_logical_not(const tfw_tensor *a);
/* Bitwise ops: integral and bool dtypes only. */
TFW_API tfw_tensor *tfw_bitwise_and(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_bitwise_or(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_bitwise_xor(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_bitwise_not(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_where(const tfw_tensor *cond, const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_masked_fill(const tfw_tensor *a, const tfw_tensor *mask, double value);
TFW_API tfw_tensor *tfw_isnan(const tfw_tensor *a);
TFW_API tfw_tensor *tfw_isinf(const tfw_tensor *a);
/* NaN -> nan, +inf -> posinf, -inf -> neginf. */
TFW_API tfw_tensor *tfw_nan_to_num(const tfw_tensor *a, double nan, double posinf, double neginf);

/* ---- reductions -------------------------------------------------------------------------- */
/* dims: ndims entries; ndims == 0 (dims may be NULL) reduces over all dimensions. Integer and
 * bool sums accumulate in int64 (like PyTorch); f16/bf16 accumulate in f32. */
TFW_API tfw_tensor *tfw_sum(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
TFW_API tfw_tensor *tfw_mean(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
/* correction: 1 = unbiased (Bessel), 0 = population. */
TFW_API tfw_tensor *tfw_var(const tfw_tensor *t, int ndims, const int *dims, int64_t correction,
                            bool keepdim);
TFW_API tfw_tensor *tfw_std(const tfw_tensor *t, int ndims, const int *dims, int64_t correction,
                            bool keepdim);
TFW_API tfw_tensor *tfw_prod(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
TFW_API tfw_tensor *tfw_amax(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
TFW_API tfw_tensor *tfw_amin(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
TFW_API tfw_tensor *tfw_logsumexp(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
/* ord: 1, 2, INFINITY (max |x|), or 0 meaning Frobenius (= 2 over the given dims). */
TFW_API tfw_tensor *tfw_norm(const tfw_tensor *t, double ord, int ndims, const int *dims,
                             bool keepdim);
TFW_API tfw_tensor *tfw_all(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
TFW_API tfw_tensor *tfw_any(const tfw_tensor *t, int ndims, const int *dims, bool keepdim);
/* Index of the first max/min along dim (int64). */
TFW_API tfw_tensor *tfw_argmax(const tfw_tensor *t, int dim, bool keepdim);
TFW_API tfw_tensor *tfw_argmin(const tfw_tensor *t, int dim, bool keepdim);
/* Values and indices of max/min along dim; either out pointer may be NULL. */
TFW_API tfw_status tfw_max_dim(const tfw_tensor *t, int dim, bool keepdim, tfw_tensor **values,
                               tfw_tensor **indices);
TFW_API tfw_status tfw_min_dim(const tfw_tensor *t, int dim, bool keepdim, tfw_tensor **values,
                               tfw_tensor **indices);
TFW_API tfw_tensor *tfw_max(const tfw_tensor *t); /* over all elements, 0-d */
TFW_API tfw_tensor *tfw_min(const tfw_tensor *t);
TFW_API tfw_tensor *tfw_cumsum(const tfw_tensor *t, int dim);
TFW_API tfw_tensor *tfw_cumprod(const tfw_tensor *t, int dim);
TFW_API tfw_tensor *tfw_softmax(const tfw_tensor *t, int dim);
TFW_API tfw_tensor *tfw_log_softmax(const tfw_tensor *t, int dim);

/* ---- shape ops (results are new contiguous tensors) ---------------------------------------- */
/* Any number n >= 1 of tensors; dtypes promote like PyTorch. cat: all sizes but dim must
 * match (TFW_ESHAPE names the tensor); 1-d empty tensors are skipped. stack: equal shapes,
 * new dim in [-ndim-1, ndim]. */
TFW_API tfw_tensor *tfw_cat(int n, tfw_tensor *const *ts, int dim);
TFW_API tfw_tensor *tfw_stack(int n, tfw_tensor *const *ts, int dim);
/* split into pieces of split_size (the last may be smaller) / into chunks of
 * ceil(size / chunks) (so fewer than chunks pieces may come back, like torch.chunk); the
 * pieces are views (composites of tfw_narrow). *out receives an array of *count tensors,
 * freed with tfw_tensor_list_free(); on error *out is NULL and *count 0. */
TFW_API tfw_status tfw_split(const tfw_tensor *t, int64_t split_size, int dim, tfw_tensor ***out,
                             int *count);
TFW_API tfw_status tfw_chunk(const tfw_tensor *t, int chunks, int dim, tfw_tensor ***out,
                             int *count);
TFW_API void tfw_tensor_list_free(tfw_tensor **list, int count); /* releases each, frees list */
typedef enum tfw_pad_mode {
  TFW_PAD_CONSTANT,
  TFW_PAD_REFLECT,
  TFW_PAD_REPLICATE
} tfw_pad_mode;
/* pads: 2*npairs entries (npairs <= ndim), (before, after) for the last dim first, as
 * torch.nn.functional.pad. Negative pads crop (constant mode only). Reflect needs every pad
 * < the dim's size and replicate a non-empty dim, else TFW_EVALUE. */
TFW_API tfw_tensor *tfw_pad(const tfw_tensor *t, int npairs, const int64_t *pads,
                            tfw_pad_mode mode, double value);
TFW_API tfw_tensor *tfw_flip(const tfw_tensor *t, int ndims, const int *dims);
TFW_API tfw_tensor *tfw_roll(const tfw_tensor *t, int64_t shift, int dim); /* out[i+shift] = t[i] */
TFW_API tfw_tensor *tfw_repeat(const tfw_tensor *t, int n, const int64_t *repeats); /* torch.Tensor.repeat */
TFW_API tfw_tensor *tfw_tile(const tfw_tensor *t, int n, const int64_t *reps);      /* torch.tile */
/* On the last two dims (batched over the others; ndim >= 2): tril keeps j <= i + diagonal,
 * triu keeps j >= i + diagonal, and zeros the rest. */
TFW_API tfw_tensor *tfw_tril(const tfw_tensor *t, int64_t diagonal);
TFW_API tfw_tensor *tfw_triu(const tfw_tensor *t, int64_t diagonal);

/* ---- indexing ------------------------------------------------------------------------------
 * Index tensors are int64 or int32 (else TFW_EDTYPE). Index VALUES must lie in [0, size) of the
 * indexed dimension, as in PyTorch's gather/scatter/index_select: a negative or too large value
 * is TFW_EINDEX naming the value and its position, checked before anything is written. dim may
 * be negative. Shapes follow PyTorch (TFW_ESHAPE otherwise). scatter/scatter_add/index_add are
 * functional: they return a modified copy of t; src is cast to t's dtype. */
/* index: 0-d or 1-d; out = t with size index.numel() at dim. */
TFW_API tfw_tensor *tfw_index_select(const tfw_tensor *t, int dim, const tfw_tensor *index);
/* index has t's ndim and index.size(d) <= t.size(d) for d != dim; out has index's shape. */
TFW_API tfw_tensor *tfw_gather(const tfw_tensor *t, int dim, const tfw_tensor *index);
/* Repeated indices: the last src value in index order wins. index.size(d) <= src.size(d) for
 * every d and <= t.size(d) for d != dim. */
TFW_API tfw_tensor *tfw_scatter(const tfw_tensor *t, int dim, const tfw_tensor *index,
                                const tfw_tensor *src);
/* Sums in index order: bit-identical for any thread count. bool adds are logical or. */
TFW_API tfw_tensor *tfw_scatter_add(const tfw_tensor *t, int dim, const tfw_tensor *index,
                                    const tfw_tensor *src);
/* index: 0-d or 1-d of n entries; src = t's shape with size n at dim. */
TFW_API tfw_tensor *tfw_index_add(const tfw_tensor *t, int dim, const tfw_tensor *index,
                                  const tfw_tensor *src);
/* t and index have the same ndim and broadcast on the dims other than dim. */
TFW_API tfw_tensor *tfw_take_along_dim(const tfw_tensor *t, const tfw_tensor *index, int dim);
/* mask: bool, broadcast with t; 1-d result in row-major order of the broadcast shape. */
TFW_API tfw_tensor *tfw_masked_select(const tfw_tensor *t, const tfw_tensor *mask);
TFW_API tfw_tensor *tfw_nonzero(const tfw_tensor *t); /* int64 [count, ndim]; NaN is nonzero */
/* Stable sort along dim (equal elements keep their order, also when descending); NaN sorts
 * as the largest value; -0.0 and 0.0 are equal. values/indices (int64) may each be NULL. */
TFW_API tfw_status tfw_sort(const tfw_tensor *t, int dim, bool descending, tfw_tensor **values,
                            tfw_tensor **indices);
TFW_API tfw_tensor *tfw_argsort(const tfw_tensor *t, int dim, bool descending); /* stable */
/* The k largest (or smallest) along dim, 0 <= k <= size (else TFW_EINDEX); NaN is the largest;
 * among equal values the lower index comes first. sorted: best first; otherwise the same k
 * elements in ascending index order. values/indices (int64) may each be NULL. */
TFW_API tfw_status tfw_topk(const tfw_tensor *t, int64_t k, int dim, bool largest, bool sorted,
                            tfw_tensor **values, tfw_tensor **indices);

/* ---- linear algebra ------------------------------------------------------------------------ */
/* numpy.matmul semantics: 1-d operands are promoted and the added dim removed; batch dims
 * broadcast. */
TFW_API tfw_tensor *tfw_matmul(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_bmm(const tfw_tensor *a, const tfw_tensor *b); /* [B,n,k] x [B,k,m] */
/* beta * c + alpha * (a @ b); a, b 2-d, c broadcasts to [n, m]. */
TFW_API tfw_tensor *tfw_addmm(const tfw_tensor *c, const tfw_tensor *a, const tfw_tensor *b,
                              double beta, double alpha);
TFW_API tfw_tensor *tfw_baddbmm(const tfw_tensor *c, const tfw_tensor *a, const tfw_tensor *b,
                                double beta, double alpha);
TFW_API tfw_tensor *tfw_outer(const tfw_tensor *a, const tfw_tensor *b);
TFW_API tfw_tensor *tfw_dot(const tfw_tensor *a, const tfw_tensor *b);
/* einsum("ij,jk->ik", ...): explicit or implicit output, repeated indices (traces,
 * diagonals), "..." broadcasting. */
TFW_API tfw_tensor *tfw_einsum(const char *equation, int n, tfw_tensor *const *operands);

#ifdef __cplusplus
}
#endif
#endif
