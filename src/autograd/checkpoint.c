/* Activation checkpointing (tfw_checkpoint): trade compute for memory.
 *
 * The forward runs fn with grad mode off, so none of fn's intermediate tensors is saved,
 * and records a single node over fn's inputs. That node is a *custom node*: its op is a
 * def outside the registry (one per output count, "checkpoint") whose backward reads the
 * node's ctx: fn, the caller's ctx and the RNG state at the forward. The backward
 *   1. makes fresh leaves sharing the saved inputs' data (requiring grad where the engine
 *      needs a gradient),
 *   2. sets the global RNG state back to the forward's and re-runs fn with grad mode on
 *      (random ops draw the same numbers, so dropout masks match), then restores the RNG,
 *   3. checks that the recomputed graph ends at those leaves (a tensor that requires grad
 *      read from ctx would otherwise silently get no gradient, or pull the outer graph in),
 *   4. backpropagates the output gradients through it with tfw_grad into the leaves.
 * The same rules run on the same values in the same order as without checkpointing, so
 * gradients are bit-identical. Like PyTorch's reentrant checkpoint, double backward
 * (create_graph) through it is not supported: the recomputed graph starts at detached
 * leaves, so gradients could not carry their dependence on the inputs. */
#include "autograd/autograd.h"

typedef struct ckpt {
  tfw_fn fn;
  void *ctx;
  void (*ctx_free)(void *ctx); /* tfw__checkpoint_ex: frees ctx with the node */
  uint64_t seed, offset; /* RNG state at the forward */
  tfw_autocast_state amp; /* autocast policy at the forward */
} ckpt;

static tfw_status ckpt_backward(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin);

#define CKPT_DEF(n_out_)                                                                       \
  {"checkpoint", TFW__OP_COUNT, -1, n_out_, TFW__OPF_DIFF, NULL, NULL, NULL, ckpt_backward,   \
   tfw__jvp_none, "activation checkpoint (tfw_checkpoint); not in the registry"}
static const tfw__op_def k_ckpt_ops[TFW__MAX_OUT] = {CKPT_DEF(1), CKPT_DEF(2)};

static void ckpt_free(void *p) {
  ckpt *ck = p;
  if (ck->ctx_free) ck->ctx_free(ck->ctx);
  tfw__free(p);
}

static void release_n(int n, tfw_tensor **t) {
  for (int i = 0; i < n; i++) {
    tfw_release(t[i]);
    t[i] = NULL;
  }
}

/* Runs fn; checks that it filled every output. */
static tfw_status call_fn(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *in, int n_out,
                          tfw_tensor **out) {
  for (int k = 0; k < n_out; k++) out[k] = NULL;
  tfw_status st = fn(ctx, n_in, in, n_out, out);
  for (int k = 0; !st && k < n_out; k++)
    if (!out[k]) st = tfw__error(TFW_EVALUE, "checkpoint: fn returned no output %d", k);
  if (st) release_n(n_out, out);
  return st;
}

tfw_status tfw_checkpoint(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs, int n_out,
                          tfw_tensor **outputs) {
  return tfw__checkpoint_ex(fn, ctx, NULL, n_in, inputs, n_out, outputs);
}

/* ctx_free(ctx) is called exactly once: when the recorded node dies, or before returning
 * when nothing was recorded (or on failure). */
static tfw_status plain_call(tfw_fn fn, void *ctx, void (*ctx_free)(void *), int n_in,
                             tfw_tensor *const *inputs, int n_out, tfw_tensor **outputs);

tfw_status tfw__checkpoint_ex(tfw_fn fn, void *ctx, void (*ctx_free)(void *), int n_in,
                              tfw_tensor *const *inputs, int n_out, tfw_tensor **outputs) {
  tfw_status st = TFW_OK;
  if (!fn || !inputs || !outputs) st = TFW_EVALUE;
  else if (n_in < 1 || n_in > TFW__MAX_IN || n_out < 1 || n_out > TFW__MAX_OUT) st = TFW_EVALUE;
  if (st) {
    if (ctx_free) ctx_free(ctx);
    ctx_free = NULL;
  }
  if (!fn || !inputs || !outputs)
    return tfw__error(TFW_EVALUE, "checkpoint: fn, inputs and outputs must be given");
  if (n_in < 1 || n_in > TFW__MAX_IN || n_out < 1 || n_out > TFW__MAX_OUT)
    return tfw__error(TFW_EVALUE, "checkpoint: %d inputs and %d outputs given; 1 to %d inputs "
                      "and 1 to %d outputs are supported", n_in, n_out, TFW__MAX_IN, TFW__MAX_OUT);
  for (int k = 0; k < n_out; k++) outputs[k] = NULL;
  bool any = false;
  for (int i = 0; i < n_in; i++) {
    if (tfw__check_tensor("checkpoint", "input", inputs[i])) {
      if (ctx_free) ctx_free(ctx);
      return TFW_EVALUE;
    }
    any = any || tfw__requires_grad(inputs[i]);
  }
  if (!any || !tfw_grad_enabled()) /* nothing to record: a plain call */
    return plain_call(fn, ctx, ctx_free, n_in, inputs, n_out, outputs);

  ckpt *ck = tfw__calloc(1, sizeof *ck);
  if (!ck) {
    if (ctx_free) ctx_free(ctx);
    return tfw__error(TFW_ENOMEM, "checkpoint: out of memory");
  }
  ck->fn = fn;
  ck->ctx = ctx;
  ck->ctx_free = ctx_free;
  tfw_rng_get_state(&ck->seed, &ck->offset);
  ck->amp = tfw_autocast_get();
  tfw_tensor *raw[TFW__MAX_OUT];
  tfw_set_grad_enabled(false);
  st = call_fn(fn, ctx, n_in, inputs, n_out, raw);
  tfw_set_grad_enabled(true);
  if (st) {
    ckpt_free(ck);
    return st;
  }
  /* fresh handles, so that fn may return views or its inputs themselves */
  for (int k = 0; k < n_out && !st; k++) {
    outputs[k] = tfw_detach(raw[k]);
    if (!outputs[k]) st = tfw_last_status();
    else if (tfw__tangent(raw[k])) st = tfw_tensor_set_tangent(outputs[k], tfw__tangent(raw[k]));
  }
  release_n(n_out, raw);
  tfw__call c;
  memset(&c, 0, sizeof c);
  c.op = &k_ckpt_ops[n_out - 1];
  c.n_in = n_in;
  c.a.n_ints = -1;
  for (int i = 0; i < n_in; i++) c.in[i] = inputs[i];
  if (!st) st = tfw__autograd_record(&c, outputs);
  tfw__node *node = NULL;
  for (int k = 0; !st && k < n_out && !node; k++) {
    tfw__ag *ag = tfw__ag_get(outputs[k]);
    if (ag && ag->grad_fn) node = ag->grad_fn;
  }
  if (node) {
    node->ctx = ck;
    node->ctx_free = ckpt_free;
  } else {
    ckpt_free(ck); /* no floating output (or recording failed): nothing to differentiate */
  }
  if (st) release_n(n_out, outputs);
  return st;
}

static tfw_status plain_call(tfw_fn fn, void *ctx, void (*ctx_free)(void *), int n_in,
                             tfw_tensor *const *inputs, int n_out, tfw_tensor **outputs) {
  tfw_status st = call_fn(fn, ctx, n_in, inputs, n_out, outputs);
  if (ctx_free) ctx_free(ctx);
  return st;
}

/* ---- backward ---------------------------------------------------------------------------- */

/* Fails if the graph behind outs reaches a leaf that requires grad other than the given
 * leaves, or a node older than the checkpoint node (a tensor with history read from ctx). */
static tfw_status check_closed(const tfw__node *ck_node, int n_out, tfw_tensor *const *outs,
                               int n_in, tfw_tensor *const *leaves) {
  int cap = 64, top = 0, nseen = 0, scap = 64;
  tfw__node **stack = tfw__malloc(sizeof(*stack) * (size_t)cap);
  tfw__node **seen = tfw__malloc(sizeof(*seen) * (size_t)scap);
  tfw_status st = TFW_OK;
  if (!stack || !seen) {
    st = tfw__error(TFW_ENOMEM, "checkpoint: out of memory");
    goto done;
  }
  for (int k = 0; k < n_out; k++) {
    tfw__ag *ag = tfw__ag_get(outs[k]);
    if (ag && ag->grad_fn) stack[top++] = ag->grad_fn;
  }
  while (top > 0 && !st) {
    tfw__node *n = stack[--top];
    bool dup = false;
    for (int j = 0; j < nseen && !dup; j++) dup = seen[j] == n;
    if (dup) continue;
    if (n->seq <= ck_node->seq) {
      st = tfw__error(TFW_EVALUE, "checkpoint: fn used a tensor with autograd history that is "
                      "not among the inputs (it reaches %s); pass it as an input", n->op->name);
      break;
    }
    if (nseen == scap) {
      tfw__node **ns = tfw__realloc(seen, sizeof(*seen) * (size_t)(scap *= 2));
      if (!ns) {
        st = tfw__error(TFW_ENOMEM, "checkpoint: out of memory");
        break;
      }
      seen = ns;
    }
    seen[nseen++] = n;
    for (int i = 0; i < n->call.n_in && !st; i++) {
      const tfw__edge *e = &n->next[i];
      if (e->leaf) {
        bool known = false;
        for (int j = 0; j < n_in && !known; j++) known = leaves[j] == e->leaf;
        if (!known)
          st = tfw__error(TFW_EVALUE, "checkpoint: fn used a tensor that requires grad but is not "
                          "among the inputs (in %s); pass it as an input", n->op->name);
      } else if (e->node) {
        if (top == cap) {
          tfw__node **ns = tfw__realloc(stack, sizeof(*stack) * (size_t)(cap *= 2));
          if (!ns) {
            st = tfw__error(TFW_ENOMEM, "checkpoint: out of memory");
            break;
          }
          stack = ns;
        }
        stack[top++] = e->node;
      }
    }
  }
done:
  tfw__free(stack);
  tfw__free(seen);
  return st;
}

static tfw_status ckpt_backward(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const ckpt *ck = node->ctx;
  int n_in = node->call.n_in, n_out = node->op->n_out;
  if (tfw_grad_enabled())
    return tfw__error(TFW_EUNSUPPORTED, "checkpoint: double backward (create_graph) through a "
                      "checkpoint is not supported");
  tfw_tensor *al[TFW__MAX_IN] = {NULL}, *outs[TFW__MAX_OUT] = {NULL};
  tfw_tensor *need[TFW__MAX_IN], *res[TFW__MAX_IN] = {NULL};
  tfw_tensor *ro[TFW__MAX_OUT], *rg[TFW__MAX_OUT];
  int idx[TFW__MAX_IN], n_need = 0, n_ro = 0;
  tfw_status st = TFW_OK;
  for (int i = 0; i < n_in && !st; i++) {
    al[i] = tfw_detach(tfw__node_input(node, i));
    if (!al[i]) st = tfw_last_status();
    else if (tfw__needs_grad(node, i) && !(st = tfw_tensor_set_requires_grad(al[i], true)))
      idx[n_need] = i, need[n_need++] = al[i];
  }
  if (st) goto done;
  /* recompute with the forward's random numbers */
  uint64_t seed, offset;
  tfw_rng_get_state(&seed, &offset);
  tfw_rng_set_state(ck->seed, ck->offset);
  tfw_set_grad_enabled(true);
  tfw__autocast_saved amp = tfw__autocast_enter(ck->amp);
  st = call_fn(ck->fn, ck->ctx, n_in, al, n_out, outs);
  tfw__autocast_leave(amp);
  tfw_set_grad_enabled(false);
  tfw_rng_set_state(seed, offset);
  if (st) goto done;
  for (int k = 0; k < n_out; k++) {
    const tfw__meta *m = &node->out_meta[k];
    if (outs[k]->dtype != m->dtype || outs[k]->ndim != m->ndim ||
        memcmp(outs[k]->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim)) {
      st = tfw__error(TFW_ESTATE, "checkpoint: recomputing fn gave output %d of another shape or "
                      "dtype than the forward did", k);
      goto done;
    }
    if (tfw__requires_grad(outs[k])) ro[n_ro] = outs[k], rg[n_ro++] = gout[k];
  }
  if ((st = check_closed(node, n_ro, ro, n_in, al))) goto done;
  if (n_ro == 0 || n_need == 0) goto done; /* the outputs do not depend on the inputs */
  st = tfw_grad(n_ro, ro, n_need, need, rg, false, false, true, res);
  if (st) goto done;
  for (int j = 0; j < n_need; j++) {
    gin[idx[j]] = res[j];
    res[j] = NULL;
  }
done:
  release_n(n_in, al);
  release_n(n_out, outs);
  release_n(n_need, res);
  return st;
}
