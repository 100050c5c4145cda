/* Internal helpers shared by the built-in layers. */
#ifndef TFW_NN_INTERNAL_H
#define TFW_NN_INTERNAL_H

#include "core/core.h"
#include "tenflower/nn.h"
#include "tenflower/nn_attention.h"

/* A new module whose implementation is a zeroed, malloc'd block of impl_size bytes, stored in
 * *impl; vt->destroy must free it (tfw__module_free_impl does). NULL with TFW_ENOMEM set
 * naming the type on failure. */
tfw_module *tfw__module_new_impl(const tfw_module_vtable *vt, size_t impl_size, void **impl);
/* The destroy function for such blocks. */
void tfw__module_free_impl(void *impl);

/* ---- MultiheadAttention internals shared with the KV-cache forward (attention.c) ---------- */
typedef struct {
  int64_t E, H;
  bool batch_first;
  double rope_base; /* 0: no RoPE */
} tfw__mha_info;
/* false (info untouched) when m is not a MultiheadAttention. */
bool tfw__mha_info_get(const tfw_module *m, tfw__mha_info *info);
/* x in m's layout ([L, N, E], batch_first [N, L, E], unbatched [L, E], checked by the caller)
 * -> in-projection `which` (0 query, 1 key, 2 value) split in heads: [N, H, L, hd]. */
tfw_tensor *tfw__mha_heads(const tfw_module *m, const tfw_tensor *x, int which);
/* o [N, H, L, hd] (consumed) -> merged heads, out_proj, back to the layout of an input of
 * rank nd. NULL (error set) on failure. */
tfw_tensor *tfw__mha_output(tfw_module *m, tfw_tensor *o, int nd);
/* Replaces *h [.., L, hd] by its RoPE rotation with positions pos0 .. pos0 + L - 1. */
tfw_status tfw__mha_rope_(tfw_tensor **h, int64_t pos0, double base);
/* The sdpa mask ([N or 1, H or 1, L, S], bool true = keep, or float; *out NULL when neither
 * mask is given) from PyTorch's key_padding_mask [N, S] and attn_mask [L, S] / [N*H, L, S]. */
tfw_status tfw__mha_merge_masks(const char *op, const tfw_tensor *kpm, const tfw_tensor *am,
                                int64_t N, int64_t H, int64_t L, int64_t S, tfw_dtype dt,
                                tfw_tensor **out);
/* Cross-attention of mha (query in its layout, T positions starting at pos0 for RoPE) against
 * memory, whose projected keys/values [N, H, S, hd] are computed on the first call after
 * tfw_kv_cache_new / tfw_kv_cache_reset and kept in cache (kv_cache.c). key_padding_mask as
 * MultiheadAttention's (may be NULL). Runs without recording (the caller disables grad). */
tfw_status tfw__mha_cross_cached(tfw_module *mha, const tfw_tensor *query, const tfw_tensor *memory,
                                 const tfw_tensor *key_padding_mask, tfw_kv_cache *cache,
                                 int64_t pos0, tfw_tensor **out);
/* Rolls the cache back to len positions (len <= its length): a failed layer step undoes the
 * self-attention append it made. */
void tfw__kv_cache_set_length(tfw_kv_cache *cache, int64_t len);
#endif
