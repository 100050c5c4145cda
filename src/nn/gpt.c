/* GPT: a GPT-2-style decoder-only language model built from the library's layers
 * (Embedding, TransformerEncoderLayer with norm_first and the causal mask, LayerNorm), and
 * its generation loop with one KV cache per block (include/tenflower/nn_gpt.h).
 *
 * It lives in the library, not in examples/, because three programs share it: the
 * char_gpt example, its test (which checks it against the same model in PyTorch and the
 * cached generation against the uncached one) and the char_gpt_adamw_step benchmark.
 *
 * Letters: B batch, T positions, C width (n_embd), V vocabulary, L layers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"
#include "tenflower/nn_functional_norm.h"
#include "tenflower/nn_gpt.h"

typedef struct {
  tfw_gpt_config cfg;
} gpt_impl;

static tfw_status gpt_module_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                     tfw_tensor **out);
static const tfw_module_vtable GPT = {"GPT", gpt_module_forward, tfw__module_free_impl};

#define CHILD(m, n) tfw_module_get_child(m, n)
#define PARAM(m, n) tfw_module_get_parameter(m, n)

tfw_gpt_config tfw_gpt_config_default(int64_t vocab_size) {
  return (tfw_gpt_config){.vocab_size = vocab_size, .context = 128, .n_layer = 4, .n_head = 4,
                          .n_embd = 256, .ff_dim = 0, .dropout = 0.1, .layer_norm_eps = 1e-5,
                          .tie_weights = true};
}

tfw_gpt_sampling tfw_gpt_sampling_default(void) {
  return (tfw_gpt_sampling){.temperature = 1.0, .top_k = 0, .seed = 0, .use_cache = true};
}

static const gpt_impl *gpt_of(const char *op, const tfw_module *m) {
  if (!m) {
    tfw__error(TFW_EVALUE, "%s: model is NULL", op);
    return NULL;
  }
  if (tfw_module_type(m) != GPT.type_name) {
    tfw__error(TFW_EVALUE, "%s: not a GPT module (%s)", op, tfw_module_type(m));
    return NULL;
  }
  return tfw_module_impl(m);
}

tfw_status tfw_gpt_get_config(const tfw_module *m, tfw_gpt_config *cfg) {
  const gpt_impl *g = gpt_of("gpt_get_config", m);
  if (!g) return tfw_last_status();
  if (!cfg) return tfw__error(TFW_EVALUE, "gpt_get_config: cfg is NULL");
  *cfg = g->cfg;
  return TFW_OK;
}

/* ---- construction ---------------------------------------------------------------------------- */

static tfw_status add_child(tfw_module *m, const char *name, tfw_module *c) {
  if (!c) return tfw_last_status();
  tfw_status st = tfw_module_register_module(m, name, c);
  tfw_module_release(c);
  return st;
}

/* GPT-2's init on every parameter: see the header. */
static tfw_status gpt_init(tfw_module *m, int64_t n_layer) {
  tfw_named_tensor *ps;
  int n;
  tfw_status st = tfw_module_named_parameters(m, &ps, &n);
  if (st) return st;
  const double std = 0.02, proj_std = 0.02 / sqrt(2.0 * (double)n_layer);
  bool prev = tfw_set_grad_enabled(false);
  for (int i = 0; i < n && !st; i++) {
    const char *name = ps[i].name;
    size_t len = strlen(name);
    bool is_bias = len >= 4 && !strcmp(name + len - 4, "bias");
    bool is_norm = strstr(name, "norm") != NULL;
    if (is_norm) st = is_bias ? tfw_init_zeros_(ps[i].tensor) : tfw_init_ones_(ps[i].tensor);
    else if (is_bias) st = tfw_init_zeros_(ps[i].tensor);
    else if (strstr(name, "out_proj.weight") || strstr(name, "linear2.weight"))
      st = tfw_init_normal_(ps[i].tensor, 0, proj_std);
    else st = tfw_init_normal_(ps[i].tensor, 0, std);
  }
  tfw_set_grad_enabled(prev);
  tfw_named_tensors_free(ps, n);
  return st;
}

tfw_module *tfw_gpt_new(const tfw_gpt_config *cfg) {
  if (!cfg) {
    tfw__error(TFW_EVALUE, "gpt_new: cfg is NULL");
    return NULL;
  }
  const tfw_gpt_config c = *cfg;
  const struct {
    const char *name;
    int64_t v;
  } sizes[] = {{"vocab_size", c.vocab_size}, {"context", c.context}, {"n_layer", c.n_layer},
               {"n_head", c.n_head}, {"n_embd", c.n_embd}};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    if (sizes[i].v < 1) {
      tfw__error(TFW_EVALUE, "gpt_new: %s must be >= 1, got %lld", sizes[i].name, (long long)sizes[i].v);
      return NULL;
    }
  if (c.n_embd % c.n_head) {
    tfw__error(TFW_EVALUE, "gpt_new: n_embd (%lld) must be a multiple of n_head (%lld)",
               (long long)c.n_embd, (long long)c.n_head);
    return NULL;
  }
  if (c.ff_dim < 0 || !(c.dropout >= 0 && c.dropout < 1) || !(c.layer_norm_eps > 0)) {
    tfw__error(TFW_EVALUE, "gpt_new: ff_dim (%lld) must be >= 0, dropout (%g) in [0, 1) and "
               "layer_norm_eps (%g) > 0", (long long)c.ff_dim, c.dropout, c.layer_norm_eps);
    return NULL;
  }
  gpt_impl *g;
  tfw_module *m = tfw__module_new_impl(&GPT, sizeof *g, (void **)&g);
  if (!m) return NULL;
  g->cfg = c;
  if (!g->cfg.ff_dim) g->cfg.ff_dim = 4 * c.n_embd;
  const int64_t C = c.n_embd;
  tfw_status st = add_child(m, "tok_emb", tfw_embedding_new(c.vocab_size, C, INT64_MIN, 0));
  if (!st) st = add_child(m, "pos_emb", tfw_embedding_new(c.context, C, INT64_MIN, 0));
  if (!st) st = add_child(m, "drop", tfw_dropout_new(c.dropout));
  tfw_module *blocks = st ? NULL : tfw_sequential_new(0, NULL);
  if (!st && !blocks) st = tfw_last_status();
  for (int64_t l = 0; l < c.n_layer && !st; l++) {
    tfw_module *b = tfw_transformer_encoder_layer_new(C, c.n_head, g->cfg.ff_dim, c.dropout,
                                                      "gelu", c.layer_norm_eps, true, true);
    st = b ? tfw_sequential_append(blocks, b) : tfw_last_status();
    tfw_module_release(b);
  }
  if (!st) st = add_child(m, "blocks", blocks), blocks = NULL;
  tfw_module_release(blocks);
  if (!st) st = add_child(m, "norm", tfw_layer_norm_new(1, &C, c.layer_norm_eps, true));
  if (!st && !c.tie_weights) st = add_child(m, "lm_head", tfw_linear_new(C, c.vocab_size, false));
  if (!st) st = gpt_init(m, c.n_layer);
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

/* ---- forward ------------------------------------------------------------------------------- */

static tfw_module *block(tfw_module *m, int64_t l) {
  char name[32];
  snprintf(name, sizeof name, "blocks.%lld", (long long)l);
  return CHILD(m, name);
}

/* tok_emb(idx) + pos_emb(p0 .. p0 + T - 1): [.., T, C] */
static tfw_tensor *embed(tfw_module *m, const tfw_tensor *idx, int64_t p0) {
  int64_t T = tfw_tensor_shape(idx)[tfw_tensor_ndim(idx) - 1];
  tfw_tensor *tok = tfw_embedding(idx, PARAM(m, "tok_emb.weight"), TFW_EMBEDDING_NO_PADDING, 0, 2);
  tfw_tensor *pos = tok ? tfw_narrow(PARAM(m, "pos_emb.weight"), 0, p0, T) : NULL;
  tfw_tensor *x = pos ? tfw_add(tok, pos) : NULL;
  tfw_release(tok), tfw_release(pos);
  return x;
}

/* norm(x), then the LM head: [.., C] -> [.., V] (consumes x) */
static tfw_tensor *head(tfw_module *m, tfw_tensor *x) {
  const gpt_impl *g = tfw_module_impl(m);
  tfw_tensor *h = x ? tfw_module_call(CHILD(m, "norm"), x) : NULL;
  tfw_release(x);
  if (!h) return NULL;
  tfw_tensor *y;
  if (g->cfg.tie_weights) {
    tfw_tensor *wt = tfw_transpose(PARAM(m, "tok_emb.weight"), 0, 1); /* [C, V], a view */
    y = wt ? tfw_matmul(h, wt) : NULL;
    tfw_release(wt);
  } else {
    y = tfw_module_call(CHILD(m, "lm_head"), h);
  }
  tfw_release(h);
  return y;
}

static tfw_status check_ids(const char *op, const gpt_impl *g, const tfw_tensor *idx) {
  if (tfw__check_tensor(op, "idx", idx)) return tfw_last_status();
  tfw_dtype dt = tfw_tensor_dtype(idx);
  if (dt != TFW_DTYPE_I64 && dt != TFW_DTYPE_I32)
    return tfw__error(TFW_EDTYPE, "%s: idx must be int64 or int32 token ids, got %s", op,
                      tfw_dtype_name(dt));
  int nd = tfw_tensor_ndim(idx);
  char b[TFW__SHAPE_BUF];
  if ((nd != 1 && nd != 2) || tfw_tensor_shape(idx)[nd - 1] < 1 ||
      tfw_tensor_shape(idx)[nd - 1] > g->cfg.context)
    return tfw__error(TFW_ESHAPE, "%s: idx of shape %s, expected [B, T] or [T] with 1 <= T <= "
                      "context (%lld)", op, tfw__shape_str(b, sizeof b, nd, tfw_tensor_shape(idx)),
                      (long long)g->cfg.context);
  return TFW_OK;
}

tfw_tensor *tfw_gpt_forward(tfw_module *m, const tfw_tensor *idx) {
  const gpt_impl *g = gpt_of("gpt_forward", m);
  if (!g || check_ids("gpt_forward", g, idx)) return NULL;
  tfw_tensor *x = embed(m, idx, 0);
  if (x && g->cfg.dropout > 0) {
    tfw_tensor *d = tfw_module_call(CHILD(m, "drop"), x);
    tfw_release(x);
    x = d;
  }
  /* [T] ids give [T, C]: the encoder layer reads that as unbatched */
  for (int64_t l = 0; l < g->cfg.n_layer && x; l++) {
    tfw_tensor *y = NULL;
    tfw_transformer_encoder_layer_forward(block(m, l), x, NULL, NULL, true, &y);
    tfw_release(x);
    x = y;
  }
  return head(m, x);
}

static tfw_status gpt_module_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                     tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "GPT: takes 1 input and gives 1 output");
  out[0] = tfw_gpt_forward(m, in[0]);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* ---- generation ------------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int cmp_desc(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x < y) - (x > y);
}

/* Next token from logits[0 .. V): greedy, or temperature + top-k sampling. work: V floats. */
static int64_t sample_next(const float *logits, int64_t V, const tfw_gpt_sampling *s,
                           uint64_t *rng, float *work) {
  int64_t best = 0;
  for (int64_t v = 1; v < V; v++)
    if (logits[v] > logits[best]) best = v;
  if (s->temperature <= 0) return best;
  float thr = -INFINITY; /* keep logits >= thr (ties at the k-th value are all kept) */
  if (s->top_k > 0 && s->top_k < V) {
    memcpy(work, logits, (size_t)V * sizeof *work);
    qsort(work, (size_t)V, sizeof *work, cmp_desc);
    thr = work[s->top_k - 1];
  }
  double total = 0;
  for (int64_t v = 0; v < V; v++) {
    double p = logits[v] >= thr ? exp(((double)logits[v] - logits[best]) / s->temperature) : 0;
    work[v] = (float)p;
    total += p;
  }
  double u = (double)(splitmix64(rng) >> 11) * 0x1.0p-53 * total, acc = 0;
  for (int64_t v = 0; v < V; v++) {
    acc += work[v];
    if (work[v] > 0 && u < acc) return v;
  }
  return best; /* rounding at the top end */
}

/* Logits of the last of the T tokens tok[0 .. T) into last[0 .. V). Cached: the tokens are
 * positions cache_len .. cache_len + T - 1 of the caches; else a full causal forward. */
static tfw_status last_logits(tfw_module *m, tfw_kv_cache **caches, const int64_t *tok,
                              int64_t T, float *last) {
  const gpt_impl *g = tfw_module_impl(m);
  tfw_tensor *idx = tfw_from_data(TFW_DTYPE_I64, 2, (int64_t[]){1, T}, tok), *x = NULL;
  if (idx && caches) {
    x = embed(m, idx, tfw_kv_cache_length(caches[0]));
    for (int64_t l = 0; l < g->cfg.n_layer && x; l++) {
      tfw_tensor *y = NULL;
      tfw_transformer_encoder_layer_forward_cached(block(m, l), x, caches[l], &y);
      tfw_release(x);
      x = y;
    }
    tfw_tensor *xl = x ? tfw_narrow(x, 1, T - 1, 1) : NULL; /* only the last row is needed */
    tfw_release(x);
    x = head(m, xl);
  } else if (idx) {
    tfw_tensor *y = tfw_gpt_forward(m, idx);
    x = y ? tfw_narrow(y, 1, T - 1, 1) : NULL;
    tfw_release(y);
  }
  tfw_release(idx);
  tfw_tensor *c = x ? tfw_contiguous(x) : NULL;
  tfw_release(x);
  if (!c) return tfw_last_status();
  memcpy(last, tfw_tensor_data(c), (size_t)g->cfg.vocab_size * sizeof *last);
  tfw_release(c);
  return TFW_OK;
}

tfw_status tfw_gpt_generate(tfw_module *m, int64_t n_prompt, const int64_t *prompt, int64_t n_new,
                            const tfw_gpt_sampling *sampling, int64_t *out) {
  const char *op = "gpt_generate";
  const gpt_impl *g = gpt_of(op, m);
  if (!g) return tfw_last_status();
  if (!prompt || !sampling || (n_new > 0 && !out))
    return tfw__error(TFW_EVALUE, "%s: NULL prompt, sampling or out", op);
  if (n_prompt < 1 || n_new < 0)
    return tfw__error(TFW_EVALUE, "%s: n_prompt (%lld) must be >= 1 and n_new (%lld) >= 0", op,
                      (long long)n_prompt, (long long)n_new);
  const int64_t V = g->cfg.vocab_size, ctx = g->cfg.context, L = g->cfg.n_layer;
  for (int64_t i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || prompt[i] >= V)
      return tfw__error(TFW_EINDEX, "%s: prompt[%lld] = %lld is outside [0, %lld)", op,
                        (long long)i, (long long)prompt[i], (long long)V);
  if (!n_new) return TFW_OK;
  int64_t *seq = malloc((size_t)(n_prompt + n_new) * sizeof *seq);
  float *logits = malloc((size_t)V * sizeof *logits), *work = malloc((size_t)V * sizeof *work);
  tfw_kv_cache **caches = sampling->use_cache ? calloc((size_t)L, sizeof *caches) : NULL;
  tfw_status st = seq && logits && work && (caches || !sampling->use_cache)
                      ? TFW_OK : tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  for (int64_t l = 0; l < L && caches && !st; l++)
    if (!(caches[l] = tfw_kv_cache_new(block(m, l), 1, ctx))) st = tfw_last_status();
  bool was_training = tfw_module_is_training(m), prev_grad = tfw_set_grad_enabled(false);
  tfw_module_train(m, false);
  uint64_t rng = sampling->seed;
  int64_t n = n_prompt, fed = 0; /* seq[0, n) known; with the cache, seq[fed, n) not yet fed */
  if (!st) memcpy(seq, prompt, (size_t)n_prompt * sizeof *seq);
  if (caches && n > ctx) fed = n - ctx; /* only the last context tokens are seen */
  for (int64_t i = 0; i < n_new && !st; i++) {
    if (caches) {
      if (tfw_kv_cache_length(caches[0]) + (n - fed) > ctx) { /* full: rebuild from the tail */
        for (int64_t l = 0; l < L; l++) tfw_kv_cache_reset(caches[l]);
        int64_t keep = ctx / 2 > 0 ? ctx / 2 : 1;
        fed = n - (keep < n ? keep : n);
      }
      st = last_logits(m, caches, seq + fed, n - fed, logits);
      fed = n;
    } else {
      int64_t w = n < ctx ? n : ctx;
      st = last_logits(m, NULL, seq + n - w, w, logits);
    }
    if (!st) seq[n++] = out[i] = sample_next(logits, V, sampling, &rng, work);
  }
  tfw_module_train(m, was_training);
  tfw_set_grad_enabled(prev_grad);
  for (int64_t l = 0; l < L && caches; l++) tfw_kv_cache_free(caches[l]);
  free(caches), free(seq), free(logits), free(work);
  return st;
}
