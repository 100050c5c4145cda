/* The op registry: one entry per op in src/ops/ops.def (DESIGN §3).
 *
 * Each op is called through tfw__op_call(): the dispatcher checks the inputs, runs the op's
 * inference function (output dtype and shape, or an error naming the op and the values),
 * allocates the outputs, and runs the CPU kernel. View ops (flag TFW__OPF_VIEW) build
 * their outputs themselves. Tests, docs/ops.md and (later) autograd, graph capture, the
 * Python op list and ONNX mapping are all generated from the same table. */
#ifndef TFW_REGISTRY_H
#define TFW_REGISTRY_H

#include "core/core.h"
#include "tenflower/amp.h"

#define TFW__MAX_IN 8
#define TFW__MAX_OUT 2

/* Op attributes: one generic record so that calls can be recorded, replayed and generated
 * (tests, autograd, graph capture) without per-op structs. Which fields an op reads is
 * documented beside its entry in ops.def. */
typedef struct tfw__attrs {
  int64_t ints[TFW_MAX_DIMS]; /* dims list, shape, pads, repeats, ... */
  int n_ints;                 /* -1 when the list is absent */
  int64_t i[4];               /* integer scalars: dim, start, end, step, k, correction ... */
  double f[4];                /* float scalars: alpha, beta, value, ord, lo, hi ... */
  bool b[2];                  /* flags: keepdim, descending, largest, sorted ... */
  tfw_dtype dtype;            /* target dtype where an op has one */
  char str[64];               /* einsum equation and other short strings */
} tfw__attrs;

typedef struct tfw__op_def tfw__op_def;

typedef struct tfw__call {
  const tfw__op_def *op;
  int n_in;
  const tfw_tensor *in[TFW__MAX_IN];
  tfw__attrs a;
} tfw__call;

/* Output metadata produced by inference. */
typedef struct tfw__meta {
  tfw_dtype dtype;
  int ndim;
  int64_t shape[TFW_MAX_DIMS];
} tfw__meta;

typedef tfw_status (*tfw__infer_fn)(const tfw__call *c, tfw__meta *out);
/* Fills out[0..n_out) (already allocated, contiguous) from the inputs. For view ops the
 * kernel creates out[] itself. */
typedef tfw_status (*tfw__kernel_fn)(const tfw__call *c, tfw_tensor **out);
/* Writes up to cap sample calls for tests into calls[] and returns how many. Tensors in
 * the samples are owned by the caller (release every calls[i].in[j]). Sample i uses seed i
 * to build its inputs with tfw_rand etc. */
typedef int (*tfw__sample_fn)(const tfw__op_def *op, tfw__call *calls, int cap);

enum {
  TFW__OPF_ELEMWISE = 1u << 0,  /* pointwise over broadcast inputs */
  TFW__OPF_REDUCTION = 1u << 1, /* reduces over dims */
  TFW__OPF_VIEW = 1u << 2,      /* returns a view of in[0] (aliases its storage) */
  TFW__OPF_RANDOM = 1u << 3,    /* consumes the RNG */
  TFW__OPF_DIFF = 1u << 4,      /* differentiable (a backward will be registered) */
  TFW__OPF_INT_OK = 1u << 5,    /* accepts integer and bool inputs */
  TFW__OPF_FLOAT_ONLY = 1u << 6,/* floating inputs only */
  TFW__OPF_FUSABLE = 1u << 7,   /* candidate for elementwise fusion in graph mode */
  TFW__OPF_NONDET_SHAPE = 1u << 8, /* output shape depends on values (nonzero, masked_select) */
};

typedef enum tfw__op_id {
#define TFW_OP(name, n_in, n_out, flags, infer, kernel, sample, backward, jvp, doc) TFW__OP_##name,
#include "ops/ops.def"
#undef TFW_OP
  TFW__OP_COUNT
} tfw__op_id;

typedef struct tfw__node tfw__node;
/* Reverse mode: given the gradients of the outputs (gout[k], never NULL: missing ones are
 * zeros), writes the gradient of each input into gin[i] as a new reference, or NULL where
 * the input gets no gradient (integer inputs, index tensors). Written with registered ops
 * so that, with create_graph, the backward itself is recorded (double backward). The
 * node gives the saved inputs (tfw__node_input) and the call's attributes. */
typedef tfw_status (*tfw__backward_fn)(const tfw__node *node, tfw_tensor *const *gout,
                                       tfw_tensor **gin);
/* Forward mode: given tangents of the inputs (tin[i], NULL = zero), writes the tangent of
 * each output into tout[k] (new reference). */
typedef tfw_status (*tfw__jvp_fn)(const tfw__call *c, tfw_tensor *const *outputs,
                                  tfw_tensor *const *tin, tfw_tensor **tout);

struct tfw__op_def {
  const char *name;
  tfw__op_id id;
  int n_in;  /* -1: variadic (cat, stack, einsum) */
  int n_out;
  unsigned flags;
  tfw__infer_fn infer;
  tfw__kernel_fn kernel;
  tfw__sample_fn sample;
  tfw__backward_fn backward; /* tfw__backward_none: no rule (an error if reached) */
  tfw__jvp_fn jvp;           /* tfw__jvp_none: no forward-mode rule */
  const char *doc;
};

extern const tfw__op_def tfw__ops[TFW__OP_COUNT];
const tfw__op_def *tfw__op_find(const char *name);

/* Initialises a call for op id with inputs (attrs zeroed, n_ints = -1). */
void tfw__call_init(tfw__call *c, tfw__op_id id, int n_in, const tfw_tensor *const *in);
/* Runs a call; returns the first output (new reference) or NULL with the error set. */
tfw_tensor *tfw__op_run(const tfw__call *c);
/* Runs a call with several outputs; out[] receives n_out new references. */
tfw_status tfw__op_run_multi(const tfw__call *c, tfw_tensor **out);
/* Autocast (autocast.c). prepare: when the thread's autocast policy changes the dtype of
 * some input of c, fills *cc with a copy of c whose inputs are the casts (new references in
 * casts[0..n_in), NULL where unchanged) and returns how many; 0 when nothing changes; -1 on
 * error. suspend(true/false) nests; backward runs suspended. */
int tfw__autocast_prepare(const tfw__call *c, tfw__call *cc, tfw_tensor **casts);
void tfw__autocast_suspend(bool on);
/* f32_region(true/false) nests: inside, every op (but cast) computes in float32 when autocast
 * is on; the composite losses run in one. */
void tfw__autocast_f32_region(bool on);
/* Runs code under a recorded policy (checkpoint recomputation): enter sets the state and
 * lifts any suspension; leave restores both. */
typedef struct tfw__autocast_saved {
  tfw_autocast_state state;
  int suspended, f32_region;
} tfw__autocast_saved;
tfw__autocast_saved tfw__autocast_enter(tfw_autocast_state s);
void tfw__autocast_leave(tfw__autocast_saved old);

/* Shorthands for the op wrappers. */
tfw_tensor *tfw__op1(tfw__op_id id, const tfw_tensor *a);
tfw_tensor *tfw__op2(tfw__op_id id, const tfw_tensor *a, const tfw_tensor *b);

/* Consuming forms of the scalar ops for composite code (backward rules, composite losses):
 * they release a and pass NULL through, so a chain needs one error check at its end. */
static inline tfw_tensor *tfw__muls_consume(tfw_tensor *a, double s) {
  tfw_tensor *r = a ? tfw_mul_scalar(a, s) : NULL;
  tfw_release(a);
  return r;
}
static inline tfw_tensor *tfw__adds_consume(tfw_tensor *a, double s) {
  tfw_tensor *r = a ? tfw_add_scalar(a, s) : NULL;
  tfw_release(a);
  return r;
}

/* Shared inference helpers. */
/* Normalises a dims list for a reduction: wraps negatives, rejects duplicates, fills mask
 * (mask[d] true = reduced). n == 0 or n_ints == -1 means all dims. */
tfw_status tfw__reduce_mask(const char *op, const tfw_tensor *t, const tfw__attrs *a,
                            bool *mask);
tfw_status tfw__check_float(const char *op, const char *arg, const tfw_tensor *t);

/* Declarations of every infer/kernel/sample function named in ops.def. */
#define TFW_OP(name, n_in, n_out, flags, infer, kernel, sample, backward, jvp, doc) \
  tfw_status tfw__infer_##infer(const tfw__call *c, tfw__meta *out);  \
  tfw_status tfw__kernel_##kernel(const tfw__call *c, tfw_tensor **out); \
  int tfw__sample_##sample(const tfw__op_def *op, tfw__call *calls, int cap); \
  tfw_status tfw__backward_##backward(const tfw__node *node, tfw_tensor *const *gout, \
                                      tfw_tensor **gin); \
  tfw_status tfw__jvp_##jvp(const tfw__call *c, tfw_tensor *const *outputs, \
                            tfw_tensor *const *tin, tfw_tensor **tout);
#include "ops/ops.def"
#undef TFW_OP

#endif
