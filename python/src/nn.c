/* tenflower._C: the neural-network functionals, initialisers and C-backed modules that
 * python/tenflower/nn builds on.
 *
 * The functions here take positional arguments only, all given (the Python layer in
 * tenflower/nn/functional.py parses PyTorch's signatures, defaults and int-or-tuple sizes)
 * and call the library's public functionals (include/tenflower/nn_functional_*.h) with the
 * GIL released. C-backed modules (_CModule: MultiheadAttention, TransformerEncoderLayer,
 * LSTM, GRU) wrap a tfw_module; their parameters are shared with Python as tensors. */
#include "tfpy.h"

#define T(o) (((TensorObject *)(o))->t)

/* ---- argument converters (PyArg_ParseTuple "O&") ----------------------------------------- */

static int cv_tensor(PyObject *o, void *out) {
  if (!Tfpy_Check(o)) {
    PyErr_Format(PyExc_TypeError, "expected a Tensor, got %.100s", Py_TYPE(o)->tp_name);
    return 0;
  }
  *(tfw_tensor **)out = T(o);
  return 1;
}

static int cv_tensor_opt(PyObject *o, void *out) {
  if (o == Py_None) {
    *(tfw_tensor **)out = NULL;
    return 1;
  }
  return cv_tensor(o, out);
}

typedef struct {
  int64_t v[TFW_MAX_DIMS];
  int n;
} ilist;

static int cv_ilist(PyObject *o, void *out) {
  ilist *l = out;
  if (o == Py_None) {
    l->n = 0;
    return 1;
  }
  return tfpy_parse_int_list(o, "size", l->v, &l->n, TFW_MAX_DIMS) == 0;
}

/* an int or a pair -> int64_t[2] */
static int cv_pair(PyObject *o, void *out) {
  ilist l;
  if (tfpy_parse_int_list(o, "size", l.v, &l.n, 2) < 0) return 0;
  int64_t *p = out;
  if (l.n == 1) p[0] = p[1] = l.v[0];
  else if (l.n == 2) p[0] = l.v[0], p[1] = l.v[1];
  else {
    PyErr_SetString(PyExc_ValueError, "expected an int or a pair of ints");
    return 0;
  }
  return 1;
}

#define CALLT(expr)                                                                              \
  do {                                                                                           \
    tfw_tensor *r_;                                                                              \
    Py_BEGIN_ALLOW_THREADS                                                                       \
    r_ = (expr);                                                                                 \
    Py_END_ALLOW_THREADS                                                                         \
    return tfpy_wrap(r_);                                                                        \
  } while (0)

/* ---- convolution and pooling ---------------------------------------------------------------- */

static PyObject *f_conv1d(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  long long s, p, d, g;
  if (!PyArg_ParseTuple(a, "O&O&O&LLLL", cv_tensor, &x, cv_tensor, &w, cv_tensor_opt, &b, &s, &p,
                        &d, &g))
    return NULL;
  CALLT(tfw_conv1d(x, w, b, s, p, d, g));
}

static PyObject *f_conv1d_same(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  long long d, g;
  if (!PyArg_ParseTuple(a, "O&O&O&LL", cv_tensor, &x, cv_tensor, &w, cv_tensor_opt, &b, &d, &g))
    return NULL;
  CALLT(tfw_conv1d_same(x, w, b, d, g));
}

static PyObject *f_conv2d(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  int64_t s[2], p[2], d[2];
  long long g;
  if (!PyArg_ParseTuple(a, "O&O&O&O&O&O&L", cv_tensor, &x, cv_tensor, &w, cv_tensor_opt, &b,
                        cv_pair, s, cv_pair, p, cv_pair, d, &g))
    return NULL;
  CALLT(tfw_conv2d(x, w, b, s, p, d, g));
}

static PyObject *f_conv2d_same(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  int64_t d[2];
  long long g;
  if (!PyArg_ParseTuple(a, "O&O&O&O&L", cv_tensor, &x, cv_tensor, &w, cv_tensor_opt, &b, cv_pair,
                        d, &g))
    return NULL;
  CALLT(tfw_conv2d_same(x, w, b, d, g));
}

static PyObject *f_conv_transpose1d(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  long long s, p, op, g, d;
  if (!PyArg_ParseTuple(a, "O&O&O&LLLLL", cv_tensor, &x, cv_tensor, &w, cv_tensor_opt, &b, &s, &p,
                        &op, &g, &d))
    return NULL;
  CALLT(tfw_conv_transpose1d(x, w, b, s, p, op, g, d));
}

static PyObject *f_conv_transpose2d(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  int64_t s[2], p[2], op[2], d[2];
  long long g;
  if (!PyArg_ParseTuple(a, "O&O&O&O&O&O&LO&", cv_tensor, &x, cv_tensor, &w, cv_tensor_opt, &b,
                        cv_pair, s, cv_pair, p, cv_pair, op, &g, cv_pair, d))
    return NULL;
  CALLT(tfw_conv_transpose2d(x, w, b, s, p, op, g, d));
}

static PyObject *pool_result(tfw_tensor *y, tfw_tensor *idx, int want) {
  if (!y) return tfpy_raise();
  PyObject *py = tfpy_wrap(y);
  if (!want || !py) return py;
  PyObject *pi = tfpy_wrap(idx);
  if (!pi) {
    Py_DECREF(py);
    return NULL;
  }
  return Py_BuildValue("(NN)", py, pi);
}

static PyObject *f_max_pool1d(PyObject *m, PyObject *a) {
  tfw_tensor *x, *y, *idx = NULL;
  long long k, s, p, d;
  int ceil, ret;
  if (!PyArg_ParseTuple(a, "O&LLLLpp", cv_tensor, &x, &k, &s, &p, &d, &ceil, &ret)) return NULL;
  Py_BEGIN_ALLOW_THREADS
  y = tfw_max_pool1d(x, k, s, p, d, ceil, ret ? &idx : NULL);
  Py_END_ALLOW_THREADS
  return pool_result(y, idx, ret);
}

static PyObject *f_max_pool2d(PyObject *m, PyObject *a) {
  tfw_tensor *x, *y, *idx = NULL;
  int64_t k[2], s[2], p[2], d[2];
  int ceil, ret;
  if (!PyArg_ParseTuple(a, "O&O&O&O&O&pp", cv_tensor, &x, cv_pair, k, cv_pair, s, cv_pair, p,
                        cv_pair, d, &ceil, &ret))
    return NULL;
  Py_BEGIN_ALLOW_THREADS
  y = tfw_max_pool2d(x, k, s, p, d, ceil, ret ? &idx : NULL);
  Py_END_ALLOW_THREADS
  return pool_result(y, idx, ret);
}

static PyObject *f_avg_pool1d(PyObject *m, PyObject *a) {
  tfw_tensor *x;
  long long k, s, p;
  int ceil, cip;
  if (!PyArg_ParseTuple(a, "O&LLLpp", cv_tensor, &x, &k, &s, &p, &ceil, &cip)) return NULL;
  CALLT(tfw_avg_pool1d(x, k, s, p, ceil, cip));
}

static PyObject *f_avg_pool2d(PyObject *m, PyObject *a) {
  tfw_tensor *x;
  int64_t k[2], s[2], p[2];
  int ceil, cip;
  long long div;
  if (!PyArg_ParseTuple(a, "O&O&O&O&ppL", cv_tensor, &x, cv_pair, k, cv_pair, s, cv_pair, p, &ceil,
                        &cip, &div))
    return NULL;
  CALLT(tfw_avg_pool2d(x, k, s, p, ceil, cip, div));
}

static PyObject *f_adaptive_avg_pool2d(PyObject *m, PyObject *a) {
  tfw_tensor *x;
  int64_t o[2];
  if (!PyArg_ParseTuple(a, "O&O&", cv_tensor, &x, cv_pair, o)) return NULL;
  CALLT(tfw_adaptive_avg_pool2d(x, o));
}

/* ---- normalisation, embedding, dropout, attention ------------------------------------------ */

static PyObject *f_layer_norm(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  ilist s;
  double eps;
  if (!PyArg_ParseTuple(a, "O&O&O&O&d", cv_tensor, &x, cv_ilist, &s, cv_tensor_opt, &w,
                        cv_tensor_opt, &b, &eps))
    return NULL;
  CALLT(tfw_layer_norm(x, s.n, s.v, w, b, eps));
}

static PyObject *f_rms_norm(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w;
  ilist s;
  double eps;
  if (!PyArg_ParseTuple(a, "O&O&O&d", cv_tensor, &x, cv_ilist, &s, cv_tensor_opt, &w, &eps))
    return NULL;
  CALLT(tfw_rms_norm(x, s.n, s.v, w, eps));
}

static PyObject *f_group_norm(PyObject *m, PyObject *a) {
  tfw_tensor *x, *w, *b;
  long long g;
  double eps;
  if (!PyArg_ParseTuple(a, "O&LO&O&d", cv_tensor, &x, &g, cv_tensor_opt, &w, cv_tensor_opt, &b,
                        &eps))
    return NULL;
  CALLT(tfw_group_norm(x, g, w, b, eps));
}

static PyObject *f_batch_norm(PyObject *m, PyObject *a) {
  tfw_tensor *x, *rm, *rv, *w, *b;
  int training;
  double mom, eps;
  if (!PyArg_ParseTuple(a, "O&O&O&O&O&pdd", cv_tensor, &x, cv_tensor_opt, &rm, cv_tensor_opt, &rv,
                        cv_tensor_opt, &w, cv_tensor_opt, &b, &training, &mom, &eps))
    return NULL;
  CALLT(tfw_batch_norm(x, rm, rv, w, b, training, mom, eps));
}

static PyObject *f_embedding(PyObject *m, PyObject *a) {
  tfw_tensor *idx, *w;
  PyObject *pad;
  double max_norm, norm_type;
  if (!PyArg_ParseTuple(a, "O&O&Odd", cv_tensor, &idx, cv_tensor, &w, &pad, &max_norm, &norm_type))
    return NULL;
  int64_t p = TFW_EMBEDDING_NO_PADDING;
  if (pad != Py_None) {
    p = PyLong_AsLongLong(pad);
    if (p == -1 && PyErr_Occurred()) return NULL;
  }
  CALLT(tfw_embedding(idx, w, p, max_norm, norm_type));
}

static PyObject *f_dropout(PyObject *m, PyObject *a) {
  tfw_tensor *x;
  double p;
  int training;
  if (!PyArg_ParseTuple(a, "O&dp", cv_tensor, &x, &p, &training)) return NULL;
  CALLT(tfw_dropout(x, p, training));
}

static PyObject *f_sdpa(PyObject *m, PyObject *a) {
  tfw_tensor *q, *k, *v, *mask;
  double p, scale;
  int causal;
  if (!PyArg_ParseTuple(a, "O&O&O&O&dpd", cv_tensor, &q, cv_tensor, &k, cv_tensor, &v,
                        cv_tensor_opt, &mask, &p, &causal, &scale))
    return NULL;
  CALLT(tfw_scaled_dot_product_attention(q, k, v, mask, p, causal, scale));
}

/* ---- activations: (x), (x, a), (x, a, b) ------------------------------------------------- */

typedef enum { A0, A1, A2, AI } act_arity;
typedef struct {
  const char *name;
  act_arity arity;
  void *fn;
} act_row;

static const act_row k_acts[] = {
    {"leaky_relu", A1, (void *)tfw_leaky_relu}, {"elu", A1, (void *)tfw_elu},
    {"selu", A0, (void *)tfw_selu},             {"celu", A1, (void *)tfw_celu},
    {"gelu_tanh", A0, (void *)tfw_gelu_tanh},   {"silu", A0, (void *)tfw_silu},
    {"mish", A0, (void *)tfw_mish},             {"hardswish", A0, (void *)tfw_hardswish},
    {"hardsigmoid", A0, (void *)tfw_hardsigmoid}, {"softplus", A2, (void *)tfw_softplus},
    {"softsign", A0, (void *)tfw_softsign},     {"glu", AI, (void *)tfw_glu},
};

static PyObject *f_act(PyObject *m, PyObject *a) {
  const char *name;
  tfw_tensor *x, *y = NULL;
  double p0 = 0, p1 = 0;
  if (!PyArg_ParseTuple(a, "sO&|dd", &name, cv_tensor, &x, &p0, &p1)) return NULL;
  for (size_t i = 0; i < sizeof k_acts / sizeof k_acts[0]; i++) {
    const act_row *r = &k_acts[i];
    if (strcmp(r->name, name) != 0) continue;
    Py_BEGIN_ALLOW_THREADS
    switch (r->arity) {
    case A0: y = ((tfw_tensor * (*)(const tfw_tensor *)) r->fn)(x); break;
    case A1: y = ((tfw_tensor * (*)(const tfw_tensor *, double)) r->fn)(x, p0); break;
    case A2: y = ((tfw_tensor * (*)(const tfw_tensor *, double, double)) r->fn)(x, p0, p1); break;
    case AI: y = ((tfw_tensor * (*)(const tfw_tensor *, int)) r->fn)(x, (int)p0); break;
    }
    Py_END_ALLOW_THREADS
    return tfpy_wrap(y);
  }
  PyErr_Format(PyExc_ValueError, "unknown activation '%s'", name);
  return NULL;
}

/* ---- losses ---------------------------------------------------------------------------------- */

static PyObject *f_cross_entropy(PyObject *m, PyObject *a) {
  tfw_tensor *x, *t, *w;
  const char *red;
  long long ign;
  double ls;
  if (!PyArg_ParseTuple(a, "O&O&O&sLd", cv_tensor, &x, cv_tensor, &t, cv_tensor_opt, &w, &red,
                        &ign, &ls))
    return NULL;
  CALLT(tfw_cross_entropy(x, t, w, red, ign, ls));
}

static PyObject *f_nll_loss(PyObject *m, PyObject *a) {
  tfw_tensor *x, *t, *w;
  const char *red;
  long long ign;
  if (!PyArg_ParseTuple(a, "O&O&O&sL", cv_tensor, &x, cv_tensor, &t, cv_tensor_opt, &w, &red,
                        &ign))
    return NULL;
  CALLT(tfw_nll_loss(x, t, w, red, ign));
}

/* (input, target, reduction[, param]) losses */
static PyObject *f_loss2(PyObject *m, PyObject *a) {
  const char *name, *red;
  tfw_tensor *x, *t;
  double p = 1.0;
  if (!PyArg_ParseTuple(a, "sO&O&s|d", &name, cv_tensor, &x, cv_tensor, &t, &red, &p)) return NULL;
  tfw_tensor *y;
  int which = !strcmp(name, "mse") ? 0 : !strcmp(name, "l1") ? 1 : !strcmp(name, "smooth_l1") ? 2
            : !strcmp(name, "huber") ? 3 : !strcmp(name, "kl_div") ? 4 : -1;
  if (which < 0) {
    PyErr_Format(PyExc_ValueError, "unknown loss '%s'", name);
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  switch (which) {
  case 0: y = tfw_mse_loss(x, t, red); break;
  case 1: y = tfw_l1_loss(x, t, red); break;
  case 2: y = tfw_smooth_l1_loss(x, t, red, p); break;
  case 3: y = tfw_huber_loss(x, t, red, p); break;
  default: y = tfw_kl_div(x, t, red, p != 0); break;
  }
  Py_END_ALLOW_THREADS
  return tfpy_wrap(y);
}

static PyObject *f_bce(PyObject *m, PyObject *a) {
  tfw_tensor *x, *t, *w;
  const char *red;
  if (!PyArg_ParseTuple(a, "O&O&O&s", cv_tensor, &x, cv_tensor, &t, cv_tensor_opt, &w, &red))
    return NULL;
  CALLT(tfw_binary_cross_entropy(x, t, w, red));
}

static PyObject *f_bce_logits(PyObject *m, PyObject *a) {
  tfw_tensor *x, *t, *w, *pw;
  const char *red;
  if (!PyArg_ParseTuple(a, "O&O&O&O&s", cv_tensor, &x, cv_tensor, &t, cv_tensor_opt, &w,
                        cv_tensor_opt, &pw, &red))
    return NULL;
  CALLT(tfw_binary_cross_entropy_with_logits(x, t, w, pw, red));
}

static PyObject *f_margin_loss(PyObject *m, PyObject *a) {
  const char *name, *red;
  tfw_tensor *x1, *x2, *t;
  double margin;
  if (!PyArg_ParseTuple(a, "sO&O&O&ds", &name, cv_tensor, &x1, cv_tensor, &x2, cv_tensor, &t,
                        &margin, &red))
    return NULL;
  int cos = !strcmp(name, "cosine_embedding");
  CALLT(cos ? tfw_cosine_embedding_loss(x1, x2, t, margin, red)
            : tfw_margin_ranking_loss(x1, x2, t, margin, red));
}

static PyObject *f_triplet(PyObject *m, PyObject *a) {
  tfw_tensor *an, *po, *ne;
  double margin, p, eps;
  int swap;
  const char *red;
  if (!PyArg_ParseTuple(a, "O&O&O&dddps", cv_tensor, &an, cv_tensor, &po, cv_tensor, &ne, &margin,
                        &p, &eps, &swap, &red))
    return NULL;
  CALLT(tfw_triplet_margin_loss(an, po, ne, margin, p, eps, swap, red));
}

/* ---- initialisers ----------------------------------------------------------------------------- */

static PyObject *status_none(tfw_status st) {
  if (st) return tfpy_raise();
  Py_RETURN_NONE;
}

static PyObject *f_init(PyObject *m, PyObject *a) {
  const char *name;
  tfw_tensor *t;
  double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
  const char *nl = "leaky_relu";
  int fan_out = 0;
  if (!PyArg_ParseTuple(a, "sO&|ddddsp", &name, cv_tensor, &t, &p0, &p1, &p2, &p3, &nl, &fan_out))
    return NULL;
  tfw_status st = TFW_OK;
  int unknown = 0;
  tfw_fan_mode mode = fan_out ? TFW_FAN_OUT : TFW_FAN_IN;
  Py_BEGIN_ALLOW_THREADS
  if (!strcmp(name, "uniform_")) st = tfw_init_uniform_(t, p0, p1);
  else if (!strcmp(name, "normal_")) st = tfw_init_normal_(t, p0, p1);
  else if (!strcmp(name, "constant_")) st = tfw_init_constant_(t, p0);
  else if (!strcmp(name, "zeros_")) st = tfw_init_zeros_(t);
  else if (!strcmp(name, "ones_")) st = tfw_init_ones_(t);
  else if (!strcmp(name, "xavier_uniform_")) st = tfw_init_xavier_uniform_(t, p0);
  else if (!strcmp(name, "xavier_normal_")) st = tfw_init_xavier_normal_(t, p0);
  else if (!strcmp(name, "kaiming_uniform_")) st = tfw_init_kaiming_uniform_(t, p0, mode, nl);
  else if (!strcmp(name, "kaiming_normal_")) st = tfw_init_kaiming_normal_(t, p0, mode, nl);
  else if (!strcmp(name, "trunc_normal_")) st = tfw_init_trunc_normal_(t, p0, p1, p2, p3);
  else if (!strcmp(name, "orthogonal_")) st = tfw_init_orthogonal_(t, p0);
  else unknown = 1;
  Py_END_ALLOW_THREADS
  if (unknown) {
    PyErr_Format(PyExc_ValueError, "unknown initialiser '%s'", name);
    return NULL;
  }
  return status_none(st);
}

static PyObject *f_calculate_gain(PyObject *m, PyObject *a) {
  const char *nl;
  double p = 0.01;
  if (!PyArg_ParseTuple(a, "s|d", &nl, &p)) return NULL;
  double g = tfw_init_calculate_gain(nl, p);
  if (g < 0) {
    PyErr_Format(PyExc_ValueError, "Unsupported nonlinearity %s", nl);
    return NULL;
  }
  return PyFloat_FromDouble(g);
}

static PyObject *f_fans(PyObject *m, PyObject *a) {
  tfw_tensor *t;
  if (!PyArg_ParseTuple(a, "O&", cv_tensor, &t)) return NULL;
  int64_t fi, fo;
  if (tfw_init_fans(t, &fi, &fo)) return tfpy_raise();
  return Py_BuildValue("(LL)", (long long)fi, (long long)fo);
}

/* ---- tensor plumbing for Parameter ------------------------------------------------------------ */

/* _wrap_as(cls, tensor): an instance of the Tensor subclass cls over the same tfw_tensor. */
static PyObject *f_wrap_as(PyObject *m, PyObject *a) {
  PyTypeObject *cls;
  PyObject *t;
  if (!PyArg_ParseTuple(a, "O!O!", &PyType_Type, &cls, &TfpyTensor_Type, &t)) return NULL;
  if (!PyType_IsSubtype(cls, &TfpyTensor_Type)) {
    PyErr_SetString(PyExc_TypeError, "_wrap_as: cls must be a Tensor subclass");
    return NULL;
  }
  TensorObject *o = (TensorObject *)cls->tp_alloc(cls, 0);
  if (!o) return NULL;
  o->t = tfw_retain(T(t));
  return (PyObject *)o;
}

/* _set_data(param, new): param now refers to new's data (PyTorch's param.data = new); a leaf
 * that required grad keeps requiring it. */
static PyObject *f_set_data(PyObject *m, PyObject *a) {
  PyObject *p, *n;
  if (!PyArg_ParseTuple(a, "O!O!", &TfpyTensor_Type, &p, &TfpyTensor_Type, &n)) return NULL;
  bool rg = tfw_tensor_requires_grad(T(p));
  tfw_tensor *d = tfw_detach(T(n));
  if (!d) return tfpy_raise();
  if (rg && tfw_tensor_set_requires_grad(d, true)) {
    tfw_release(d);
    return tfpy_raise();
  }
  tfw_release(T(p));
  T(p) = d;
  Py_RETURN_NONE;
}

/* _swap(a, b): exchanges the C tensors of two Tensor objects (checkpointing swaps module
 * parameters with the recomputation's leaves and back) */
static PyObject *f_swap(PyObject *m, PyObject *a) {
  PyObject *x, *y;
  if (!PyArg_ParseTuple(a, "O!O!", &TfpyTensor_Type, &x, &TfpyTensor_Type, &y)) return NULL;
  tfw_tensor *t = T(x);
  T(x) = T(y);
  T(y) = t;
  Py_RETURN_NONE;
}

/* _same(a, b): whether two Tensor objects share one tfw_tensor */
static PyObject *f_same(PyObject *m, PyObject *a) {
  PyObject *x, *y;
  if (!PyArg_ParseTuple(a, "O!O!", &TfpyTensor_Type, &x, &TfpyTensor_Type, &y)) return NULL;
  return PyBool_FromLong(T(x) == T(y));
}

/* ---- C-backed modules ------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  tfw_module *m;
} CModuleObject;

static void cmod_dealloc(PyObject *self) {
  tfw_module_release(((CModuleObject *)self)->m);
  Py_TYPE(self)->tp_free(self);
}

static PyObject *named_list(tfw_named_tensor *l, int n) {
  PyObject *out = PyList_New(n);
  if (!out) goto fail;
  for (int i = 0; i < n; i++) {
    PyObject *t = tfpy_wrap(tfw_retain(l[i].tensor));
    if (!t) goto fail;
    PyObject *pair = Py_BuildValue("(sN)", l[i].name, t);
    if (!pair) goto fail;
    PyList_SET_ITEM(out, i, pair);
  }
  tfw_named_tensors_free(l, n);
  return out;
fail:
  Py_XDECREF(out);
  tfw_named_tensors_free(l, n);
  return NULL;
}

static PyObject *cmod_named_parameters(PyObject *self, PyObject *u) {
  tfw_named_tensor *l;
  int n;
  if (tfw_module_named_parameters(((CModuleObject *)self)->m, &l, &n)) return tfpy_raise();
  return named_list(l, n);
}

static PyObject *cmod_train(PyObject *self, PyObject *arg) {
  int mode = PyObject_IsTrue(arg);
  if (mode < 0) return NULL;
  tfw_module_train(((CModuleObject *)self)->m, mode);
  Py_RETURN_NONE;
}

/* forward(n_out, *inputs (None = absent)) -> tuple of n_out tensors */
static PyObject *cmod_forward(PyObject *self, PyObject *args) {
  Py_ssize_t na = PyTuple_GET_SIZE(args);
  if (na < 2 || na > 9) {
    PyErr_SetString(PyExc_TypeError, "forward(n_out, *inputs): 1 to 8 inputs");
    return NULL;
  }
  int n_out = (int)PyLong_AsLong(PyTuple_GET_ITEM(args, 0));
  if (n_out < 1 || n_out > 4) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "n_out must be 1 to 4");
    return NULL;
  }
  tfw_tensor *in[8], *out[4] = {0};
  int n_in = (int)na - 1;
  for (int i = 0; i < n_in; i++)
    if (!cv_tensor_opt(PyTuple_GET_ITEM(args, i + 1), &in[i])) return NULL;
  tfw_status st;
  tfw_module *mod = ((CModuleObject *)self)->m;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_module_forward(mod, n_in, in, n_out, out);
  Py_END_ALLOW_THREADS
  if (st) return tfpy_raise();
  PyObject *r = PyTuple_New(n_out);
  for (int k = 0; k < n_out; k++) {
    PyObject *t = tfpy_wrap(out[k]);
    out[k] = NULL;
    if (!t || !r) {
      for (int j = k + 1; j < n_out; j++) tfw_release(out[j]);
      Py_XDECREF(t);
      Py_XDECREF(r);
      return NULL;
    }
    PyTuple_SET_ITEM(r, k, t);
  }
  return r;
}

/* mha(query, key, value, key_padding_mask, need_weights, attn_mask, average, is_causal) */
static PyObject *cmod_mha(PyObject *self, PyObject *a) {
  tfw_tensor *q, *k, *v, *kpm, *am, *out = NULL, *w = NULL;
  int need, avg, causal;
  if (!PyArg_ParseTuple(a, "O&O&O&O&pO&pp", cv_tensor, &q, cv_tensor, &k, cv_tensor, &v,
                        cv_tensor_opt, &kpm, &need, cv_tensor_opt, &am, &avg, &causal))
    return NULL;
  tfw_status st;
  tfw_module *mod = ((CModuleObject *)self)->m;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_multihead_attention_forward(mod, q, k, v, kpm, need, am, avg, causal, &out,
                                       need ? &w : NULL);
  Py_END_ALLOW_THREADS
  if (st) return tfpy_raise();
  PyObject *po = tfpy_wrap(out);
  if (!po) {
    tfw_release(w);
    return NULL;
  }
  if (!w) return Py_BuildValue("(NO)", po, Py_None);
  PyObject *pw = tfpy_wrap(w);
  if (!pw) {
    Py_DECREF(po);
    return NULL;
  }
  return Py_BuildValue("(NN)", po, pw);
}

static PyObject *cmod_encoder(PyObject *self, PyObject *a) {
  tfw_tensor *src, *mask, *kpm, *out = NULL;
  int causal;
  if (!PyArg_ParseTuple(a, "O&O&O&p", cv_tensor, &src, cv_tensor_opt, &mask, cv_tensor_opt, &kpm,
                        &causal))
    return NULL;
  tfw_status st;
  tfw_module *mod = ((CModuleObject *)self)->m;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_transformer_encoder_layer_forward(mod, src, mask, kpm, causal, &out);
  Py_END_ALLOW_THREADS
  if (st) return tfpy_raise();
  return tfpy_wrap(out);
}

static PyMethodDef cmod_methods[] = {
    {"named_parameters", cmod_named_parameters, METH_NOARGS, NULL},
    {"train", cmod_train, METH_O, NULL},
    {"forward", cmod_forward, METH_VARARGS, NULL},
    {"mha", cmod_mha, METH_VARARGS, NULL},
    {"encoder", cmod_encoder, METH_VARARGS, NULL},
    {NULL},
};

static PyTypeObject CModule_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tenflower._C._CModule",
    .tp_basicsize = sizeof(CModuleObject),
    .tp_dealloc = cmod_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = cmod_methods,
    .tp_doc = "a module of the C library (its parameters are shared with Python)",
};

/* _cmodule(kind, *args) */
static PyObject *f_cmodule(PyObject *m, PyObject *a) {
  const char *kind;
  PyObject *rest;
  if (PyTuple_GET_SIZE(a) < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(a, 0))) {
    PyErr_SetString(PyExc_TypeError, "_cmodule(kind, *args)");
    return NULL;
  }
  kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(a, 0));
  rest = PyTuple_GetSlice(a, 1, PyTuple_GET_SIZE(a));
  if (!rest) return NULL;
  tfw_module *mod = NULL;
  int ok = 1;
  if (!strcmp(kind, "mha")) {
    long long e, h;
    double p;
    int bias, bf;
    ok = PyArg_ParseTuple(rest, "LLdpp", &e, &h, &p, &bias, &bf);
    if (ok) mod = tfw_multihead_attention_new(e, h, p, bias, bf);
  } else if (!strcmp(kind, "encoder_layer")) {
    long long d, h, ff;
    double p, eps;
    const char *act;
    int bf, nf;
    ok = PyArg_ParseTuple(rest, "LLLdsdpp", &d, &h, &ff, &p, &act, &eps, &bf, &nf);
    if (ok) mod = tfw_transformer_encoder_layer_new(d, h, ff, p, act, eps, bf, nf);
  } else if (!strcmp(kind, "lstm") || !strcmp(kind, "gru")) {
    long long in, hid;
    int layers, bias, bf, bidir;
    double p;
    ok = PyArg_ParseTuple(rest, "LLipdpp", &in, &hid, &layers, &bias, &p, &bf, &bidir);
    /* argument order: input, hidden, layers, bias, dropout, batch_first, bidirectional */
    if (ok)
      mod = kind[0] == 'l' ? tfw_lstm_new(in, hid, layers, bias, bf, p, bidir)
                           : tfw_gru_new(in, hid, layers, bias, bf, p, bidir);
  } else {
    Py_DECREF(rest);
    PyErr_Format(PyExc_ValueError, "_cmodule: unknown kind '%s'", kind);
    return NULL;
  }
  Py_DECREF(rest);
  if (!ok) return NULL;
  if (!mod) return tfpy_raise();
  CModuleObject *o = PyObject_New(CModuleObject, &CModule_Type);
  if (!o) {
    tfw_module_release(mod);
    return NULL;
  }
  o->m = mod;
  return (PyObject *)o;
}

static PyMethodDef nn_methods[] = {
    {"_conv1d", f_conv1d, METH_VARARGS, NULL},
    {"_conv1d_same", f_conv1d_same, METH_VARARGS, NULL},
    {"_conv2d", f_conv2d, METH_VARARGS, NULL},
    {"_conv2d_same", f_conv2d_same, METH_VARARGS, NULL},
    {"_conv_transpose1d", f_conv_transpose1d, METH_VARARGS, NULL},
    {"_conv_transpose2d", f_conv_transpose2d, METH_VARARGS, NULL},
    {"_max_pool1d", f_max_pool1d, METH_VARARGS, NULL},
    {"_max_pool2d", f_max_pool2d, METH_VARARGS, NULL},
    {"_avg_pool1d", f_avg_pool1d, METH_VARARGS, NULL},
    {"_avg_pool2d", f_avg_pool2d, METH_VARARGS, NULL},
    {"_adaptive_avg_pool2d", f_adaptive_avg_pool2d, METH_VARARGS, NULL},
    {"_layer_norm", f_layer_norm, METH_VARARGS, NULL},
    {"_rms_norm", f_rms_norm, METH_VARARGS, NULL},
    {"_group_norm", f_group_norm, METH_VARARGS, NULL},
    {"_batch_norm", f_batch_norm, METH_VARARGS, NULL},
    {"_embedding", f_embedding, METH_VARARGS, NULL},
    {"_dropout", f_dropout, METH_VARARGS, NULL},
    {"_sdpa", f_sdpa, METH_VARARGS, NULL},
    {"_act", f_act, METH_VARARGS, NULL},
    {"_cross_entropy", f_cross_entropy, METH_VARARGS, NULL},
    {"_nll_loss", f_nll_loss, METH_VARARGS, NULL},
    {"_loss2", f_loss2, METH_VARARGS, NULL},
    {"_bce", f_bce, METH_VARARGS, NULL},
    {"_bce_logits", f_bce_logits, METH_VARARGS, NULL},
    {"_margin_loss", f_margin_loss, METH_VARARGS, NULL},
    {"_triplet", f_triplet, METH_VARARGS, NULL},
    {"_init", f_init, METH_VARARGS, NULL},
    {"_calculate_gain", f_calculate_gain, METH_VARARGS, NULL},
    {"_fans", f_fans, METH_VARARGS, NULL},
    {"_wrap_as", f_wrap_as, METH_VARARGS, NULL},
    {"_set_data", f_set_data, METH_VARARGS, NULL},
    {"_same", f_same, METH_VARARGS, NULL},
    {"_swap", f_swap, METH_VARARGS, NULL},
    {"_cmodule", f_cmodule, METH_VARARGS, NULL},
    {NULL},
};

int tfpy_nn_init(PyObject *module) {
  if (PyType_Ready(&CModule_Type) < 0) return -1;
  return PyModule_AddFunctions(module, nn_methods);
}
