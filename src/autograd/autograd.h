/* tenflower internal autograd: per-tensor autograd state, graph nodes, the recorder called
 * by the op dispatcher, and helpers for writing backward rules. */
#ifndef TFW_AUTOGRAD_INTERNAL_H
#define TFW_AUTOGRAD_INTERNAL_H

#include "ops/registry.h"

typedef struct tfw__hook {
  tfw_grad_hook_fn fn;
  void *ctx;
  struct tfw__hook *next;
} tfw__hook;

/* Autograd fields of a tensor (tfw_tensor.autograd), allocated on first use. */
typedef struct tfw__ag {
  bool requires_grad;
  tfw_tensor *grad;   /* leaves: the accumulated gradient */
  tfw__node *grad_fn; /* non-leaves: the node that produced the tensor (owned reference) */
  int output_nr;      /* which output of grad_fn */
  tfw__hook *hooks;   /* leaves only; non-leaf hooks live on the node */
  tfw_tensor *tangent; /* forward mode: the tangent (dual part), owned; NULL = none */
} tfw__ag;

/* Where an input's gradient goes: into another node's output slot, or into a leaf. */
typedef struct tfw__edge {
  tfw__node *node; /* owned */
  int output_nr;
  tfw_tensor *leaf; /* owned; set for leaves that require grad */
} tfw__edge;

struct tfw__node {
  _Atomic int64_t refcount;
  const tfw__op_def *op;
  tfw__call call;                  /* attrs; call.in[i] == saved[i] */
  tfw_tensor *saved[TFW__MAX_IN];  /* the op's inputs, owned until released */
  int64_t saved_version[TFW__MAX_IN];
  bool released;                   /* saved tensors freed (backward ran without retain_graph) */
  tfw__edge next[TFW__MAX_IN];
  tfw__meta out_meta[TFW__MAX_OUT];
  tfw__hook *out_hooks[TFW__MAX_OUT];
  uint64_t seq;                    /* creation order: later nodes run first in backward */
  /* Custom nodes (tfw_checkpoint): op is a def outside the registry whose backward reads ctx;
   * ctx_free (may be NULL) frees ctx when the node dies. NULL for registry ops. */
  void *ctx;
  void (*ctx_free)(void *ctx);
};

/* The saved input i of a node (borrowed). */
static inline const tfw_tensor *tfw__node_input(const tfw__node *n, int i) { return n->saved[i]; }

tfw__ag *tfw__ag_get(const tfw_tensor *t);   /* NULL if t has no autograd state */
bool tfw__requires_grad(const tfw_tensor *t);
/* Called by the dispatcher after a successful kernel: records a node when grad mode is on,
 * the op is differentiable and an input requires grad. */
tfw_status tfw__autograd_record(const tfw__call *c, tfw_tensor **out);
/* tfw_checkpoint whose ctx is owned: ctx_free(ctx) (may be NULL) runs exactly once, when the
 * recorded node dies, or before returning when nothing was recorded or on failure (used by
 * the Python bindings to hold the Python callable). */
tfw_status tfw__checkpoint_ex(tfw_fn fn, void *ctx, void (*ctx_free)(void *ctx), int n_in,
                              tfw_tensor *const *inputs, int n_out, tfw_tensor **outputs);
/* Called by the dispatcher after a successful kernel: propagates forward-mode tangents
 * through the op's JVP rule when an input carries one. */
tfw_status tfw__forward_ad_record(const tfw__call *c, tfw_tensor **out);
/* The tangent of t, borrowed (NULL: none). */
tfw_tensor *tfw__tangent(const tfw_tensor *t);
/* Bumps the version counter of t's storage (in-place writes). */
void tfw__bump_version(tfw_tensor *t);
/* Fails with TFW_ESTATE when dst requires grad and grad mode is on (in-place writes into
 * tensors that autograd tracks are not supported). */
tfw_status tfw__check_inplace(const char *op, const tfw_tensor *dst);

/* ---- helpers for backward rules (all built from registered ops) ------------------------ */
/* Sums g over the dims that were broadcast to reach g's shape from (ndim, shape), and casts
 * to dt: the gradient of an input that was broadcast. Returns a new reference. */
tfw_tensor *tfw__sum_to(const tfw_tensor *g, int ndim, const int64_t *shape, tfw_dtype dt);
/* tfw__sum_to to the shape and dtype of input i of the node. */
tfw_tensor *tfw__grad_for_input(const tfw__node *n, int i, const tfw_tensor *g);
/* True if input i of the node gets a gradient (floating and requires grad). */
bool tfw__needs_grad(const tfw__node *n, int i);


/* ---- anomaly mode (anomaly.c) ------------------------------------------------------------ */
/* Runs the node's backward rule; with anomaly mode on, fails (TFW_EVALUE) when a gradient it
 * returns holds NaN/Inf. The engine calls every rule through this. */
tfw_status tfw__run_backward_rule(const tfw__node *n, tfw_tensor *const *gout, tfw_tensor **gin);
/* With anomaly mode on, fails (TFW_EVALUE) when an op's floating outputs hold NaN (Inf) and its
 * inputs held none; not checked inside backward rules. Called by tfw__autograd_record. */
tfw_status tfw__anomaly_check_forward(const tfw__call *c, tfw_tensor **out);

/* ---- helpers for JVP rules --------------------------------------------------------------- */
/* t broadcast to out's shape and cast to out's dtype. */
tfw_tensor *tfw__jvp_fit(const tfw_tensor *t, const tfw_tensor *out);
/* JVP of an op linear in its inputs: the op applied to the tangents (zeros where none). */
tfw_status tfw__jvp_linear(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                           tfw_tensor **tout);
/* acc + t, either may be NULL; consumes both. */
tfw_tensor *tfw__jvp_sum2(tfw_tensor *acc, tfw_tensor *t);

#endif
