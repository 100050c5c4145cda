/* The op bindings: one table of PyTorch-style signatures over the op registry.
 *
 * Each row names a Python function (and Tensor method), the registry op it runs and a
 * signature string that maps Python arguments onto the registry call (tfw__call): tensor
 * inputs, the dims list, integer/float/bool attribute slots. The signatures are parsed once at
 * import; calls are parsed against them in C and run with the GIL released. Arguments that
 * need logic (var's unbiased/correction, max's three forms, norm's p='fro', ...) go through a
 * small fixup function named in the row. tests/py/test_registry.py checks that every registry
 * op is bound here or listed as bound elsewhere, so a new op cannot be forgotten.
 *
 * Signature grammar: "name:kind[=default], ...", '*' starts keyword-only arguments. Kinds:
 *   T      a tensor input (Python numbers become 0-d wrapped numbers; lists become tensors)
 *   T?     an optional tensor input (None: absent)
 *   TL     a sequence of tensors (all the inputs)
 *   dims   int or sequence of ints -> ints/n_ints (None: absent, n_ints = -1)
 *   ints   sequence of ints (or one int) -> ints/n_ints
 *   shape* the remaining positional arguments as a shape (view(2, 3) or view((2, 3)))
 *   iN fN bN  integer / float / bool attribute slot N (f with default None -> NaN)
 *   str    the string attribute;  xN  raw value N for the fixup
 * Defaults: None, True, False, numbers, inf, -inf, nan, 'text'. */
#include "tfpy.h"

#include <math.h>

#define MAX_ARGS 10
#define MAX_X 4

enum { K_T, K_TOPT, K_TL, K_DIMS, K_INTS, K_SHAPE, K_I, K_F, K_B, K_STR, K_X };

enum { B_FUNC = 1, B_METHOD = 2, B_INPLACE = 4 /* also a method name_ */ };

typedef struct fixctx {
  PyObject *x[MAX_X];
  tfw_tensor *owned[4]; /* released after the call */
  int n_owned;
  int post_reshape;     /* reshape the output back to in0's shape (roll without dims) */
  int64_t post_shape[TFW_MAX_DIMS];
  int post_nd;
} fixctx;

typedef int (*fixup_fn)(tfw__call *c, fixctx *f);

typedef struct {
  const char *pyname;
  const char *op;
  const char *spec;
  unsigned flags;
  fixup_fn fix;
} binding;

typedef struct {
  const char *name;
  int kind;
  int slot;
  int kwonly;
  PyObject *dflt; /* NULL: required */
} argdef;

typedef struct {
  const binding *b;
  tfw__op_id id;
  int nargs;
  argdef a[MAX_ARGS];
  int n_positional;
  int has_varargs;
} compiled;

/* ---- fixups -------------------------------------------------------------------------------- */

static int own(fixctx *f, tfw_tensor *t) {
  if (!t) {
    tfpy_raise();
    return -1;
  }
  f->owned[f->n_owned++] = t;
  return 0;
}

static int fix_alpha(tfw__call *c, fixctx *f) { /* add/sub(input, other, *, alpha=1) */
  PyObject *alpha = f->x[0];
  if (!alpha || alpha == Py_None) return 0;
  double a = PyFloat_AsDouble(alpha);
  if (a == -1.0 && PyErr_Occurred()) return -1;
  if (a == 1.0) return 0;
  if (own(f, tfw_mul_scalar(c->in[1], a))) return -1;
  c->in[1] = f->owned[f->n_owned - 1];
  return 0;
}

static int fix_div(tfw__call *c, fixctx *f) { /* div(input, other, *, rounding_mode=None) */
  PyObject *m = f->x[0];
  if (!m || m == Py_None) return 0;
  const char *s = PyUnicode_Check(m) ? PyUnicode_AsUTF8(m) : NULL;
  if (s && strcmp(s, "floor") == 0) {
    c->op = &tfw__ops[TFW__OP_floor_div];
    return 0;
  }
  tfpy_raise_status(TFW_EUNSUPPORTED, "div: rounding_mode %R is not supported (None or 'floor')", m);
  return -1;
}

static int fix_correction(tfw__call *c, fixctx *f) { /* var/std: unbiased x0, correction x1 */
  if (f->x[1] && f->x[1] != Py_None) {
    long long v = PyLong_AsLongLong(f->x[1]);
    if (v == -1 && PyErr_Occurred()) return -1;
    c->a.i[0] = v;
    return 0;
  }
  int unbiased = f->x[0] ? PyObject_IsTrue(f->x[0]) : 1;
  if (unbiased < 0) return -1;
  c->a.i[0] = unbiased ? 1 : 0;
  return 0;
}

static int fix_norm(tfw__call *c, fixctx *f) { /* norm(input, p='fro', ...) */
  PyObject *p = f->x[0];
  if (!p || p == Py_None || (PyUnicode_Check(p) && PyUnicode_CompareWithASCIIString(p, "fro") == 0)) {
    c->a.f[0] = 0;
    return 0;
  }
  double v = PyFloat_AsDouble(p);
  if (v == -1.0 && PyErr_Occurred()) return -1;
  if (v == 0) {
    tfpy_raise_status(TFW_EUNSUPPORTED, "norm: p=0 (count of nonzeros) is not supported");
    return -1;
  }
  c->a.f[0] = v;
  return 0;
}

static int fix_argext(tfw__call *c, fixctx *f) { /* argmax/argmin(input, dim=None, keepdim) */
  PyObject *d = f->x[0];
  if (!d || d == Py_None) {
    int64_t shape[1] = {-1};
    if (own(f, tfw_reshape(c->in[0], 1, shape))) return -1;
    c->in[0] = f->owned[f->n_owned - 1];
    c->a.i[0] = 0;
    c->a.b[0] = false;
    return 0;
  }
  long long v = PyLong_AsLongLong(d);
  if (v == -1 && PyErr_Occurred()) return -1;
  c->a.i[0] = v;
  return 0;
}

static int fix_maxmin(tfw__call *c, fixctx *f, tfw__op_id all, tfw__op_id dim, tfw__op_id elem) {
  PyObject *d = f->x[0];
  if (!d || d == Py_None) {
    c->op = &tfw__ops[all];
    return 0;
  }
  if (Tfpy_Check(d)) {
    c->op = &tfw__ops[elem];
    c->in[1] = ((TensorObject *)d)->t;
    c->n_in = 2;
    return 0;
  }
  long long v = PyLong_AsLongLong(d);
  if (v == -1 && PyErr_Occurred()) return -1;
  c->op = &tfw__ops[dim];
  c->a.i[0] = v;
  return 0;
}
static int fix_max(tfw__call *c, fixctx *f) {
  return fix_maxmin(c, f, TFW__OP_max, TFW__OP_max_dim, TFW__OP_maximum);
}
static int fix_min(tfw__call *c, fixctx *f) {
  return fix_maxmin(c, f, TFW__OP_min, TFW__OP_min_dim, TFW__OP_minimum);
}

static int fix_squeeze(tfw__call *c, fixctx *f) {
  PyObject *d = f->x[0];
  if (!d || d == Py_None) {
    c->op = &tfw__ops[TFW__OP_squeeze_all];
    return 0;
  }
  long long v = PyLong_AsLongLong(d);
  if (v == -1 && PyErr_Occurred()) return -1;
  c->a.i[0] = v;
  return 0;
}

static int fix_cast_dtype(tfw__call *c, fixctx *f) { /* sum/mean/softmax(..., dtype=None) */
  PyObject *d = f->x[MAX_X - 1];
  if (!d || d == Py_None) return 0;
  tfw_dtype dt;
  if (tfpy_parse_dtype(d, TFW_DTYPE_F32, &dt)) return -1;
  if (own(f, tfw_to_dtype(c->in[0], dt))) return -1;
  c->in[0] = f->owned[f->n_owned - 1];
  return 0;
}

static int fix_gelu(tfw__call *c, fixctx *f) {
  PyObject *a = f->x[0];
  if (!a || a == Py_None) return 0;
  if (PyUnicode_Check(a) && PyUnicode_CompareWithASCIIString(a, "none") == 0) return 0;
  if (PyUnicode_Check(a) && PyUnicode_CompareWithASCIIString(a, "tanh") == 0) {
    c->op = &tfw__ops[TFW__OP_gelu_tanh];
    return 0;
  }
  tfpy_raise_status(TFW_EVALUE, "gelu: approximate must be 'none' or 'tanh', got %R", a);
  return -1;
}

static double dtype_max(tfw_dtype d) {
  switch (d) {
  case TFW_DTYPE_F16: return 65504.0;
  case TFW_DTYPE_BF16: return 3.3895313892515355e38;
  case TFW_DTYPE_F32: return 3.4028234663852886e38;
  default: return 1.7976931348623157e308;
  }
}
static int fix_nan_to_num(tfw__call *c, fixctx *f) {
  double mx = dtype_max(c->in[0]->dtype);
  c->a.f[0] = 0.0;
  c->a.f[1] = mx;
  c->a.f[2] = -mx;
  for (int k = 0; k < 3; k++) {
    PyObject *v = f->x[k];
    if (!v || v == Py_None) continue;
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    c->a.f[k] = d;
  }
  return 0;
}

static int fix_roll(tfw__call *c, fixctx *f) { /* roll(input, shifts, dims=None) */
  PyObject *d = f->x[0];
  if (!d || d == Py_None) {
    const tfw_tensor *in = c->in[0];
    f->post_nd = in->ndim;
    memcpy(f->post_shape, in->shape, sizeof(int64_t) * (size_t)in->ndim);
    f->post_reshape = 1;
    int64_t shape[1] = {-1};
    if (own(f, tfw_reshape(in, 1, shape))) return -1;
    c->in[0] = f->owned[f->n_owned - 1];
    c->a.i[1] = 0;
    return 0;
  }
  long long v = PyLong_AsLongLong(d);
  if (v == -1 && PyErr_Occurred()) return -1;
  c->a.i[1] = v;
  return 0;
}

static int fix_take_along(tfw__call *c, fixctx *f) {
  PyObject *d = f->x[0];
  if (!d || d == Py_None) {
    int64_t shape[1] = {-1};
    if (own(f, tfw_reshape(c->in[0], 1, shape))) return -1;
    if (own(f, tfw_reshape(c->in[1], 1, shape))) return -1;
    c->in[0] = f->owned[f->n_owned - 2];
    c->in[1] = f->owned[f->n_owned - 1];
    c->a.i[0] = 0;
    return 0;
  }
  long long v = PyLong_AsLongLong(d);
  if (v == -1 && PyErr_Occurred()) return -1;
  c->a.i[0] = v;
  return 0;
}

static int fix_transpose2(tfw__call *c, fixctx *f) { /* t(): 0-d and 1-d come back as views */
  int nd = c->in[0]->ndim;
  if (nd < 2) {
    c->op = &tfw__ops[TFW__OP_view];
    c->a.n_ints = nd;
    for (int d = 0; d < nd; d++) c->a.ints[d] = c->in[0]->shape[d];
    return 0;
  }
  if (nd > 2) {
    tfpy_raise_status(TFW_ESHAPE, "t: expects a tensor with <= 2 dimensions, but self is %dD", nd);
    return -1;
  }
  c->a.i[0] = 0;
  c->a.i[1] = 1;
  return 0;
}

static int fix_clamp(tfw__call *c, fixctx *f) {
  for (int k = 0; k < 2; k++) {
    PyObject *v = f->x[k];
    if (!v || v == Py_None) {
      c->a.f[k] = NAN;
      continue;
    }
    if (Tfpy_Check(v) && ((TensorObject *)v)->t->ndim > 0) {
      tfpy_raise_status(TFW_EUNSUPPORTED, "clamp: tensor bounds are not supported; use "
                        "torch-style minimum/maximum");
      return -1;
    }
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    c->a.f[k] = d;
  }
  return 0;
}

/* ---- the table ------------------------------------------------------------------------------- */

#define FM (B_FUNC | B_METHOD)
#define FMI (B_FUNC | B_METHOD | B_INPLACE)
#define UNARY(n) {#n, #n, "input:T", FMI, NULL},
#define BINARY(n) {#n, #n, "input:T, other:T", FMI, NULL},
#define RED(n) {#n, #n, "input:T, dim:dims=None, keepdim:b0=False, *, dtype:x3=None", FM, fix_cast_dtype},

static const binding bindings[] = {
    /* elementwise */
    {"add", "add", "input:T, other:T, *, alpha:x0=None", FMI, fix_alpha},
    {"sub", "sub", "input:T, other:T, *, alpha:x0=None", FMI, fix_alpha},
    {"subtract", "sub", "input:T, other:T, *, alpha:x0=None", FM, fix_alpha},
    BINARY(mul)
    {"multiply", "mul", "input:T, other:T", FM, NULL},
    {"div", "div", "input:T, other:T, *, rounding_mode:x0=None", FMI, fix_div},
    {"divide", "div", "input:T, other:T, *, rounding_mode:x0=None", FM, fix_div},
    {"true_divide", "div", "input:T, other:T", FM, NULL},
    {"floor_divide", "floor_div", "input:T, other:T", FMI, NULL},
    BINARY(remainder)
    BINARY(pow)
    BINARY(minimum)
    BINARY(maximum)
    BINARY(eq) BINARY(ne) BINARY(lt) BINARY(le) BINARY(gt) BINARY(ge)
    {"greater", "gt", "input:T, other:T", FM, NULL},
    {"less", "lt", "input:T, other:T", FM, NULL},
    {"greater_equal", "ge", "input:T, other:T", FM, NULL},
    {"less_equal", "le", "input:T, other:T", FM, NULL},
    {"not_equal", "ne", "input:T, other:T", FM, NULL},
    BINARY(logical_and) BINARY(logical_or) BINARY(logical_xor)
    BINARY(bitwise_and) BINARY(bitwise_or) BINARY(bitwise_xor)
    UNARY(neg) UNARY(abs) UNARY(sign) UNARY(relu) UNARY(sqrt) UNARY(rsqrt) UNARY(exp)
    UNARY(exp2) UNARY(log) UNARY(log2) UNARY(log1p) UNARY(expm1) UNARY(sin) UNARY(cos)
    UNARY(tan) UNARY(tanh) UNARY(sigmoid) UNARY(erf) UNARY(logical_not) UNARY(bitwise_not)
    {"negative", "neg", "input:T", FM, NULL},
    {"absolute", "abs", "input:T", FM, NULL},
    {"isnan", "isnan", "input:T", FM, NULL},
    {"isinf", "isinf", "input:T", FM, NULL},
    {"gelu", "gelu", "input:T, approximate:x0='none'", FM, fix_gelu},
    {"clamp", "clamp", "input:T, min:x0=None, max:x1=None", FMI, fix_clamp},
    {"clip", "clamp", "input:T, min:x0=None, max:x1=None", FM, fix_clamp},
    {"nan_to_num", "nan_to_num", "input:T, nan:x0=0.0, posinf:x1=None, neginf:x2=None", FM,
     fix_nan_to_num},
    {"where", "where", "condition:T, input:T, other:T", B_FUNC, NULL},
    {"masked_fill", "masked_fill", "input:T, mask:T, value:f0", FM, NULL},
    /* reductions */
    RED(sum) RED(mean) RED(prod) RED(amax) RED(amin) RED(logsumexp) RED(all) RED(any)
    {"var", "var", "input:T, dim:dims=None, unbiased:x0=True, keepdim:b0=False, *, correction:x1=None", FM, fix_correction},
    {"std", "std", "input:T, dim:dims=None, unbiased:x0=True, keepdim:b0=False, *, correction:x1=None", FM, fix_correction},
    {"norm", "norm", "input:T, p:x0='fro', dim:dims=None, keepdim:b0=False", FM, fix_norm},
    {"max", "max", "input:T, dim:x0=None, keepdim:b0=False", FM, fix_max},
    {"min", "min", "input:T, dim:x0=None, keepdim:b0=False", FM, fix_min},
    {"argmax", "argmax", "input:T, dim:x0=None, keepdim:b0=False", FM, fix_argext},
    {"argmin", "argmin", "input:T, dim:x0=None, keepdim:b0=False", FM, fix_argext},
    {"cumsum", "cumsum", "input:T, dim:i0, *, dtype:x3=None", FM, fix_cast_dtype},
    {"cumprod", "cumprod", "input:T, dim:i0, *, dtype:x3=None", FM, fix_cast_dtype},
    {"softmax", "softmax", "input:T, dim:i0, *, dtype:x3=None", FM, fix_cast_dtype},
    {"log_softmax", "log_softmax", "input:T, dim:i0, *, dtype:x3=None", FM, fix_cast_dtype},
    /* views */
    {"view", "view", "input:T, shape:shape*", B_METHOD, NULL},
    {"transpose", "transpose", "input:T, dim0:i0, dim1:i1", FM, NULL},
    {"swapaxes", "transpose", "input:T, axis0:i0, axis1:i1", FM, NULL},
    {"t", "transpose", "input:T", FM, fix_transpose2},
    {"permute", "permute", "input:T, dims:shape*", FM, NULL},
    {"narrow", "narrow", "input:T, dim:i0, start:i1, length:i2", FM, NULL},
    {"select", "select", "input:T, dim:i0, index:i1", FM, NULL},
    {"expand", "expand", "input:T, size:shape*", B_METHOD, NULL},
    {"squeeze", "squeeze", "input:T, dim:x0=None", FM, fix_squeeze},
    {"unsqueeze", "unsqueeze", "input:T, dim:i0", FM, NULL},
    {"unflatten", "unflatten", "input:T, dim:i0, sizes:ints", FM, NULL},
    /* copying shape ops */
    {"cat", "cat", "tensors:TL, dim:i0=0", B_FUNC, NULL},
    {"concat", "cat", "tensors:TL, dim:i0=0", B_FUNC, NULL},
    {"stack", "stack", "tensors:TL, dim:i0=0", B_FUNC, NULL},
    {"flip", "flip", "input:T, dims:ints", FM, NULL},
    {"roll", "roll", "input:T, shifts:i0, dims:x0=None", FM, fix_roll},
    {"repeat", "repeat", "input:T, repeats:shape*", B_METHOD, NULL},
    {"tile", "tile", "input:T, dims:ints", FM, NULL},
    {"tril", "tril", "input:T, diagonal:i0=0", FM, NULL},
    {"triu", "triu", "input:T, diagonal:i0=0", FM, NULL},
    /* indexing */
    {"index_select", "index_select", "input:T, dim:i0, index:T", FM, NULL},
    {"gather", "gather", "input:T, dim:i0, index:T", FM, NULL},
    {"take_along_dim", "take_along_dim", "input:T, indices:T, dim:x0=None", FM, fix_take_along},
    {"scatter", "scatter", "input:T, dim:i0, index:T, src:T", FM, NULL},
    {"scatter_add", "scatter_add", "input:T, dim:i0, index:T, src:T", FM, NULL},
    {"index_add", "index_add", "input:T, dim:i0, index:T, source:T", FM, NULL},
    {"masked_select", "masked_select", "input:T, mask:T", FM, NULL},
    {"nonzero", "nonzero", "input:T", FM, NULL},
    {"sort", "sort", "input:T, dim:i0=-1, descending:b0=False", FM, NULL},
    {"argsort", "argsort", "input:T, dim:i0=-1, descending:b0=False", FM, NULL},
    {"topk", "topk", "input:T, k:i1, dim:i0=-1, largest:b0=True, sorted:b1=True", FM, NULL},
    /* linear algebra */
    {"matmul", "matmul", "input:T, other:T", FM, NULL},
    {"mm", "matmul", "input:T, mat2:T", FM, NULL},
    {"bmm", "bmm", "input:T, mat2:T", FM, NULL},
    {"addmm", "addmm", "input:T, mat1:T, mat2:T, *, beta:f0=1.0, alpha:f1=1.0", FM, NULL},
    {"baddbmm", "baddbmm", "input:T, batch1:T, batch2:T, *, beta:f0=1.0, alpha:f1=1.0", FM, NULL},
    {"outer", "outer", "input:T, vec2:T", FM, NULL},
    {"ger", "outer", "input:T, vec2:T", FM, NULL},
    {"dot", "dot", "input:T, other:T", FM, NULL},
    {"inner", "dot", "input:T, other:T", FM, NULL},
    /* random and copies */
    {"bernoulli", "bernoulli", "input:T", FM, NULL},
    {"clone", "clone", "input:T", FM, NULL},
};

#define N_BINDINGS (int)(sizeof bindings / sizeof bindings[0])
static compiled comp[N_BINDINGS];

/* ---- spec compilation ---------------------------------------------------------------------- */

static PyObject *parse_default(const char *s) {
  if (strcmp(s, "None") == 0) return Py_NewRef(Py_None);
  if (strcmp(s, "True") == 0) return Py_NewRef(Py_True);
  if (strcmp(s, "False") == 0) return Py_NewRef(Py_False);
  if (s[0] == '\'') {
    size_t n = strlen(s);
    return PyUnicode_FromStringAndSize(s + 1, (Py_ssize_t)(n >= 2 ? n - 2 : 0));
  }
  if (strcmp(s, "inf") == 0) return PyFloat_FromDouble(INFINITY);
  if (strcmp(s, "-inf") == 0) return PyFloat_FromDouble(-INFINITY);
  if (strcmp(s, "nan") == 0) return PyFloat_FromDouble(NAN);
  if (strchr(s, '.') || strchr(s, 'e')) return PyFloat_FromDouble(strtod(s, NULL));
  return PyLong_FromLongLong(strtoll(s, NULL, 10));
}

static int compile_spec(const binding *b, compiled *c) {
  memset(c, 0, sizeof *c);
  c->b = b;
  const tfw__op_def *op = tfw__op_find(b->op);
  if (!op) {
    PyErr_Format(PyExc_SystemError, "binding %s: no registry op %s", b->pyname, b->op);
    return -1;
  }
  c->id = op->id;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", b->spec);
  int kwonly = 0;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    if (strcmp(tok, "*") == 0) {
      kwonly = 1;
      continue;
    }
    if (c->nargs >= MAX_ARGS) {
      PyErr_Format(PyExc_SystemError, "binding %s: too many args", b->pyname);
      return -1;
    }
    argdef *a = &c->a[c->nargs++];
    char *colon = strchr(tok, ':');
    if (!colon) {
      PyErr_Format(PyExc_SystemError, "binding %s: bad spec", b->pyname);
      return -1;
    }
    *colon = 0;
    char *kind = colon + 1, *eq = strchr(kind, '=');
    if (eq) {
      *eq = 0;
      a->dflt = parse_default(eq + 1);
      if (!a->dflt) return -1;
    }
    /* names must outlive the buffer */
    PyObject *nm = PyUnicode_InternFromString(tok);
    if (!nm) return -1;
    a->name = PyUnicode_AsUTF8(nm); /* interned strings live for the interpreter's life */
    a->kwonly = kwonly;
    if (strcmp(kind, "T") == 0) a->kind = K_T;
    else if (strcmp(kind, "T?") == 0) a->kind = K_TOPT;
    else if (strcmp(kind, "TL") == 0) a->kind = K_TL;
    else if (strcmp(kind, "dims") == 0) a->kind = K_DIMS;
    else if (strcmp(kind, "ints") == 0) a->kind = K_INTS;
    else if (strcmp(kind, "shape*") == 0) {
      a->kind = K_SHAPE;
      c->has_varargs = 1;
    } else if (strcmp(kind, "str") == 0) a->kind = K_STR;
    else if (kind[0] == 'i' || kind[0] == 'f' || kind[0] == 'b' || kind[0] == 'x') {
      a->kind = kind[0] == 'i' ? K_I : kind[0] == 'f' ? K_F : kind[0] == 'b' ? K_B : K_X;
      a->slot = kind[1] - '0';
    } else {
      PyErr_Format(PyExc_SystemError, "binding %s: unknown kind %s", b->pyname, kind);
      return -1;
    }
    if (!kwonly && a->kind != K_SHAPE) c->n_positional++;
  }
  return 0;
}

/* ---- calling ---------------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  int idx;
  int inplace;
} OpFuncObject;

static PyObject *run_call(tfw__call *c, fixctx *f, int inplace, PyObject *self_obj) {
  tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
  tfw_status st = tfpy_run(c, out);
  if (st) return tfpy_raise();
  int n_out = c->op->n_out;
  if (f->post_reshape) {
    tfw_tensor *r = tfw_reshape(out[0], f->post_nd, f->post_shape);
    tfw_release(out[0]);
    out[0] = r;
    if (!r) return tfpy_raise();
  }
  if (inplace) {
    tfw_tensor *dst = (tfw_tensor *)c->in[0];
    (void)self_obj;
    if (dst != ((TensorObject *)self_obj)->t) dst = ((TensorObject *)self_obj)->t;
    int cat_s = tfw_dtype_is_floating(out[0]->dtype) ? 2 : out[0]->dtype == TFW_DTYPE_BOOL ? 0 : 1;
    int cat_d = tfw_dtype_is_floating(dst->dtype) ? 2 : dst->dtype == TFW_DTYPE_BOOL ? 0 : 1;
    if (cat_s > cat_d) {
      tfw_dtype sd = out[0]->dtype;
      tfw_release(out[0]);
      return tfpy_raise_status(TFW_EDTYPE, "%s_: result type %s can't be cast to the desired output "
                               "type %s", c->op->name, tfw_dtype_name(sd), tfw_dtype_name(dst->dtype));
    }
    if (out[0]->ndim != dst->ndim ||
        memcmp(out[0]->shape, dst->shape, sizeof(int64_t) * (size_t)dst->ndim) != 0) {
      tfw_release(out[0]);
      return tfpy_raise_status(TFW_ESHAPE, "%s_: the result's shape differs from the tensor's (an "
                               "in-place op cannot broadcast self)", c->op->name);
    }
    Py_BEGIN_ALLOW_THREADS
    st = tfw_copy_(dst, out[0]);
    Py_END_ALLOW_THREADS
    tfw_release(out[0]);
    if (st) return tfpy_raise();
    return Py_NewRef(self_obj);
  }
  if (n_out == 1) return tfpy_wrap(out[0]);
  PyObject *a = tfpy_wrap(out[0]);
  PyObject *b = tfpy_wrap(out[1]);
  if (!a || !b) {
    Py_XDECREF(a);
    Py_XDECREF(b);
    return NULL;
  }
  PyObject *tup = PyTuple_Pack(2, a, b);
  Py_DECREF(a);
  Py_DECREF(b);
  return tup;
}

static PyObject *opfunc_call(PyObject *selfobj, PyObject *args, PyObject *kwargs) {
  OpFuncObject *of = (OpFuncObject *)selfobj;
  const compiled *cp = &comp[of->idx];
  const char *fname = cp->b->pyname;
  PyObject *vals[MAX_ARGS] = {NULL};
  Py_ssize_t npos = PyTuple_GET_SIZE(args);
  PyObject *varargs = NULL;
  /* positional */
  Py_ssize_t p = 0;
  for (int k = 0; k < cp->nargs && p < npos; k++) {
    const argdef *a = &cp->a[k];
    if (a->kwonly) break;
    if (a->kind == K_SHAPE) {
      varargs = PyTuple_GetSlice(args, p, npos);
      if (!varargs) return NULL;
      vals[k] = varargs;
      p = npos;
      break;
    }
    vals[k] = PyTuple_GET_ITEM(args, p++);
  }
  if (p < npos) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)", fname,
                 cp->n_positional, npos);
    return NULL;
  }
  if (kwargs) {
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
      const char *ks = PyUnicode_AsUTF8(key);
      if (!ks) goto fail;
      int found = -1;
      for (int k = 0; k < cp->nargs; k++)
        if (strcmp(cp->a[k].name, ks) == 0) found = k;
      if (found < 0 && strcmp(ks, "out") == 0) {
        PyErr_Format(PyExc_TypeError, "%s(): out= is not supported", fname);
        goto fail;
      }
      if (found < 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%s'", fname, ks);
        goto fail;
      }
      if (vals[found]) {
        PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, ks);
        goto fail;
      }
      if (cp->a[found].kind == K_SHAPE) {
        varargs = PyTuple_Pack(1, value);
        if (!varargs) goto fail;
        vals[found] = varargs;
      } else {
        vals[found] = value;
      }
    }
  }
  tfw__call c;
  memset(&c, 0, sizeof c);
  c.op = &tfw__ops[cp->id];
  c.a.n_ints = -1;
  fixctx f;
  memset(&f, 0, sizeof f);
  tfw_tensor *held[TFW__MAX_IN];
  int n_held = 0;
  PyObject *res = NULL;
  for (int k = 0; k < cp->nargs; k++) {
    const argdef *a = &cp->a[k];
    PyObject *v = vals[k] ? vals[k] : a->dflt;
    if (!v) {
      if (a->kind == K_SHAPE) {
        PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", fname, a->name);
      } else {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %d)", fname,
                     a->name, k + 1);
      }
      goto done;
    }
    switch (a->kind) {
    case K_T:
    case K_TOPT: {
      if (a->kind == K_TOPT && v == Py_None) break;
      if (c.n_in >= TFW__MAX_IN) {
        PyErr_Format(PyExc_TypeError, "%s(): too many tensors", fname);
        goto done;
      }
      tfw_tensor *t = tfpy_to_tensor(v);
      if (!t) goto done;
      held[n_held++] = t;
      c.in[c.n_in++] = t;
      break;
    }
    case K_TL: {
      PyObject *seq = PySequence_Fast(v, "expected a sequence of tensors");
      if (!seq) goto done;
      Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
      if (n == 0 || n > TFW__MAX_IN) {
        Py_DECREF(seq);
        tfpy_raise_status(TFW_EVALUE, "%s(): expected 1 to %d tensors, got %zd", fname, TFW__MAX_IN, n);
        goto done;
      }
      for (Py_ssize_t j = 0; j < n; j++) {
        tfw_tensor *t = tfpy_to_tensor(PySequence_Fast_GET_ITEM(seq, j));
        if (!t) {
          Py_DECREF(seq);
          goto done;
        }
        held[n_held++] = t;
        c.in[c.n_in++] = t;
      }
      Py_DECREF(seq);
      break;
    }
    case K_DIMS:
      if (v == Py_None) break;
      /* fallthrough */
    case K_INTS:
    case K_SHAPE: {
      int n;
      PyObject *src = v;
      if (a->kind == K_SHAPE && PyTuple_Check(v) && PyTuple_GET_SIZE(v) == 1 &&
          !PyLong_Check(PyTuple_GET_ITEM(v, 0)))
        src = PyTuple_GET_ITEM(v, 0);
      if (tfpy_parse_int_list(src, a->name, c.a.ints, &n, TFW_MAX_DIMS)) goto done;
      c.a.n_ints = n;
      break;
    }
    case K_I: {
      long long x = PyLong_AsLongLong(v);
      if (x == -1 && PyErr_Occurred()) goto done;
      c.a.i[a->slot] = x;
      break;
    }
    case K_F: {
      double x = v == Py_None ? NAN : PyFloat_AsDouble(v);
      if (x == -1.0 && PyErr_Occurred()) goto done;
      c.a.f[a->slot] = x;
      break;
    }
    case K_B: {
      int x = PyObject_IsTrue(v);
      if (x < 0) goto done;
      c.a.b[a->slot] = x;
      break;
    }
    case K_STR: {
      const char *s = PyUnicode_AsUTF8(v);
      if (!s) goto done;
      snprintf(c.a.str, sizeof c.a.str, "%s", s);
      break;
    }
    case K_X:
      f.x[a->slot] = v;
      break;
    }
  }
  if (cp->b->fix && cp->b->fix(&c, &f)) goto done;
  res = run_call(&c, &f, of->inplace, of->inplace ? PyTuple_GET_ITEM(args, 0) : NULL);
done:
  for (int k = 0; k < n_held; k++) tfw_release(held[k]);
  for (int k = 0; k < f.n_owned; k++) tfw_release(f.owned[k]);
  Py_XDECREF(varargs);
  return res;
fail:
  Py_XDECREF(varargs);
  return NULL;
}

static PyObject *opfunc_descr_get(PyObject *self, PyObject *obj, PyObject *type) {
  if (!obj || obj == Py_None) return Py_NewRef(self);
  return PyMethod_New(self, obj);
}

static PyObject *opfunc_repr(PyObject *self) {
  OpFuncObject *of = (OpFuncObject *)self;
  return PyUnicode_FromFormat("<tenflower op %s%s>", comp[of->idx].b->pyname, of->inplace ? "_" : "");
}

static PyObject *opfunc_get_doc(PyObject *self, void *c) {
  OpFuncObject *of = (OpFuncObject *)self;
  const compiled *cp = &comp[of->idx];
  return PyUnicode_FromFormat("%s%s(%s)\n\nRegistry op '%s': %s", cp->b->pyname,
                              of->inplace ? "_" : "", cp->b->spec, tfw__ops[cp->id].name,
                              tfw__ops[cp->id].doc);
}
static PyObject *opfunc_get_name(PyObject *self, void *c) {
  OpFuncObject *of = (OpFuncObject *)self;
  return PyUnicode_FromFormat("%s%s", comp[of->idx].b->pyname, of->inplace ? "_" : "");
}

static PyGetSetDef opfunc_getset[] = {
    {"__doc__", opfunc_get_doc, NULL, NULL, NULL},
    {"__name__", opfunc_get_name, NULL, NULL, NULL},
    {NULL},
};

PyTypeObject TfpyOpFunc_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tenflower._C.op",
    .tp_basicsize = sizeof(OpFuncObject),
    .tp_repr = opfunc_repr,
    .tp_call = opfunc_call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_descr_get = opfunc_descr_get,
    .tp_getset = opfunc_getset,
};

static PyObject *new_opfunc(int idx, int inplace) {
  OpFuncObject *o = PyObject_New(OpFuncObject, &TfpyOpFunc_Type);
  if (!o) return NULL;
  o->idx = idx;
  o->inplace = inplace;
  return (PyObject *)o;
}

/* ---- special functions (public composites, not single registry calls) ------------------------- */

static PyObject *s_reshape(PyObject *m, PyObject *args) { /* reshape(input, *shape) */
  if (PyTuple_GET_SIZE(args) < 1 || !Tfpy_Check(PyTuple_GET_ITEM(args, 0))) {
    PyErr_SetString(PyExc_TypeError, "reshape(input, *shape)");
    return NULL;
  }
  int64_t shape[TFW_MAX_DIMS];
  int nd;
  if (tfpy_parse_shape(args, 1, shape, &nd)) return NULL;
  tfw_tensor *r;
  tfw_tensor *t = ((TensorObject *)PyTuple_GET_ITEM(args, 0))->t;
  Py_BEGIN_ALLOW_THREADS
  r = tfw_reshape(t, nd, shape);
  Py_END_ALLOW_THREADS
  return tfpy_wrap(r);
}

static PyObject *s_flatten(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"input", "start_dim", "end_dim", NULL};
  PyObject *in;
  int s = 0, e = -1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!|ii:flatten", kw, &TfpyTensor_Type, &in, &s, &e))
    return NULL;
  return tfpy_wrap(tfw_flatten(((TensorObject *)in)->t, s, e));
}

static PyObject *list_of(tfw_tensor **list, int count) {
  PyObject *tup = PyTuple_New(count);
  if (!tup) {
    tfw_tensor_list_free(list, count);
    return NULL;
  }
  for (int k = 0; k < count; k++) {
    PyTuple_SET_ITEM(tup, k, tfpy_wrap(tfw_retain(list[k])));
    if (!PyTuple_GET_ITEM(tup, k)) {
      tfw_tensor_list_free(list, count);
      Py_DECREF(tup);
      return NULL;
    }
  }
  tfw_tensor_list_free(list, count);
  return tup;
}

static PyObject *s_split(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"tensor", "split_size_or_sections", "dim", NULL};
  PyObject *in, *sz;
  int dim = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O|i:split", kw, &TfpyTensor_Type, &in, &sz, &dim))
    return NULL;
  tfw_tensor *t = ((TensorObject *)in)->t;
  if (!PyLong_Check(sz)) {
    /* sections: narrow pieces */
    int64_t secs[64];
    int n;
    if (tfpy_parse_int_list(sz, "split_size_or_sections", secs, &n, 64)) return NULL;
    PyObject *tup = PyTuple_New(n);
    if (!tup) return NULL;
    int64_t start = 0;
    for (int k = 0; k < n; k++) {
      PyObject *piece = tfpy_wrap(tfw_narrow(t, dim, start, secs[k]));
      if (!piece) {
        Py_DECREF(tup);
        return NULL;
      }
      PyTuple_SET_ITEM(tup, k, piece);
      start += secs[k];
    }
    int nd = tfw_tensor_ndim(t);
    int64_t size = nd ? tfw_tensor_size(t, dim) : 0;
    if (start != size) {
      Py_DECREF(tup);
      return tfpy_raise_status(TFW_ESHAPE, "split: sections sum to %lld but dim %d has size %lld",
                               (long long)start, dim, (long long)size);
    }
    return tup;
  }
  long long s = PyLong_AsLongLong(sz);
  tfw_tensor **list;
  int count;
  if (tfw_split(t, s, dim, &list, &count)) return tfpy_raise();
  return list_of(list, count);
}

static PyObject *s_chunk(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"input", "chunks", "dim", NULL};
  PyObject *in;
  int chunks, dim = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!i|i:chunk", kw, &TfpyTensor_Type, &in, &chunks, &dim))
    return NULL;
  tfw_tensor **list;
  int count;
  if (tfw_chunk(((TensorObject *)in)->t, chunks, dim, &list, &count)) return tfpy_raise();
  return list_of(list, count);
}

static PyObject *s_einsum(PyObject *m, PyObject *args) {
  Py_ssize_t n = PyTuple_GET_SIZE(args);
  if (n < 2 || !PyUnicode_Check(PyTuple_GET_ITEM(args, 0))) {
    PyErr_SetString(PyExc_TypeError, "einsum(equation, *operands)");
    return NULL;
  }
  const char *eq = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0));
  if (!eq) return NULL;
  PyObject *ops = n == 2 && !Tfpy_Check(PyTuple_GET_ITEM(args, 1)) ? PyTuple_GET_ITEM(args, 1) : NULL;
  PyObject *seq = ops ? PySequence_Fast(ops, "einsum operands") : PyTuple_GetSlice(args, 1, n);
  if (!seq) return NULL;
  Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
  tfw_tensor *ts[TFW__MAX_IN];
  if (k > TFW__MAX_IN) {
    Py_DECREF(seq);
    return tfpy_raise_status(TFW_EVALUE, "einsum: at most %d operands", TFW__MAX_IN);
  }
  for (Py_ssize_t j = 0; j < k; j++) {
    PyObject *o = PySequence_Fast_GET_ITEM(seq, j);
    if (!Tfpy_Check(o)) {
      Py_DECREF(seq);
      PyErr_SetString(PyExc_TypeError, "einsum: operands must be Tensors");
      return NULL;
    }
    ts[j] = ((TensorObject *)o)->t;
  }
  tfw_tensor *r;
  Py_BEGIN_ALLOW_THREADS
  r = tfw_einsum(eq, (int)k, ts);
  Py_END_ALLOW_THREADS
  Py_DECREF(seq);
  return tfpy_wrap(r);
}

static PyObject *s_pad(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"input", "pad", "mode", "value", NULL};
  PyObject *in, *pads;
  const char *mode = "constant";
  double value = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O|sd:pad", kw, &TfpyTensor_Type, &in, &pads,
                                   &mode, &value))
    return NULL;
  int64_t p[2 * TFW_MAX_DIMS];
  int n;
  if (tfpy_parse_int_list(pads, "pad", p, &n, 2 * TFW_MAX_DIMS)) return NULL;
  if (n % 2) return tfpy_raise_status(TFW_EVALUE, "pad: the pad list has odd length %d", n);
  tfw_pad_mode pm;
  if (strcmp(mode, "constant") == 0) pm = TFW_PAD_CONSTANT;
  else if (strcmp(mode, "reflect") == 0) pm = TFW_PAD_REFLECT;
  else if (strcmp(mode, "replicate") == 0) pm = TFW_PAD_REPLICATE;
  else return tfpy_raise_status(TFW_EUNSUPPORTED, "pad: mode '%s' is not supported (constant, "
                                "reflect, replicate)", mode);
  tfw_tensor *r;
  Py_BEGIN_ALLOW_THREADS
  r = tfw_pad(((TensorObject *)in)->t, n / 2, p, pm, value);
  Py_END_ALLOW_THREADS
  return tfpy_wrap(r);
}

/* _op(name, *tensors, ints=None, i=(), f=(), b=(), dtype=None, str=None) */
PyObject *tfpy_raw_op(PyObject *mod, PyObject *args, PyObject *kwargs) {
  Py_ssize_t n = PyTuple_GET_SIZE(args);
  if (n < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(args, 0))) {
    PyErr_SetString(PyExc_TypeError, "_op(name, *tensors, ints=None, i=(), f=(), b=(), dtype=None, "
                    "str=None)");
    return NULL;
  }
  const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0));
  const tfw__op_def *op = name ? tfw__op_find(name) : NULL;
  if (!op) return tfpy_raise_status(TFW_EVALUE, "_op: no registry op named '%s'", name ? name : "?");
  if (n - 1 > TFW__MAX_IN)
    return tfpy_raise_status(TFW_EVALUE, "_op: at most %d tensors", TFW__MAX_IN);
  tfw__call c;
  memset(&c, 0, sizeof c);
  c.op = op;
  c.a.n_ints = -1;
  tfw_tensor *held[TFW__MAX_IN];
  int n_held = 0;
  PyObject *res = NULL;
  fixctx f;
  memset(&f, 0, sizeof f);
  for (Py_ssize_t k = 1; k < n; k++) {
    tfw_tensor *t = tfpy_to_tensor(PyTuple_GET_ITEM(args, k));
    if (!t) goto done;
    held[n_held++] = t;
    c.in[c.n_in++] = t;
  }
  if (kwargs) {
    PyObject *v;
    if ((v = PyDict_GetItemString(kwargs, "ints")) && v != Py_None) {
      int ni;
      if (tfpy_parse_int_list(v, "ints", c.a.ints, &ni, TFW_MAX_DIMS)) goto done;
      c.a.n_ints = ni;
    }
    if ((v = PyDict_GetItemString(kwargs, "i"))) {
      int ni;
      int64_t tmp[8];
      if (tfpy_parse_int_list(v, "i", tmp, &ni, 4)) goto done;
      for (int k = 0; k < ni; k++) c.a.i[k] = tmp[k];
    }
    if ((v = PyDict_GetItemString(kwargs, "f"))) {
      PyObject *seq = PySequence_Fast(v, "f must be a sequence");
      if (!seq) goto done;
      Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
      for (Py_ssize_t k = 0; k < m && k < 4; k++) {
        c.a.f[k] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, k));
        if (c.a.f[k] == -1.0 && PyErr_Occurred()) {
          Py_DECREF(seq);
          goto done;
        }
      }
      Py_DECREF(seq);
    }
    if ((v = PyDict_GetItemString(kwargs, "b"))) {
      PyObject *seq = PySequence_Fast(v, "b must be a sequence");
      if (!seq) goto done;
      Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
      for (Py_ssize_t k = 0; k < m && k < 2; k++) c.a.b[k] = PyObject_IsTrue(PySequence_Fast_GET_ITEM(seq, k));
      Py_DECREF(seq);
    }
    if ((v = PyDict_GetItemString(kwargs, "dtype")) && v != Py_None) {
      if (tfpy_parse_dtype(v, TFW_DTYPE_F32, &c.a.dtype)) goto done;
    }
    if ((v = PyDict_GetItemString(kwargs, "str")) && v != Py_None) {
      const char *s = PyUnicode_AsUTF8(v);
      if (!s) goto done;
      snprintf(c.a.str, sizeof c.a.str, "%s", s);
    }
  }
  res = run_call(&c, &f, 0, NULL);
done:
  for (int k = 0; k < n_held; k++) tfw_release(held[k]);
  return res;
}

static PyObject *s_registry(PyObject *m, PyObject *unused) {
  PyObject *lst = PyList_New(TFW__OP_COUNT);
  if (!lst) return NULL;
  for (int k = 0; k < TFW__OP_COUNT; k++) {
    const tfw__op_def *op = &tfw__ops[k];
    PyObject *d = Py_BuildValue("{sssisisisOsOss}", "name", op->name, "n_in", op->n_in, "n_out",
                                op->n_out, "flags", (int)op->flags, "differentiable",
                                (op->flags & TFW__OPF_DIFF) ? Py_True : Py_False, "random",
                                (op->flags & TFW__OPF_RANDOM) ? Py_True : Py_False, "doc", op->doc);
    if (!d) {
      Py_DECREF(lst);
      return NULL;
    }
    PyList_SET_ITEM(lst, k, d);
  }
  return lst;
}

static PyObject *s_bindings(PyObject *m, PyObject *unused) {
  PyObject *lst = PyList_New(N_BINDINGS);
  if (!lst) return NULL;
  for (int k = 0; k < N_BINDINGS; k++) {
    const binding *b = &bindings[k];
    PyList_SET_ITEM(lst, k, Py_BuildValue("(sssii)", b->pyname, b->op, b->spec,
                                          (b->flags & B_FUNC) != 0, (b->flags & B_METHOD) != 0));
  }
  return lst;
}

static PyMethodDef special_methods[] = {
    {"reshape", s_reshape, METH_VARARGS, "reshape(input, *shape): a view when the strides allow, else a copy"},
    {"flatten", (PyCFunction)(void (*)(void))s_flatten, METH_VARARGS | METH_KEYWORDS, "flatten(input, start_dim=0, end_dim=-1)"},
    {"split", (PyCFunction)(void (*)(void))s_split, METH_VARARGS | METH_KEYWORDS, "split(tensor, split_size_or_sections, dim=0)"},
    {"chunk", (PyCFunction)(void (*)(void))s_chunk, METH_VARARGS | METH_KEYWORDS, "chunk(input, chunks, dim=0)"},
    {"einsum", s_einsum, METH_VARARGS, "einsum(equation, *operands)"},
    {"_pad", (PyCFunction)(void (*)(void))s_pad, METH_VARARGS | METH_KEYWORDS, "pad(input, pad, mode='constant', value=0)"},
    {"_registry", s_registry, METH_NOARGS, "the op registry: a list of dicts"},
    {"_bindings", s_bindings, METH_NOARGS, "the binding table: (python name, registry op, signature, function, method)"},
    {NULL},
};

int tfpy_ops_init(PyObject *module) {
  PyObject *tdict = TfpyTensor_Type.tp_dict;
  for (int k = 0; k < N_BINDINGS; k++) {
    if (compile_spec(&bindings[k], &comp[k])) return -1;
    PyObject *fn = new_opfunc(k, 0);
    if (!fn) return -1;
    if ((bindings[k].flags & B_FUNC) && PyModule_AddObjectRef(module, bindings[k].pyname, fn) < 0) {
      Py_DECREF(fn);
      return -1;
    }
    if ((bindings[k].flags & B_METHOD) && PyDict_SetItemString(tdict, bindings[k].pyname, fn) < 0) {
      Py_DECREF(fn);
      return -1;
    }
    Py_DECREF(fn);
    if (bindings[k].flags & B_INPLACE) {
      PyObject *fi = new_opfunc(k, 1);
      if (!fi) return -1;
      char name[64];
      snprintf(name, sizeof name, "%s_", bindings[k].pyname);
      int r = PyDict_SetItemString(tdict, name, fi);
      Py_DECREF(fi);
      if (r < 0) return -1;
    }
  }
  for (PyMethodDef *d = special_methods; d->ml_name; d++) {
    PyObject *fn = PyCFunction_NewEx(d, NULL, NULL);
    if (!fn) return -1;
    if (PyModule_AddObject(module, d->ml_name, fn) < 0) {
      Py_DECREF(fn);
      return -1;
    }
  }
  PyType_Modified(&TfpyTensor_Type);
  return 0;
}
