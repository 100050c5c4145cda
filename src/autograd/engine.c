/* The backward engine: walks the graph from the outputs to the leaves in reverse creation
 * order (a node runs once every node that feeds it a gradient has run), calls each op's
 * backward rule, and accumulates gradients into .grad or into the tfw_grad results.
 *
 * Determinism: the order is a pure function of the graph (node creation order), and
 * gradient accumulation is done with the same ops every time, so backward is as
 * bit-reproducible as the forward kernels. */
#include <stdlib.h>

#include "autograd/autograd.h"

void tfw__node_release(tfw__node *n);
void tfw__node_release_saved(tfw__node *n);

typedef struct {
  tfw__node *node;
  int deps;                       /* edges from not-yet-run nodes into this one */
  tfw_tensor *grads[TFW__MAX_OUT]; /* accumulated output gradients */
} slot;

typedef struct {
  slot *s;
  int n, cap;
  int *table; /* open addressing: index+1 into s, 0 empty */
  int tcap;
} graph;

static uint64_t hptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  return x ^ (x >> 33);
}

static int find(const graph *g, const tfw__node *n) {
  if (!g->tcap) return -1;
  for (uint64_t h = hptr(n) & (uint64_t)(g->tcap - 1);; h = (h + 1) & (uint64_t)(g->tcap - 1)) {
    int v = g->table[h];
    if (!v) return -1;
    if (g->s[v - 1].node == n) return v - 1;
  }
}

static bool rehash(graph *g, int tcap) {
  int *t = tfw__calloc((size_t)tcap, sizeof(int));
  if (!t) return false;
  for (int i = 0; i < g->n; i++) {
    uint64_t h = hptr(g->s[i].node) & (uint64_t)(tcap - 1);
    while (t[h]) h = (h + 1) & (uint64_t)(tcap - 1);
    t[h] = i + 1;
  }
  tfw__free(g->table);
  g->table = t;
  g->tcap = tcap;
  return true;
}

static int add(graph *g, tfw__node *n) {
  if (g->n == g->cap) {
    int cap = g->cap ? g->cap * 2 : 64;
    slot *s = tfw__realloc(g->s, sizeof(slot) * (size_t)cap);
    if (!s) return -1;
    g->s = s;
    g->cap = cap;
  }
  if ((g->n + 1) * 2 > g->tcap && !rehash(g, g->tcap ? g->tcap * 2 : 128)) return -1;
  memset(&g->s[g->n], 0, sizeof(slot));
  g->s[g->n].node = n;
  uint64_t h = hptr(n) & (uint64_t)(g->tcap - 1);
  while (g->table[h]) h = (h + 1) & (uint64_t)(g->tcap - 1);
  g->table[h] = g->n + 1;
  return g->n++;
}

static void graph_free(graph *g) {
  for (int i = 0; i < g->n; i++)
    for (int k = 0; k < TFW__MAX_OUT; k++) tfw_release(g->s[i].grads[k]);
  tfw__free(g->s);
  tfw__free(g->table);
}

/* Discovers every node reachable from the roots and counts dependencies. */
static tfw_status discover(graph *g, int n_roots, tfw__node *const *roots) {
  int stack_cap = 64, top = 0;
  tfw__node **stack = tfw__malloc(sizeof(*stack) * (size_t)stack_cap);
  if (!stack) return tfw__error(TFW_ENOMEM, "backward: out of memory");
  for (int r = 0; r < n_roots; r++) {
    if (!roots[r] || find(g, roots[r]) >= 0) continue;
    if (add(g, roots[r]) < 0) goto oom;
    stack[top++] = roots[r];
  }
  while (top > 0) {
    tfw__node *n = stack[--top];
    for (int i = 0; i < TFW__MAX_IN; i++) {
      tfw__node *m = n->next[i].node;
      if (!m) continue;
      int j = find(g, m);
      if (j < 0) {
        j = add(g, m);
        if (j < 0) goto oom;
        if (top == stack_cap) {
          tfw__node **ns = tfw__realloc(stack, sizeof(*stack) * (size_t)stack_cap * 2);
          if (!ns) goto oom;
          stack = ns;
          stack_cap *= 2;
        }
        stack[top++] = m;
      }
      g->s[j].deps++;
    }
  }
  tfw__free(stack);
  return TFW_OK;
oom:
  tfw__free(stack);
  return tfw__error(TFW_ENOMEM, "backward: out of memory");
}

/* acc = acc + g (consumes g). With grad mode on (create_graph) the sum is recorded. */
static tfw_status accumulate(tfw_tensor **acc, tfw_tensor *g) {
  if (!*acc) {
    *acc = g;
    return TFW_OK;
  }
  tfw_tensor *s = tfw_add(*acc, g);
  tfw_release(g);
  if (!s) return tfw_last_status();
  tfw_release(*acc);
  *acc = s;
  return TFW_OK;
}

static tfw_status run_hooks(tfw__hook *h, tfw_tensor **g) {
  for (; h; h = h->next) {
    tfw_tensor *r = h->fn(*g, h->ctx);
    if (r) {
      tfw_release(*g);
      *g = r;
    }
  }
  return TFW_OK;
}

typedef struct {
  int n;
  tfw_tensor *const *inputs;
  tfw_tensor **results; /* NULL: accumulate into .grad */
} capture;

/* Delivers gradient g (consumed) to a leaf. */
static tfw_status to_leaf(tfw_tensor *leaf, tfw_tensor *g, const capture *cap, bool create_graph) {
  tfw__ag *ag = tfw__ag_get(leaf);
  run_hooks(ag ? ag->hooks : NULL, &g);
  if (cap->results) {
    for (int i = 0; i < cap->n; i++)
      if (cap->inputs[i] == leaf) return accumulate(&cap->results[i], g);
    tfw_release(g);
    return TFW_OK;
  }
  if (!create_graph) {
    /* .grad holds plain data unless the user asked for a differentiable gradient */
    tfw_tensor *d = tfw_detach(g);
    tfw_release(g);
    if (!d) return tfw_last_status();
    g = d;
  }
  return accumulate(&ag->grad, g);
}

/* The heap of ready nodes, largest seq first. */
typedef struct {
  int *h;
  int n;
} heap;

static void heap_push(heap *hp, const graph *g, int v) {
  int i = hp->n++;
  hp->h[i] = v;
  while (i > 0) {
    int p = (i - 1) / 2;
    if (g->s[hp->h[p]].node->seq >= g->s[hp->h[i]].node->seq) break;
    int t = hp->h[p];
    hp->h[p] = hp->h[i];
    hp->h[i] = t;
    i = p;
  }
}

static int heap_pop(heap *hp, const graph *g) {
  int top = hp->h[0];
  hp->h[0] = hp->h[--hp->n];
  int i = 0;
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < hp->n && g->s[hp->h[l]].node->seq > g->s[hp->h[m]].node->seq) m = l;
    if (r < hp->n && g->s[hp->h[r]].node->seq > g->s[hp->h[m]].node->seq) m = r;
    if (m == i) break;
    int t = hp->h[m];
    hp->h[m] = hp->h[i];
    hp->h[i] = t;
    i = m;
  }
  return top;
}

static tfw_status check_saved(const tfw__node *n) {
  if (n->released)
    return tfw__error(TFW_ESTATE, "backward: trying to backward through the graph a second time "
                      "(through %s); pass retain_graph the first time", n->op->name);
  for (int i = 0; i < n->call.n_in; i++) {
    const tfw_tensor *t = n->saved[i];
    int64_t v = atomic_load(&t->storage->version);
    if (v != n->saved_version[i]) {
      char b[TFW__SHAPE_BUF];
      return tfw__error(TFW_ESTATE, "%s: input %d (shape %s), saved for backward, was modified "
                        "in place (version %lld, saved at version %lld)", n->op->name, i,
                        tfw__shape_str(b, sizeof b, t->ndim, t->shape), (long long)v,
                        (long long)n->saved_version[i]);
    }
  }
  return TFW_OK;
}

static tfw_status run_node(graph *g, int idx, heap *hp, const capture *cap, bool retain,
                           bool create_graph) {
  slot *sl = &g->s[idx];
  tfw__node *n = sl->node;
  tfw_status st = check_saved(n);
  if (st) return st;
  const tfw__op_def *op = n->op;
  if (op->backward == tfw__backward_none)
    return tfw__error(TFW_EUNSUPPORTED, "backward: %s has no backward rule yet", op->name);
  tfw_tensor *gout[TFW__MAX_OUT] = {NULL}, *gin[TFW__MAX_IN] = {NULL};
  for (int k = 0; k < op->n_out; k++) {
    run_hooks(n->out_hooks[k], &sl->grads[k]);
    if (sl->grads[k]) {
      gout[k] = sl->grads[k];
      sl->grads[k] = NULL;
    } else {
      gout[k] = tfw_zeros(tfw_dtype_is_floating(n->out_meta[k].dtype) ? n->out_meta[k].dtype
                                                                       : TFW_DTYPE_F32,
                          n->out_meta[k].ndim, n->out_meta[k].shape);
      if (!gout[k]) {
        st = tfw_last_status();
        goto done;
      }
    }
  }
  /* tfw_grad on an intermediate tensor: its gradient is the accumulated output gradient */
  if (cap->results)
    for (int i = 0; i < cap->n; i++) {
      tfw__ag *ag = tfw__ag_get(cap->inputs[i]);
      if (ag && ag->grad_fn == n) {
        st = accumulate(&cap->results[i], tfw_retain(gout[ag->output_nr]));
        if (st) goto done;
      }
    }
  st = tfw__run_backward_rule(n, gout, gin);
  if (st) goto done;
  for (int i = 0; i < n->call.n_in; i++) {
    const tfw__edge *e = &n->next[i];
    if (!e->node && !e->leaf) {
      tfw_release(gin[i]);
      gin[i] = NULL;
      continue;
    }
    if (e->node) {
      int j = find(g, e->node);
      TFW_ASSERT(j >= 0);
      if (gin[i]) {
        st = accumulate(&g->s[j].grads[e->output_nr], gin[i]);
        gin[i] = NULL;
        if (st) goto done;
      }
      if (--g->s[j].deps == 0) heap_push(hp, g, j);
    } else if (gin[i]) {
      st = to_leaf(e->leaf, gin[i], cap, create_graph);
      gin[i] = NULL;
      if (st) goto done;
    }
  }
  if (!retain) tfw__node_release_saved(n);
done:
  for (int k = 0; k < TFW__MAX_OUT; k++) tfw_release(gout[k]);
  for (int i = 0; i < TFW__MAX_IN; i++) tfw_release(gin[i]);
  return st;
}

static tfw_status run_backward(int n_out, tfw_tensor *const *outputs,
                               tfw_tensor *const *grad_outputs, const capture *cap, bool retain,
                               bool create_graph) {
  const char *opn = cap->results ? "grad" : "backward";
  tfw__node *roots[64];
  if (n_out < 1 || n_out > 64)
    return tfw__error(TFW_EVALUE, "%s: %d outputs given (1 to 64 supported)", opn, n_out);
  tfw_status st = TFW_OK;
  graph g = {0};
  heap hp = {0};
  tfw_tensor *seeds[64] = {NULL};
  for (int k = 0; k < n_out; k++) {
    const tfw_tensor *o = outputs[k];
    if (tfw__check_tensor(opn, "output", o)) return TFW_EVALUE;
    if (!tfw__requires_grad(o))
      return tfw__error(TFW_ESTATE, "%s: output %d does not require grad and has no grad_fn", opn, k);
    const tfw_tensor *go = grad_outputs ? grad_outputs[k] : NULL;
    if (go) {
      if (go->ndim != o->ndim || memcmp(go->shape, o->shape, sizeof(int64_t) * (size_t)o->ndim)) {
        char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
        return tfw__error(TFW_ESHAPE, "%s: grad_output %d has shape %s, output has shape %s", opn, k,
                          tfw__shape_str(b1, sizeof b1, go->ndim, go->shape),
                          tfw__shape_str(b2, sizeof b2, o->ndim, o->shape));
      }
    } else if (tfw__numel(o->ndim, o->shape) != 1) {
      char b[TFW__SHAPE_BUF];
      return tfw__error(TFW_EVALUE, "%s: grad_output can be omitted only for outputs with one "
                        "element; output %d has shape %s", opn, k,
                        tfw__shape_str(b, sizeof b, o->ndim, o->shape));
    }
    roots[k] = tfw__ag_get(o)->grad_fn;
  }
  bool prev = tfw_set_grad_enabled(create_graph);
  tfw__autocast_suspend(true);
  st = discover(&g, n_out, roots);
  if (st) goto done;
  hp.h = tfw__malloc(sizeof(int) * (size_t)(g.n + 1));
  if (!hp.h) {
    st = tfw__error(TFW_ENOMEM, "%s: out of memory", opn);
    goto done;
  }
  for (int k = 0; k < n_out; k++) {
    const tfw_tensor *o = outputs[k];
    tfw_tensor *seed = grad_outputs && grad_outputs[k] ? tfw_to_dtype(grad_outputs[k], o->dtype)
                                                       : tfw_ones(o->dtype, o->ndim, o->shape);
    if (!seed) {
      st = tfw_last_status();
      goto done;
    }
    seeds[k] = seed;
    tfw__ag *ag = tfw__ag_get(o);
    if (ag->grad_fn) {
      int j = find(&g, ag->grad_fn);
      st = accumulate(&g.s[j].grads[ag->output_nr], seed);
    } else {
      st = to_leaf((tfw_tensor *)o, seed, cap, create_graph);
    }
    seeds[k] = NULL;
    if (st) goto done;
  }
  for (int i = 0; i < g.n; i++)
    if (g.s[i].deps == 0) heap_push(&hp, &g, i);
  while (hp.n > 0) {
    int i = heap_pop(&hp, &g);
    st = run_node(&g, i, &hp, cap, retain || create_graph, create_graph);
    if (st) goto done;
  }
done:
  tfw__autocast_suspend(false);
  tfw_set_grad_enabled(prev);
  for (int k = 0; k < n_out; k++) tfw_release(seeds[k]);
  tfw__free(hp.h);
  graph_free(&g);
  return st;
}

tfw_status tfw_backward(tfw_tensor *output, const tfw_tensor *grad_output, bool retain_graph,
                        bool create_graph) {
  capture cap = {0, NULL, NULL};
  tfw_tensor *outs[1] = {output};
  tfw_tensor *gos[1] = {(tfw_tensor *)grad_output};
  return run_backward(1, outs, grad_output ? gos : NULL, &cap, retain_graph, create_graph);
}

tfw_status tfw_grad(int n_outputs, tfw_tensor *const *outputs, int n_inputs,
                    tfw_tensor *const *inputs, tfw_tensor *const *grad_outputs, bool retain_graph,
                    bool create_graph, bool allow_unused, tfw_tensor **grads) {
  if (!outputs || !inputs || !grads || n_inputs < 1)
    return tfw__error(TFW_EVALUE, "grad: outputs, inputs and grads must be given (n_inputs >= 1)");
  for (int i = 0; i < n_inputs; i++) {
    grads[i] = NULL;
    if (tfw__check_tensor("grad", "input", inputs[i])) return TFW_EVALUE;
    if (!tfw__requires_grad(inputs[i]))
      return tfw__error(TFW_EVALUE, "grad: input %d does not require grad", i);
  }
  capture cap = {n_inputs, inputs, grads};
  tfw_status st = run_backward(n_outputs, outputs, grad_outputs, &cap, retain_graph, create_graph);
  if (st == TFW_OK && !allow_unused)
    for (int i = 0; i < n_inputs; i++)
      if (!grads[i]) {
        st = tfw__error(TFW_EVALUE, "grad: input %d was not used to compute the outputs "
                        "(pass allow_unused)", i);
        break;
      }
  if (st)
    for (int i = 0; i < n_inputs; i++) {
      tfw_release(grads[i]);
      grads[i] = NULL;
    }
  return st;
}
