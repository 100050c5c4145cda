/* tenflower._C.Tensor: the tensor type (properties, operators, indexing, printing, autograd). */
#include "tfpy.h"

#include <math.h>

#include "autograd/autograd.h"

/* ---- wrapping ---------------------------------------------------------------------------- */

PyObject *tfpy_wrap(tfw_tensor *t) {
  if (!t) return tfpy_raise();
  TensorObject *o = (TensorObject *)TfpyTensor_Type.tp_alloc(&TfpyTensor_Type, 0);
  if (!o) {
    tfw_release(t);
    return NULL;
  }
  o->t = t;
  return (PyObject *)o;
}

static void tensor_dealloc(PyObject *self) {
  TensorObject *o = (TensorObject *)self;
  if (o->weakrefs) PyObject_ClearWeakRefs(self);
  Py_CLEAR(o->pyhooks);
  tfw_release(o->t);
  o->t = NULL;
  Py_TYPE(self)->tp_free(self);
}

#define T(self) (((TensorObject *)(self))->t)

/* A Python scalar as a 0-d "wrapped number" (lowest promotion priority, like PyTorch). */
static tfw_tensor *wrapped_number(PyObject *o) {
  tfw_tensor *t;
  if (PyBool_Check(o)) {
    t = tfw_scalar(TFW_DTYPE_BOOL, o == Py_True);
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) {
      PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to an int64 tensor");
      return NULL;
    }
    t = tfw_empty(TFW_DTYPE_I64, 0, NULL);
    if (t) *(int64_t *)tfw_tensor_data(t) = v;
  } else {
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) return NULL;
    t = tfw_scalar(TFW_DTYPE_F64, v);
  }
  if (!t) {
    tfpy_raise();
    return NULL;
  }
  t->wrapped_number = true;
  return t;
}

tfw_tensor *tfpy_to_tensor(PyObject *o) {
  if (Tfpy_Check(o)) return tfw_retain(T(o));
  if (PyBool_Check(o) || PyLong_Check(o) || PyFloat_Check(o)) return wrapped_number(o);
  if (PyList_Check(o) || PyTuple_Check(o)) return tfpy_from_sequence(o, 0, TFW_DTYPE_F32);
  if (PyObject_CheckBuffer(o)) return tfpy_from_buffer_obj(o, 1);
  if (PyIndex_Check(o) || PyNumber_Check(o)) {
    /* numpy scalars and other number-likes */
    PyObject *f = PyIndex_Check(o) ? PyNumber_Index(o) : PyNumber_Float(o);
    if (!f) return NULL;
    tfw_tensor *t = wrapped_number(f);
    Py_DECREF(f);
    return t;
  }
  PyErr_Format(PyExc_TypeError, "expected a Tensor, a number or a sequence, got %.100s",
               Py_TYPE(o)->tp_name);
  return NULL;
}

/* ---- tensor(data) from nested sequences ----------------------------------------------------- */

typedef struct {
  int ndim;
  int64_t shape[TFW_MAX_DIMS];
  int kind; /* 0 bool, 1 int, 2 float */
  int64_t n, cap;
  double *f;
  int64_t *i;
} seqbuf;

static int seq_shape(PyObject *o, seqbuf *b, int depth) {
  if (PySequence_Check(o) && !PyUnicode_Check(o) && !PyBytes_Check(o) && !Tfpy_Check(o)) {
    if (depth >= TFW_MAX_DIMS) {
      tfpy_raise_status(TFW_EVALUE, "tensor: data nests deeper than %d levels", TFW_MAX_DIMS);
      return -1;
    }
    Py_ssize_t len = PySequence_Size(o);
    if (len < 0) return -1;
    b->shape[depth] = len;
    if (depth + 1 > b->ndim) b->ndim = depth + 1;
    if (len == 0) return 0;
    PyObject *first = PySequence_GetItem(o, 0);
    if (!first) return -1;
    int r = seq_shape(first, b, depth + 1);
    Py_DECREF(first);
    return r;
  }
  if (Tfpy_Check(o) && tfw_tensor_ndim(T(o)) > 0) {
    int nd = tfw_tensor_ndim(T(o));
    if (depth + nd > TFW_MAX_DIMS) {
      tfpy_raise_status(TFW_EVALUE, "tensor: data nests deeper than %d levels", TFW_MAX_DIMS);
      return -1;
    }
    for (int d = 0; d < nd; d++) b->shape[depth + d] = tfw_tensor_shape(T(o))[d];
    if (depth + nd > b->ndim) b->ndim = depth + nd;
  }
  return 0;
}

static int seq_push(seqbuf *b, PyObject *o) {
  if (b->n == b->cap) {
    int64_t cap = b->cap ? b->cap * 2 : 64;
    double *f = PyMem_Realloc(b->f, (size_t)cap * sizeof *f);
    if (!f) return -1;
    b->f = f;
    int64_t *i = PyMem_Realloc(b->i, (size_t)cap * sizeof *i);
    if (!i) return -1;
    b->i = i;
    b->cap = cap;
  }
  if (PyBool_Check(o)) {
    b->i[b->n] = o == Py_True;
    b->f[b->n] = o == Py_True;
  } else if (PyLong_Check(o) || (PyIndex_Check(o) && !PyFloat_Check(o))) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    b->i[b->n] = v;
    b->f[b->n] = (double)v;
    if (b->kind < 1) b->kind = 1;
  } else {
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) {
      PyErr_Format(PyExc_TypeError, "tensor: expected numbers, got %.100s", Py_TYPE(o)->tp_name);
      return -1;
    }
    b->f[b->n] = v;
    b->i[b->n] = 0;
    b->kind = 2;
  }
  b->n++;
  return 0;
}

static int seq_fill(PyObject *o, seqbuf *b, int depth) {
  if (depth == b->ndim) {
    if (Tfpy_Check(o)) {
      tfw_tensor *t = T(o);
      if (tfw_tensor_numel(t) != 1 || tfw_tensor_ndim(t) != 0) {
        tfpy_raise_status(TFW_ESHAPE, "tensor: expected a number at depth %d, got a tensor of %d dims",
                          depth, tfw_tensor_ndim(t));
        return -1;
      }
      PyObject *item = PyObject_CallMethod(o, "item", NULL);
      if (!item) return -1;
      int r = seq_push(b, item);
      Py_DECREF(item);
      return r;
    }
    if (PySequence_Check(o) && !PyUnicode_Check(o)) {
      tfpy_raise_status(TFW_ESHAPE, "tensor: ragged nested sequence (a sequence at depth %d, where a "
                        "number was expected)", depth);
      return -1;
    }
    return seq_push(b, o);
  }
  if (Tfpy_Check(o)) {
    PyObject *lst = PyObject_CallMethod(o, "tolist", NULL);
    if (!lst) return -1;
    int r = seq_fill(lst, b, depth);
    Py_DECREF(lst);
    return r;
  }
  if (!PySequence_Check(o) || PyUnicode_Check(o)) {
    tfpy_raise_status(TFW_ESHAPE, "tensor: ragged nested sequence (a number at depth %d, where a "
                      "sequence of length %lld was expected)", depth, (long long)b->shape[depth]);
    return -1;
  }
  Py_ssize_t len = PySequence_Size(o);
  if (len < 0) return -1;
  if (len != b->shape[depth]) {
    tfpy_raise_status(TFW_ESHAPE, "tensor: ragged nested sequence: expected length %lld at depth %d, "
                      "got %zd", (long long)b->shape[depth], depth, len);
    return -1;
  }
  for (Py_ssize_t k = 0; k < len; k++) {
    PyObject *it = PySequence_GetItem(o, k);
    if (!it) return -1;
    int r = seq_fill(it, b, depth + 1);
    Py_DECREF(it);
    if (r) return r;
  }
  return 0;
}

tfw_tensor *tfpy_from_sequence(PyObject *data, int has_dtype, tfw_dtype dt) {
  seqbuf b;
  memset(&b, 0, sizeof b);
  tfw_tensor *t = NULL, *raw = NULL;
  if (seq_shape(data, &b, 0)) goto done;
  if (seq_fill(data, &b, 0)) goto done;
  tfw_dtype inferred = b.kind == 2 ? TFW_DTYPE_F32 : b.kind == 1 ? TFW_DTYPE_I64 : TFW_DTYPE_BOOL;
  if (b.n == 0) inferred = TFW_DTYPE_F32;
  if (!has_dtype) dt = inferred;
  /* the exact source values: int64 for ints and bools, float64 for floats */
  if (b.kind == 2) raw = tfw_from_data(TFW_DTYPE_F64, b.ndim, b.shape, b.f);
  else raw = tfw_from_data(TFW_DTYPE_I64, b.ndim, b.shape, b.n ? (void *)b.i : (void *)b.f);
  if (!raw) {
    tfpy_raise();
    goto done;
  }
  t = tfw_to_dtype(raw, dt);
  if (!t) tfpy_raise();
done:
  tfw_release(raw);
  PyMem_Free(b.f);
  PyMem_Free(b.i);
  return t;
}

PyObject *tfpy_tensor_new(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"data", "dtype", "device", "requires_grad", NULL};
  PyObject *data, *dtype = Py_None, *device = Py_None;
  int rg = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$OOp:tensor", kw, &data, &dtype, &device, &rg))
    return NULL;
  int has_dtype = dtype != Py_None;
  tfw_dtype dt = TFW_DTYPE_F32;
  if (tfpy_parse_dtype(dtype, TFW_DTYPE_F32, &dt)) return NULL;
  tfw_tensor *src = NULL, *t = NULL;
  if (Tfpy_Check(data)) {
    src = tfw_detach(T(data));
  } else if (PyBool_Check(data) || PyLong_Check(data) || PyFloat_Check(data)) {
    tfw_dtype d0 = PyBool_Check(data) ? TFW_DTYPE_BOOL : PyLong_Check(data) ? TFW_DTYPE_I64 : TFW_DTYPE_F32;
    src = wrapped_number(data);
    if (!src) return NULL;
    src->wrapped_number = false;
    if (!has_dtype) dt = d0;
    has_dtype = 1;
  } else if (PyObject_CheckBuffer(data) && !PyBytes_Check(data)) {
    src = tfpy_from_buffer_obj(data, 1);
    if (!src) return NULL;
  } else {
    t = tfpy_from_sequence(data, has_dtype, dt);
    if (!t) return NULL;
  }
  if (src) {
    if (!has_dtype) dt = tfw_tensor_dtype(src);
    Py_BEGIN_ALLOW_THREADS
    t = tfw_to_dtype(src, dt); /* always a copy */
    Py_END_ALLOW_THREADS
    tfw_release(src);
    if (!t) return tfpy_raise();
  }
  if (rg && tfw_tensor_set_requires_grad(t, true)) {
    tfw_release(t);
    return tfpy_raise();
  }
  return tfpy_wrap(t);
}

static PyObject *tensor_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  if (type != &TfpyTensor_Type) {
    /* subclasses (nn.Parameter): Sub(data) shares data's storage, detached */
    PyObject *data = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL;
    tfw_tensor *t;
    if (!data || data == Py_None) t = tfw_empty(TFW_DTYPE_F32, 1, (int64_t[]){0});
    else if (Tfpy_Check(data)) t = tfw_detach(T(data));
    else {
      tfw_tensor *w = tfpy_to_tensor(data);
      if (!w) return NULL;
      t = tfw_clone(w);
      tfw_release(w);
    }
    if (!t) return tfpy_raise();
    TensorObject *o = (TensorObject *)type->tp_alloc(type, 0);
    if (!o) {
      tfw_release(t);
      return NULL;
    }
    o->t = t;
    return (PyObject *)o;
  }
  if (PyTuple_GET_SIZE(args) == 0) return tfpy_wrap(tfw_empty(TFW_DTYPE_F32, 1, (int64_t[]){0}));
  return tfpy_tensor_new(NULL, args, kwargs);
}

/* ---- element access ----------------------------------------------------------------------- */

static PyObject *elem_to_py(const char *p, tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: return PyFloat_FromDouble(*(const float *)p);
  case TFW_DTYPE_F64: return PyFloat_FromDouble(*(const double *)p);
  case TFW_DTYPE_F16: return PyFloat_FromDouble(tfw_f16_to_f32(*(const uint16_t *)p));
  case TFW_DTYPE_BF16: return PyFloat_FromDouble(tfw_bf16_to_f32(*(const uint16_t *)p));
  case TFW_DTYPE_I8: return PyLong_FromLong(*(const int8_t *)p);
  case TFW_DTYPE_U8: return PyLong_FromLong(*(const uint8_t *)p);
  case TFW_DTYPE_I32: return PyLong_FromLong(*(const int32_t *)p);
  case TFW_DTYPE_I64: return PyLong_FromLongLong(*(const int64_t *)p);
  case TFW_DTYPE_BOOL: return PyBool_FromLong(*(const bool *)p);
  default: break;
  }
  PyErr_SetString(PyExc_SystemError, "corrupt dtype");
  return NULL;
}

static PyObject *t_item(PyObject *self, PyObject *unused) {
  tfw_tensor *t = T(self);
  if (tfw_tensor_numel(t) != 1)
    return tfpy_raise_status(TFW_EVALUE, "item: a Tensor with %lld elements cannot be converted to "
                             "a Python scalar", (long long)tfw_tensor_numel(t));
  const int64_t *st = tfw_tensor_strides(t);
  (void)st; /* every stride is irrelevant for one element: the data pointer is element [0...] */
  return elem_to_py((const char *)tfw_tensor_data(t), tfw_tensor_dtype(t));
}

static PyObject *tolist_rec(const char *p, const tfw_tensor *t, int d, size_t es) {
  int nd = tfw_tensor_ndim(t);
  if (d == nd) return elem_to_py(p, tfw_tensor_dtype(t));
  int64_t n = tfw_tensor_shape(t)[d], s = tfw_tensor_strides(t)[d];
  PyObject *lst = PyList_New((Py_ssize_t)n);
  if (!lst) return NULL;
  for (int64_t k = 0; k < n; k++) {
    PyObject *it = tolist_rec(p + k * s * (int64_t)es, t, d + 1, es);
    if (!it) {
      Py_DECREF(lst);
      return NULL;
    }
    PyList_SET_ITEM(lst, k, it);
  }
  return lst;
}

static PyObject *t_tolist(PyObject *self, PyObject *unused) {
  tfw_tensor *t = T(self);
  return tolist_rec((const char *)tfw_tensor_data(t), t, 0, tfw_dtype_size(tfw_tensor_dtype(t)));
}

/* ---- properties ----------------------------------------------------------------------------- */

static PyObject *shape_tuple(const tfw_tensor *t) {
  int nd = tfw_tensor_ndim(t);
  PyObject *tup = PyTuple_New(nd);
  if (!tup) return NULL;
  for (int d = 0; d < nd; d++) {
    PyObject *v = PyLong_FromLongLong(tfw_tensor_shape(t)[d]);
    if (!v) {
      Py_DECREF(tup);
      return NULL;
    }
    PyTuple_SET_ITEM(tup, d, v);
  }
  return tup;
}

static PyObject *g_shape(PyObject *self, void *c) { return shape_tuple(T(self)); }
static PyObject *g_dtype(PyObject *self, void *c) {
  return Py_NewRef(tfpy_dtypes[tfw_tensor_dtype(T(self))]);
}
static PyObject *g_device(PyObject *self, void *c) {
  if (tfpy_device_cpu) return Py_NewRef(tfpy_device_cpu);
  return PyUnicode_FromString("cpu");
}
static PyObject *g_ndim(PyObject *self, void *c) { return PyLong_FromLong(tfw_tensor_ndim(T(self))); }
static PyObject *g_is_leaf(PyObject *self, void *c) { return PyBool_FromLong(tfw_tensor_is_leaf(T(self))); }
static PyObject *g_requires_grad(PyObject *self, void *c) {
  return PyBool_FromLong(tfw_tensor_requires_grad(T(self)));
}
static int s_requires_grad(PyObject *self, PyObject *v, void *c) {
  if (!v) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete requires_grad");
    return -1;
  }
  int on = PyObject_IsTrue(v);
  if (on < 0) return -1;
  if (tfw_tensor_set_requires_grad(T(self), on)) {
    tfpy_raise();
    return -1;
  }
  return 0;
}
static PyObject *g_grad(PyObject *self, void *c) {
  tfw_tensor *g = tfw_tensor_grad(T(self));
  if (!g) Py_RETURN_NONE;
  return tfpy_wrap(g);
}
static int s_grad(PyObject *self, PyObject *v, void *c) {
  tfw_tensor *t = T(self);
  if (!v || v == Py_None) {
    tfw_tensor_zero_grad(t);
    return 0;
  }
  if (!Tfpy_Check(v)) {
    PyErr_SetString(PyExc_TypeError, "assigned grad must be a Tensor or None");
    return -1;
  }
  tfw_tensor *g = T(v);
  int nd = tfw_tensor_ndim(t);
  if (tfw_tensor_ndim(g) != nd ||
      memcmp(tfw_tensor_shape(g), tfw_tensor_shape(t), (size_t)nd * sizeof(int64_t)) != 0) {
    tfpy_raise_status(TFW_ESHAPE, "assigned grad has a different shape than the tensor");
    return -1;
  }
  if (tfw_tensor_dtype(g) != tfw_tensor_dtype(t)) {
    tfpy_raise_status(TFW_EDTYPE, "assigned grad has dtype %s, the tensor has %s",
                      tfw_dtype_name(tfw_tensor_dtype(g)), tfw_dtype_name(tfw_tensor_dtype(t)));
    return -1;
  }
  tfw__ag *ag = tfw__ag_get(t);
  if (!ag || !tfw_tensor_is_leaf(t)) {
    tfpy_raise_status(TFW_ESTATE, "grad can only be assigned to a leaf tensor that requires grad");
    return -1;
  }
  tfw_tensor *old = ag->grad;
  ag->grad = tfw_retain(g);
  tfw_release(old);
  return 0;
}

static PyObject *gradfn_factory;

/* "log_softmax" -> "LogSoftmaxBackward0" (PyTorch's node names) */
static void backward_name(const char *op, char *out, size_t cap) {
  size_t k = 0;
  int up = 1;
  for (const char *p = op; *p && k + 1 < cap; p++) {
    if (*p == '_') {
      up = 1;
      continue;
    }
    out[k++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p;
    up = 0;
  }
  snprintf(out + k, cap - k, "Backward0");
}

static PyObject *g_grad_fn(PyObject *self, void *c) {
  const char *name = tfw_tensor_grad_fn_name(T(self));
  if (!name) Py_RETURN_NONE;
  char buf[96];
  backward_name(name, buf, sizeof buf);
  if (!gradfn_factory) return PyUnicode_FromString(buf);
  return PyObject_CallFunction(gradfn_factory, "ss", buf, name);
}

static PyObject *g_T(PyObject *self, void *c) {
  tfw_tensor *t = T(self);
  int nd = tfw_tensor_ndim(t);
  int dims[TFW_MAX_DIMS];
  for (int d = 0; d < nd; d++) dims[d] = nd - 1 - d;
  return tfpy_wrap(tfw_permute(t, nd, dims));
}
static PyObject *g_mT(PyObject *self, void *c) {
  return tfpy_wrap(tfw_transpose(T(self), -2, -1));
}
static PyObject *g_data(PyObject *self, void *c) { return tfpy_wrap(tfw_detach(T(self))); }
static PyObject *g_itemsize(PyObject *self, void *c) {
  return PyLong_FromSize_t(tfw_dtype_size(tfw_tensor_dtype(T(self))));
}
static PyObject *g_nbytes(PyObject *self, void *c) {
  return PyLong_FromLongLong(tfw_tensor_numel(T(self)) *
                             (long long)tfw_dtype_size(tfw_tensor_dtype(T(self))));
}
static PyObject *g_false(PyObject *self, void *c) { Py_RETURN_FALSE; }
static PyObject *g_true(PyObject *self, void *c) { Py_RETURN_TRUE; }

static PyGetSetDef tensor_getset[] = {
    {"shape", g_shape, NULL, "the sizes (a tuple)", NULL},
    {"dtype", g_dtype, NULL, "the element type", NULL},
    {"device", g_device, NULL, "the device (cpu)", NULL},
    {"ndim", g_ndim, NULL, "number of dimensions", NULL},
    {"is_leaf", g_is_leaf, NULL, "created by the user (no grad_fn)", NULL},
    {"requires_grad", g_requires_grad, s_requires_grad, "whether autograd records ops on it", NULL},
    {"grad", g_grad, s_grad, "the accumulated gradient of a leaf, or None", NULL},
    {"grad_fn", g_grad_fn, NULL, "the node that produced this tensor, or None", NULL},
    {"T", g_T, NULL, "dims reversed", NULL},
    {"mT", g_mT, NULL, "last two dims swapped", NULL},
    {"data", g_data, NULL, "a detached view", NULL},
    {"itemsize", g_itemsize, NULL, NULL, NULL},
    {"nbytes", g_nbytes, NULL, NULL, NULL},
    {"is_cuda", g_false, NULL, NULL, NULL},
    {"is_cpu", g_true, NULL, NULL, NULL},
    {"__array_interface__", tfpy_array_interface, NULL, "NumPy array interface (version 3)", NULL},
    {NULL},
};

/* ---- simple methods ---------------------------------------------------------------------- */

static PyObject *t_size(PyObject *self, PyObject *args) {
  PyObject *dim = Py_None;
  if (!PyArg_ParseTuple(args, "|O:size", &dim)) return NULL;
  if (dim == Py_None) return shape_tuple(T(self));
  long d = PyLong_AsLong(dim);
  if (d == -1 && PyErr_Occurred()) return NULL;
  int nd = tfw_tensor_ndim(T(self));
  if (d < -nd || d >= nd || nd == 0)
    return tfpy_raise_status(TFW_EINDEX, "size: dimension %ld out of range for a tensor of %d "
                             "dimensions", d, nd);
  return PyLong_FromLongLong(tfw_tensor_size(T(self), (int)d));
}
static PyObject *t_stride(PyObject *self, PyObject *args) {
  PyObject *dim = Py_None;
  if (!PyArg_ParseTuple(args, "|O:stride", &dim)) return NULL;
  tfw_tensor *t = T(self);
  int nd = tfw_tensor_ndim(t);
  if (dim == Py_None) {
    PyObject *tup = PyTuple_New(nd);
    if (!tup) return NULL;
    for (int d = 0; d < nd; d++) PyTuple_SET_ITEM(tup, d, PyLong_FromLongLong(tfw_tensor_strides(t)[d]));
    return tup;
  }
  long d = PyLong_AsLong(dim);
  if (d == -1 && PyErr_Occurred()) return NULL;
  if (d < -nd || d >= nd)
    return tfpy_raise_status(TFW_EINDEX, "stride: dimension %ld out of range for a tensor of %d "
                             "dimensions", d, nd);
  return PyLong_FromLongLong(tfw_tensor_strides(t)[d < 0 ? d + nd : d]);
}
static PyObject *t_dim(PyObject *self, PyObject *u) { return PyLong_FromLong(tfw_tensor_ndim(T(self))); }
static PyObject *t_numel(PyObject *self, PyObject *u) { return PyLong_FromLongLong(tfw_tensor_numel(T(self))); }
static PyObject *t_is_contiguous(PyObject *self, PyObject *u) {
  return PyBool_FromLong(tfw_tensor_is_contiguous(T(self)));
}
static PyObject *t_data_ptr(PyObject *self, PyObject *u) {
  return PyLong_FromVoidPtr(tfw_tensor_data(T(self)));
}
static PyObject *t_element_size(PyObject *self, PyObject *u) {
  return PyLong_FromSize_t(tfw_dtype_size(tfw_tensor_dtype(T(self))));
}
static PyObject *t_is_floating_point(PyObject *self, PyObject *u) {
  return PyBool_FromLong(tfw_dtype_is_floating(tfw_tensor_dtype(T(self))));
}

static PyObject *t_detach(PyObject *self, PyObject *u) { return tfpy_wrap(tfw_detach(T(self))); }
static PyObject *t_contiguous(PyObject *self, PyObject *u) {
  tfw_tensor *r;
  Py_BEGIN_ALLOW_THREADS
  r = tfw_contiguous(T(self));
  Py_END_ALLOW_THREADS
  if (r == T(self)) {
    tfw_release(r);
    return Py_NewRef(self);
  }
  return tfpy_wrap(r);
}

static PyObject *t_requires_grad_(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"requires_grad", NULL};
  int on = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:requires_grad_", kw, &on)) return NULL;
  if (tfw_tensor_set_requires_grad(T(self), on)) return tfpy_raise();
  return Py_NewRef(self);
}

static PyObject *t_backward(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"gradient", "retain_graph", "create_graph", NULL};
  PyObject *grad = Py_None, *retain = Py_None;
  int create = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOp:backward", kw, &grad, &retain, &create))
    return NULL;
  tfw_tensor *g = NULL;
  if (grad != Py_None) {
    g = tfpy_to_tensor(grad);
    if (!g) return NULL;
  }
  int rg = retain == Py_None ? create : PyObject_IsTrue(retain);
  if (!tfw_tensor_requires_grad(T(self))) {
    tfw_release(g);
    return tfpy_raise_status(TFW_ESTATE, "backward: element 0 of tensors does not require grad "
                             "and does not have a grad_fn");
  }
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_backward(T(self), g, rg, create);
  Py_END_ALLOW_THREADS
  tfw_release(g);
  if (st) return tfpy_raise();
  Py_RETURN_NONE;
}

/* to(dtype) / to(device) / to(device, dtype) / to(other tensor) */
static PyObject *t_to(PyObject *self, PyObject *args, PyObject *kwargs) {
  PyObject *dtype = NULL;
  Py_ssize_t n = PyTuple_GET_SIZE(args);
  for (Py_ssize_t k = 0; k < n; k++) {
    PyObject *a = PyTuple_GET_ITEM(args, k);
    if (PyObject_TypeCheck(a, &TfpyDType_Type)) dtype = a;
    else if (Tfpy_Check(a)) dtype = tfpy_dtypes[tfw_tensor_dtype(T(a))];
    else if (PyUnicode_Check(a)) {
      if (PyUnicode_CompareWithASCIIString(a, "cpu") != 0)
        return tfpy_raise_status(TFW_EDEVICE, "to: device %S is not available (this build has "
                                 "the CPU device only)", a);
    } else if (a == tfpy_device_cpu) {
    } else if (a != Py_None) {
      PyObject *s = PyObject_Str(a);
      if (!s) return NULL;
      int cpu = PyUnicode_CompareWithASCIIString(s, "cpu") == 0;
      Py_DECREF(s);
      if (!cpu) return tfpy_raise_status(TFW_EDEVICE, "to: device %R is not available", a);
    }
  }
  if (kwargs) {
    PyObject *d = PyDict_GetItemString(kwargs, "dtype");
    if (d) dtype = d;
    PyObject *dev = PyDict_GetItemString(kwargs, "device");
    if (dev && dev != Py_None) {
      PyObject *s = PyObject_Str(dev);
      if (!s) return NULL;
      int cpu = PyUnicode_CompareWithASCIIString(s, "cpu") == 0;
      Py_DECREF(s);
      if (!cpu) return tfpy_raise_status(TFW_EDEVICE, "to: device %R is not available", dev);
    }
  }
  if (!dtype || dtype == Py_None) return Py_NewRef(self);
  tfw_dtype dt;
  if (tfpy_parse_dtype(dtype, TFW_DTYPE_F32, &dt)) return NULL;
  if (dt == tfw_tensor_dtype(T(self))) return Py_NewRef(self);
  tfw_tensor *r;
  Py_BEGIN_ALLOW_THREADS
  r = tfw_to_dtype(T(self), dt);
  Py_END_ALLOW_THREADS
  return tfpy_wrap(r);
}

static PyObject *cast_to(PyObject *self, tfw_dtype dt) {
  if (tfw_tensor_dtype(T(self)) == dt) return Py_NewRef(self);
  return tfpy_wrap(tfw_to_dtype(T(self), dt));
}
static PyObject *t_float(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_F32); }
static PyObject *t_double(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_F64); }
static PyObject *t_half(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_F16); }
static PyObject *t_bfloat16(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_BF16); }
static PyObject *t_int(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_I32); }
static PyObject *t_long(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_I64); }
static PyObject *t_bool(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_BOOL); }
static PyObject *t_byte(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_U8); }
static PyObject *t_char(PyObject *s, PyObject *u) { return cast_to(s, TFW_DTYPE_I8); }
static PyObject *t_cpu(PyObject *s, PyObject *u) { return Py_NewRef(s); }

static PyObject *t_copy_(PyObject *self, PyObject *args) {
  PyObject *src;
  if (!PyArg_ParseTuple(args, "O:copy_", &src)) return NULL;
  tfw_tensor *s = tfpy_to_tensor(src);
  if (!s) return NULL;
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_copy_(T(self), s);
  Py_END_ALLOW_THREADS
  tfw_release(s);
  if (st) return tfpy_raise();
  return Py_NewRef(self);
}
static PyObject *t_fill_(PyObject *self, PyObject *arg) {
  double v = PyFloat_AsDouble(arg);
  if (v == -1.0 && PyErr_Occurred()) return NULL;
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_fill_(T(self), v);
  Py_END_ALLOW_THREADS
  if (st) return tfpy_raise();
  return Py_NewRef(self);
}
static PyObject *t_zero_(PyObject *self, PyObject *u) {
  if (tfw_fill_(T(self), 0.0)) return tfpy_raise();
  return Py_NewRef(self);
}

/* ---- printing ------------------------------------------------------------------------------ */

static PyObject *tensor_repr(PyObject *self) {
  char *s = tfw_tensor_format(T(self));
  if (!s) return tfpy_raise();
  size_t len = strlen(s);
  char extra[128] = "";
  const char *name = tfw_tensor_grad_fn_name(T(self));
  if (name) {
    char b[96];
    backward_name(name, b, sizeof b);
    snprintf(extra, sizeof extra, ", grad_fn=<%s>", b);
  } else if (tfw_tensor_requires_grad(T(self))) {
    snprintf(extra, sizeof extra, ", requires_grad=True");
  }
  PyObject *r;
  if (extra[0] && len > 0 && s[len - 1] == ')') {
    s[len - 1] = 0;
    r = PyUnicode_FromFormat("%s%s)", s, extra);
  } else {
    r = PyUnicode_FromString(s);
  }
  tfw_string_free(s);
  if (!r) return NULL;
  /* dtype suffixes name the module, as torch's do ("dtype=torch.float64") */
  PyObject *fixed = PyObject_CallMethod(r, "replace", "ss", ", dtype=", ", dtype=tenflower.");
  Py_DECREF(r);
  return fixed;
}

/* ---- number protocol --------------------------------------------------------------------- */

static PyObject *binary(tfw__op_id id, PyObject *a, PyObject *b) {
  if (!Tfpy_Check(a) && !Tfpy_Check(b)) Py_RETURN_NOTIMPLEMENTED;
  tfw_tensor *ta = tfpy_to_tensor(a);
  if (!ta) {
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();
      Py_RETURN_NOTIMPLEMENTED;
    }
    return NULL;
  }
  tfw_tensor *tb = tfpy_to_tensor(b);
  if (!tb) {
    tfw_release(ta);
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();
      Py_RETURN_NOTIMPLEMENTED;
    }
    return NULL;
  }
  /* PyTorch's extra rules for Python operators: no '-' with a bool operand, no negative
   * integer power of an integer tensor */
  if (id == TFW__OP_sub && (ta->dtype == TFW_DTYPE_BOOL || tb->dtype == TFW_DTYPE_BOOL)) {
    tfw_release(ta);
    tfw_release(tb);
    return tfpy_raise_status(TFW_EDTYPE, "sub: subtraction with a bool tensor is not supported; "
                             "to invert a mask use ~ or logical_not()");
  }
  if (id == TFW__OP_pow && tb->wrapped_number && !tfw_dtype_is_floating(ta->dtype) &&
      !tfw_dtype_is_floating(tb->dtype) && tb->dtype != TFW_DTYPE_BOOL &&
      *(const int64_t *)tfw_tensor_data(tb) < 0) {
    tfw_release(ta);
    tfw_release(tb);
    return tfpy_raise_status(TFW_EVALUE, "pow: integers to negative integer powers are not allowed");
  }
  const tfw_tensor *in[2] = {ta, tb};
  tfw__call c;
  tfw__call_init(&c, id, 2, in);
  tfw_tensor *out[TFW__MAX_OUT] = {NULL};
  tfw_status st = tfpy_run(&c, out);
  tfw_release(ta);
  tfw_release(tb);
  if (st) return tfpy_raise();
  return tfpy_wrap(out[0]);
}

static PyObject *unary(tfw__op_id id, PyObject *a) {
  const tfw_tensor *in[1] = {T(a)};
  tfw__call c;
  tfw__call_init(&c, id, 1, in);
  tfw_tensor *out[TFW__MAX_OUT] = {NULL};
  if (tfpy_run(&c, out)) return tfpy_raise();
  return tfpy_wrap(out[0]);
}

static int category(tfw_dtype d) {
  return d == TFW_DTYPE_BOOL ? 0 : tfw_dtype_is_floating(d) ? 2 : 1;
}

/* self op= other: computes self op other, then writes it into self (PyTorch's rules: the
 * result must cast to self's dtype within its category and broadcast to self's shape). */
static PyObject *inplace(tfw__op_id id, PyObject *self, PyObject *other) {
  if (!Tfpy_Check(self)) Py_RETURN_NOTIMPLEMENTED;
  PyObject *r = binary(id, self, other);
  if (!r || r == Py_NotImplemented) return r;
  tfw_tensor *dst = T(self), *src = T(r);
  tfw_dtype dd = tfw_tensor_dtype(dst), sd = tfw_tensor_dtype(src);
  if (category(sd) > category(dd)) {
    Py_DECREF(r);
    return tfpy_raise_status(TFW_EDTYPE, "%s_: result type %s can't be cast to the desired output "
                             "type %s", tfw__ops[id].name, tfw_dtype_name(sd), tfw_dtype_name(dd));
  }
  int nd = tfw_tensor_ndim(dst);
  if (tfw_tensor_ndim(src) != nd ||
      memcmp(tfw_tensor_shape(src), tfw_tensor_shape(dst), (size_t)nd * sizeof(int64_t)) != 0) {
    PyObject *ss = shape_tuple(src), *ds = shape_tuple(dst);
    Py_DECREF(r);
    if (ss && ds)
      tfpy_raise_status(TFW_ESHAPE, "%s_: output with shape %s doesn't match the broadcast shape %s",
                        tfw__ops[id].name, PyUnicode_AsUTF8(PyObject_Repr(ds)),
                        PyUnicode_AsUTF8(PyObject_Repr(ss)));
    Py_XDECREF(ss);
    Py_XDECREF(ds);
    return NULL;
  }
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_copy_(dst, src);
  Py_END_ALLOW_THREADS
  Py_DECREF(r);
  if (st) return tfpy_raise();
  return Py_NewRef(self);
}

#define BINSLOT(fn, id) \
  static PyObject *fn(PyObject *a, PyObject *b) { return binary(TFW__OP_##id, a, b); } \
  static PyObject *fn##_i(PyObject *a, PyObject *b) { return inplace(TFW__OP_##id, a, b); }
BINSLOT(nb_add, add)
BINSLOT(nb_sub, sub)
BINSLOT(nb_mul, mul)
BINSLOT(nb_truediv, div)
BINSLOT(nb_floordiv, floor_div)
BINSLOT(nb_mod, remainder)
BINSLOT(nb_and, bitwise_and)
BINSLOT(nb_or, bitwise_or)
BINSLOT(nb_xor, bitwise_xor)
BINSLOT(nb_matmul, matmul)

static PyObject *nb_pow(PyObject *a, PyObject *b, PyObject *m) {
  if (m != Py_None) Py_RETURN_NOTIMPLEMENTED;
  return binary(TFW__OP_pow, a, b);
}
static PyObject *nb_pow_i(PyObject *a, PyObject *b, PyObject *m) {
  if (m != Py_None) Py_RETURN_NOTIMPLEMENTED;
  return inplace(TFW__OP_pow, a, b);
}
static PyObject *nb_neg(PyObject *a) { return unary(TFW__OP_neg, a); }
static PyObject *nb_pos(PyObject *a) { return Py_NewRef(a); }
static PyObject *nb_abs(PyObject *a) { return unary(TFW__OP_abs, a); }
static PyObject *nb_invert(PyObject *a) { return unary(TFW__OP_bitwise_not, a); }

static int nb_bool(PyObject *a) {
  tfw_tensor *t = T(a);
  if (tfw_tensor_numel(t) != 1) {
    tfpy_raise_status(TFW_EVALUE, "Boolean value of Tensor with more than one value is ambiguous");
    return -1;
  }
  double v;
  if (tfw_item(t, &v)) {
    tfpy_raise();
    return -1;
  }
  return v != 0;
}
static PyObject *nb_float(PyObject *a) {
  PyObject *it = t_item(a, NULL);
  if (!it) return NULL;
  PyObject *r = PyNumber_Float(it);
  Py_DECREF(it);
  return r;
}
static PyObject *nb_int(PyObject *a) {
  PyObject *it = t_item(a, NULL);
  if (!it) return NULL;
  PyObject *r = PyNumber_Long(it);
  Py_DECREF(it);
  return r;
}
static PyObject *nb_index(PyObject *a) {
  tfw_dtype d = tfw_tensor_dtype(T(a));
  if (tfw_dtype_is_floating(d) || tfw_tensor_numel(T(a)) != 1) {
    PyErr_SetString(PyExc_TypeError, "only integer tensors of a single element can be converted "
                    "to an index");
    return NULL;
  }
  return nb_int(a);
}

static PyNumberMethods tensor_as_number = {
    .nb_add = nb_add, .nb_subtract = nb_sub, .nb_multiply = nb_mul, .nb_remainder = nb_mod,
    .nb_power = nb_pow, .nb_negative = nb_neg, .nb_positive = nb_pos, .nb_absolute = nb_abs,
    .nb_bool = nb_bool, .nb_invert = nb_invert, .nb_and = nb_and, .nb_xor = nb_xor,
    .nb_or = nb_or, .nb_int = nb_int, .nb_float = nb_float,
    .nb_inplace_add = nb_add_i, .nb_inplace_subtract = nb_sub_i,
    .nb_inplace_multiply = nb_mul_i, .nb_inplace_remainder = nb_mod_i,
    .nb_inplace_power = nb_pow_i, .nb_inplace_and = nb_and_i, .nb_inplace_xor = nb_xor_i,
    .nb_inplace_or = nb_or_i, .nb_floor_divide = nb_floordiv, .nb_true_divide = nb_truediv,
    .nb_inplace_floor_divide = nb_floordiv_i, .nb_inplace_true_divide = nb_truediv_i,
    .nb_index = nb_index, .nb_matrix_multiply = nb_matmul,
    .nb_inplace_matrix_multiply = nb_matmul_i,
};

static PyObject *tensor_richcompare(PyObject *a, PyObject *b, int op) {
  tfw__op_id id;
  switch (op) {
  case Py_LT: id = TFW__OP_lt; break;
  case Py_LE: id = TFW__OP_le; break;
  case Py_EQ: id = TFW__OP_eq; break;
  case Py_NE: id = TFW__OP_ne; break;
  case Py_GT: id = TFW__OP_gt; break;
  default: id = TFW__OP_ge; break;
  }
  if ((op == Py_EQ || op == Py_NE) && b == Py_None) {
    if (op == Py_EQ) Py_RETURN_FALSE;
    Py_RETURN_TRUE;
  }
  return binary(id, a, b);
}

static Py_hash_t tensor_hash(PyObject *self) { return _Py_HashPointer(self); }

/* ---- sequence-ish ------------------------------------------------------------------------- */

static Py_ssize_t tensor_len(PyObject *self) {
  tfw_tensor *t = T(self);
  if (tfw_tensor_ndim(t) == 0) {
    PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
    return -1;
  }
  return (Py_ssize_t)tfw_tensor_shape(t)[0];
}

static PyObject *tensor_iter(PyObject *self) {
  tfw_tensor *t = T(self);
  if (tfw_tensor_ndim(t) == 0) {
    PyErr_SetString(PyExc_TypeError, "iteration over a 0-d tensor");
    return NULL;
  }
  int64_t n = tfw_tensor_shape(t)[0];
  PyObject *lst = PyList_New((Py_ssize_t)n);
  if (!lst) return NULL;
  for (int64_t k = 0; k < n; k++) {
    PyObject *e = tfpy_wrap(tfw_select(t, 0, k));
    if (!e) {
      Py_DECREF(lst);
      return NULL;
    }
    PyList_SET_ITEM(lst, k, e);
  }
  PyObject *it = PyObject_GetIter(lst);
  Py_DECREF(lst);
  return it;
}

/* ---- indexing ------------------------------------------------------------------------------- */

enum { IX_INT, IX_SLICE, IX_NONE, IX_ELLIPSIS, IX_TENSOR, IX_MASK };

typedef struct {
  int kind;
  int64_t v;
  PyObject *slice;
  tfw_tensor *idx; /* owned: IX_TENSOR (integer) or IX_MASK (bool) */
} ixitem;

#define MAX_IX 32

typedef struct {
  int n;
  ixitem it[MAX_IX];
  /* after the basic pass */
  tfw_tensor *view;
  int n_adv;
  int adv_dim[TFW_MAX_DIMS];
  tfw_tensor *adv[TFW_MAX_DIMS]; /* owned int64 contiguous index tensors */
} ixplan;

static void plan_free(ixplan *p) {
  for (int k = 0; k < p->n; k++) tfw_release(p->it[k].idx);
  for (int k = 0; k < p->n_adv; k++) tfw_release(p->adv[k]);
  tfw_release(p->view);
}

static int parse_item(PyObject *o, ixitem *it) {
  memset(it, 0, sizeof *it);
  if (o == Py_None) {
    it->kind = IX_NONE;
  } else if (o == Py_Ellipsis) {
    it->kind = IX_ELLIPSIS;
  } else if (PySlice_Check(o)) {
    it->kind = IX_SLICE;
    it->slice = o;
  } else if (PyLong_Check(o) && !PyBool_Check(o)) {
    it->kind = IX_INT;
    it->v = PyLong_AsLongLong(o);
    if (it->v == -1 && PyErr_Occurred()) return -1;
  } else if (Tfpy_Check(o) || PyList_Check(o) || PyTuple_Check(o) || PyObject_CheckBuffer(o) ||
             PyBool_Check(o)) {
    tfw_tensor *t;
    if (Tfpy_Check(o)) t = tfw_retain(T(o));
    else if (PyBool_Check(o)) t = tfw_scalar(TFW_DTYPE_BOOL, o == Py_True);
    else if (PyList_Check(o) || PyTuple_Check(o)) t = tfpy_from_sequence(o, 0, TFW_DTYPE_F32);
    else t = tfpy_from_buffer_obj(o, 1);
    if (!t) return -1;
    tfw_dtype d = tfw_tensor_dtype(t);
    if (d == TFW_DTYPE_BOOL) {
      it->kind = IX_MASK;
    } else if (tfw_dtype_is_integral(d)) {
      it->kind = IX_TENSOR;
    } else {
      tfw_release(t);
      PyErr_SetString(PyExc_IndexError, "tensors used as indices must be long, int, byte or bool "
                      "tensors");
      return -1;
    }
    it->idx = t;
  } else if (PyIndex_Check(o)) {
    it->kind = IX_INT;
    PyObject *i = PyNumber_Index(o);
    if (!i) return -1;
    it->v = PyLong_AsLongLong(i);
    Py_DECREF(i);
    if (it->v == -1 && PyErr_Occurred()) return -1;
  } else {
    PyErr_Format(PyExc_IndexError, "only integers, slices (`:`), ellipsis (`...`), None and long or "
                 "byte Variables are valid indices (got %.100s)", Py_TYPE(o)->tp_name);
    return -1;
  }
  return 0;
}

static int add_adv(ixplan *p, int dim, tfw_tensor *idx64) {
  if (p->n_adv >= TFW_MAX_DIMS) {
    tfw_release(idx64);
    PyErr_SetString(PyExc_IndexError, "too many tensor indices");
    return -1;
  }
  p->adv_dim[p->n_adv] = dim;
  p->adv[p->n_adv++] = idx64;
  return 0;
}

static int view_step(ixplan *p, tfw_tensor *nv) {
  if (!nv) {
    tfpy_raise();
    return -1;
  }
  tfw_release(p->view);
  p->view = nv;
  return 0;
}

/* The basic pass: ints, slices, None and Ellipsis become a view; tensor indices are recorded
 * (dims they index in the view) for the advanced pass. */
static int plan_build(ixplan *p, tfw_tensor *t, PyObject *key) {
  memset(p, 0, sizeof *p);
  if (PyTuple_Check(key)) {
    Py_ssize_t n = PyTuple_GET_SIZE(key);
    if (n > MAX_IX) {
      PyErr_SetString(PyExc_IndexError, "too many indices");
      return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
      if (parse_item(PyTuple_GET_ITEM(key, k), &p->it[k])) return -1;
      p->n = (int)k + 1;
    }
  } else {
    if (parse_item(key, &p->it[0])) return -1;
    p->n = 1;
  }
  int nd = tfw_tensor_ndim(t), consumed = 0, n_ell = 0;
  for (int k = 0; k < p->n; k++) {
    ixitem *it = &p->it[k];
    if (it->kind == IX_INT || it->kind == IX_SLICE || it->kind == IX_TENSOR) consumed++;
    else if (it->kind == IX_MASK) consumed += tfw_tensor_ndim(it->idx);
    else if (it->kind == IX_ELLIPSIS) n_ell++;
  }
  if (n_ell > 1) {
    PyErr_SetString(PyExc_IndexError, "an index can only have a single ellipsis ('...')");
    return -1;
  }
  if (consumed > nd) {
    tfpy_raise_status(TFW_EINDEX, "too many indices for tensor of dimension %d", nd);
    return -1;
  }
  p->view = tfw_retain(t);
  int dim = 0;
  for (int k = 0; k < p->n; k++) {
    ixitem *it = &p->it[k];
    tfw_tensor *v = p->view;
    switch (it->kind) {
    case IX_NONE:
      if (view_step(p, tfw_unsqueeze(v, dim))) return -1;
      dim++;
      break;
    case IX_ELLIPSIS:
      dim += nd - consumed;
      break;
    case IX_INT: {
      int64_t size = tfw_tensor_shape(v)[dim];
      if (it->v < -size || it->v >= size) {
        tfpy_raise_status(TFW_EINDEX, "index %lld is out of bounds for dimension %d with size %lld",
                          (long long)it->v, dim, (long long)size);
        return -1;
      }
      if (view_step(p, tfw_select(v, dim, it->v))) return -1;
      break;
    }
    case IX_SLICE: {
      Py_ssize_t start, stop, step;
      if (PySlice_Unpack(it->slice, &start, &stop, &step) < 0) return -1;
      if (step <= 0) {
        tfpy_raise_status(TFW_EVALUE, "step must be greater than zero");
        return -1;
      }
      PySlice_AdjustIndices((Py_ssize_t)tfw_tensor_shape(v)[dim], &start, &stop, step);
      if (stop < start) stop = start;
      if (view_step(p, tfw_slice(v, dim, start, stop, step))) return -1;
      dim++;
      break;
    }
    case IX_TENSOR: {
      tfw_tensor *i64 = tfw_to_dtype(it->idx, TFW_DTYPE_I64);
      if (!i64) {
        tfpy_raise();
        return -1;
      }
      if (add_adv(p, dim, i64)) return -1;
      dim++;
      break;
    }
    case IX_MASK: {
      int mk = tfw_tensor_ndim(it->idx);
      if (mk == 0) {
        /* x[True] adds a dim of size 1, x[False] of size 0 */
        double b;
        tfw_item(it->idx, &b);
        if (view_step(p, tfw_unsqueeze(v, dim))) return -1;
        tfw_tensor *i64 = b != 0 ? tfw_zeros(TFW_DTYPE_I64, 1, (int64_t[]){1})
                                 : tfw_zeros(TFW_DTYPE_I64, 1, (int64_t[]){0});
        if (!i64) {
          tfpy_raise();
          return -1;
        }
        if (add_adv(p, dim, i64)) return -1;
        dim++;
        break;
      }
      for (int j = 0; j < mk; j++) {
        int64_t ms = tfw_tensor_shape(it->idx)[j], vs = tfw_tensor_shape(v)[dim + j];
        if (ms != vs) {
          tfpy_raise_status(TFW_EINDEX, "The shape of the mask at index %d (%lld) does not match the "
                            "shape of the indexed tensor at index %d (%lld)", j, (long long)ms,
                            dim + j, (long long)vs);
          return -1;
        }
      }
      tfw_tensor *nz;
      Py_BEGIN_ALLOW_THREADS
      nz = tfw_nonzero(it->idx);
      Py_END_ALLOW_THREADS
      if (!nz) {
        tfpy_raise();
        return -1;
      }
      for (int j = 0; j < mk; j++) {
        tfw_tensor *col = tfw_select(nz, 1, j);
        tfw_tensor *cc = col ? tfw_contiguous(col) : NULL;
        tfw_release(col);
        if (!cc) {
          tfw_release(nz);
          tfpy_raise();
          return -1;
        }
        if (add_adv(p, dim + j, cc)) {
          tfw_release(nz);
          return -1;
        }
      }
      tfw_release(nz);
      dim += mk;
      break;
    }
    }
  }
  return 0;
}

/* Broadcasts the advanced indices, checks and wraps their values (negative counts from the
 * end), and computes for each broadcast position the offset into the advanced dims, both as
 * a linear index over those dims (lin) and as an element offset (off) using the view's
 * strides. Returns the number of positions or -1. */
typedef struct {
  int nb;
  int64_t bshape[TFW_MAX_DIMS];
  int64_t count;
  int64_t *lin; /* PyMem */
  int64_t *off;
} advinfo;

static int adv_compute(ixplan *p, advinfo *ai) {
  memset(ai, 0, sizeof *ai);
  int nb = 0;
  for (int k = 0; k < p->n_adv; k++) {
    int n = tfw_tensor_ndim(p->adv[k]);
    if (n > nb) nb = n;
  }
  for (int d = 0; d < nb; d++) ai->bshape[d] = 1;
  for (int k = 0; k < p->n_adv; k++) {
    int n = tfw_tensor_ndim(p->adv[k]);
    for (int d = 0; d < n; d++) {
      int64_t s = tfw_tensor_shape(p->adv[k])[d];
      int64_t *b = &ai->bshape[nb - n + d];
      if (*b == 1) *b = s;
      else if (s != 1 && s != *b) {
        tfpy_raise_status(TFW_ESHAPE, "shape mismatch: indexing tensors could not be broadcast "
                          "together (size %lld vs %lld at dim %d)", (long long)s, (long long)*b,
                          nb - n + d);
        return -1;
      }
    }
  }
  ai->nb = nb;
  int64_t count = 1;
  for (int d = 0; d < nb; d++) count *= ai->bshape[d];
  ai->count = count;
  ai->lin = PyMem_Malloc((size_t)(count ? count : 1) * sizeof(int64_t));
  ai->off = PyMem_Malloc((size_t)(count ? count : 1) * sizeof(int64_t));
  if (!ai->lin || !ai->off) {
    PyErr_NoMemory();
    return -1;
  }
  for (int64_t i = 0; i < count; i++) ai->lin[i] = ai->off[i] = 0;
  const int64_t *vshape = tfw_tensor_shape(p->view), *vstr = tfw_tensor_strides(p->view);
  for (int k = 0; k < p->n_adv; k++) {
    tfw_tensor *ix = p->adv[k];
    tfw_tensor *c = tfw_contiguous(ix);
    if (!c) {
      tfpy_raise();
      return -1;
    }
    const int64_t *data = tfw_tensor_data(c);
    int n = tfw_tensor_ndim(c);
    int64_t bstr[TFW_MAX_DIMS] = {0};
    int64_t s = 1;
    for (int d = n - 1; d >= 0; d--) {
      bstr[nb - n + d] = tfw_tensor_shape(c)[d] == 1 ? 0 : s;
      s *= tfw_tensor_shape(c)[d];
    }
    int dim = p->adv_dim[k];
    int64_t size = vshape[dim];
    int64_t inner = 1;
    for (int j = k + 1; j < p->n_adv; j++) inner *= vshape[p->adv_dim[j]];
    int64_t pos[TFW_MAX_DIMS] = {0};
    for (int64_t i = 0; i < count; i++) {
      int64_t src = 0;
      for (int d = 0; d < nb; d++) src += pos[d] * bstr[d];
      int64_t v = data[src];
      if (v < -size || v >= size) {
        tfw_release(c);
        tfpy_raise_status(TFW_EINDEX, "index %lld is out of bounds for dimension %d with size %lld",
                          (long long)v, dim, (long long)size);
        return -1;
      }
      if (v < 0) v += size;
      ai->lin[i] += v * inner;
      ai->off[i] += v * vstr[dim];
      for (int d = nb - 1; d >= 0; d--) {
        if (++pos[d] < ai->bshape[d]) break;
        pos[d] = 0;
      }
    }
    tfw_release(c);
  }
  return 0;
}

static void adv_free(advinfo *ai) {
  PyMem_Free(ai->lin);
  PyMem_Free(ai->off);
}

static int adv_adjacent(const ixplan *p) {
  for (int k = 1; k < p->n_adv; k++)
    if (p->adv_dim[k] != p->adv_dim[k - 1] + 1) return 0;
  return 1;
}

/* perm: advanced dims first (in order), then the others; returns the count of others. */
static int adv_perm(const ixplan *p, int *perm, int *others) {
  int nd = tfw_tensor_ndim(p->view), k = 0, no = 0;
  for (int j = 0; j < p->n_adv; j++) perm[k++] = p->adv_dim[j];
  for (int d = 0; d < nd; d++) {
    int is_adv = 0;
    for (int j = 0; j < p->n_adv; j++)
      if (p->adv_dim[j] == d) is_adv = 1;
    if (!is_adv) {
      perm[k++] = d;
      others[no++] = d;
    }
  }
  return no;
}

static PyObject *tensor_getitem(PyObject *self, PyObject *key) {
  ixplan p;
  if (plan_build(&p, T(self), key)) {
    plan_free(&p);
    return NULL;
  }
  if (p.n_adv == 0) {
    tfw_tensor *v = p.view;
    p.view = NULL;
    plan_free(&p);
    return tfpy_wrap(v);
  }
  advinfo ai;
  PyObject *res = NULL;
  tfw_tensor *perm_v = NULL, *flat = NULL, *lin = NULL, *sel = NULL, *out = NULL;
  if (adv_compute(&p, &ai)) goto done;
  int nd = tfw_tensor_ndim(p.view);
  int perm[TFW_MAX_DIMS], others[TFW_MAX_DIMS];
  int no = adv_perm(&p, perm, others);
  if (ai.nb + no > TFW_MAX_DIMS) {
    tfpy_raise_status(TFW_EVALUE, "indexing result would have %d dims; at most %d", ai.nb + no,
                      TFW_MAX_DIMS);
    goto done;
  }
  const int64_t *vs = tfw_tensor_shape(p.view);
  int64_t fshape[TFW_MAX_DIMS];
  int64_t adv_total = 1;
  for (int j = 0; j < p.n_adv; j++) adv_total *= vs[p.adv_dim[j]];
  fshape[0] = adv_total;
  for (int j = 0; j < no; j++) fshape[1 + j] = vs[others[j]];
  int64_t lshape[1] = {ai.count};
  perm_v = tfw_permute(p.view, nd, perm);
  flat = perm_v ? tfw_reshape(perm_v, 1 + no, fshape) : NULL;
  lin = tfw_from_data(TFW_DTYPE_I64, 1, lshape, ai.lin);
  if (!flat || !lin) {
    tfpy_raise();
    goto done;
  }
  Py_BEGIN_ALLOW_THREADS
  sel = tfw_index_select(flat, 0, lin);
  Py_END_ALLOW_THREADS
  if (!sel) {
    tfpy_raise();
    goto done;
  }
  int64_t oshape[TFW_MAX_DIMS];
  for (int d = 0; d < ai.nb; d++) oshape[d] = ai.bshape[d];
  for (int j = 0; j < no; j++) oshape[ai.nb + j] = vs[others[j]];
  out = tfw_reshape(sel, ai.nb + no, oshape);
  if (!out) {
    tfpy_raise();
    goto done;
  }
  int first = p.adv_dim[0];
  if (adv_adjacent(&p) && first > 0) {
    /* the broadcast dims go where the advanced dims were */
    int pp[TFW_MAX_DIMS], k = 0;
    int on = ai.nb + no;
    for (int j = 0; j < first; j++) pp[k++] = ai.nb + j;
    for (int j = 0; j < ai.nb; j++) pp[k++] = j;
    for (int j = first; j < no; j++) pp[k++] = ai.nb + j;
    tfw_tensor *o2 = tfw_permute(out, on, pp);
    tfw_release(out);
    out = o2;
    if (!out) {
      tfpy_raise();
      goto done;
    }
  }
  res = tfpy_wrap(out);
  out = NULL;
done:
  adv_free(&ai);
  tfw_release(perm_v);
  tfw_release(flat);
  tfw_release(lin);
  tfw_release(sel);
  tfw_release(out);
  plan_free(&p);
  return res;
}

static int tensor_setitem(PyObject *self, PyObject *key, PyObject *value) {
  if (!value) {
    PyErr_SetString(PyExc_TypeError, "Tensor does not support item deletion");
    return -1;
  }
  ixplan p;
  if (plan_build(&p, T(self), key)) {
    plan_free(&p);
    return -1;
  }
  int rc = -1;
  tfw_tensor *src = tfpy_to_tensor(value);
  if (!src) goto out;
  if (p.n_adv == 0) {
    tfw_status st;
    Py_BEGIN_ALLOW_THREADS
    st = tfw_copy_(p.view, src);
    Py_END_ALLOW_THREADS
    if (st) tfpy_raise();
    else rc = 0;
    goto out;
  }
  if (tfw__check_inplace("index_put_", p.view)) {
    tfpy_raise();
    goto out;
  }
  advinfo ai;
  tfw_tensor *exp = NULL, *perm_s = NULL, *cs = NULL;
  if (adv_compute(&p, &ai)) goto adv_out;
  {
    int nd = tfw_tensor_ndim(p.view);
    int perm[TFW_MAX_DIMS], others[TFW_MAX_DIMS];
    int no = adv_perm(&p, perm, others);
    (void)nd;
    if (ai.nb + no > TFW_MAX_DIMS) {
      tfpy_raise_status(TFW_EVALUE, "indexing result would have more than %d dims", TFW_MAX_DIMS);
      goto adv_out;
    }
    const int64_t *vs = tfw_tensor_shape(p.view), *vst = tfw_tensor_strides(p.view);
    int first = p.adv_dim[0];
    int moved = adv_adjacent(&p) && first > 0;
    /* the user-visible result shape */
    int64_t rshape[TFW_MAX_DIMS];
    int rn = 0;
    if (moved) {
      for (int j = 0; j < first; j++) rshape[rn++] = vs[others[j]];
      for (int d = 0; d < ai.nb; d++) rshape[rn++] = ai.bshape[d];
      for (int j = first; j < no; j++) rshape[rn++] = vs[others[j]];
    } else {
      for (int d = 0; d < ai.nb; d++) rshape[rn++] = ai.bshape[d];
      for (int j = 0; j < no; j++) rshape[rn++] = vs[others[j]];
    }
    exp = tfw_expand(src, rn, rshape);
    if (!exp) {
      tfpy_raise();
      goto adv_out;
    }
    if (moved) {
      int pp[TFW_MAX_DIMS], k = 0;
      for (int d = 0; d < ai.nb; d++) pp[k++] = first + d;
      for (int j = 0; j < first; j++) pp[k++] = j;
      for (int j = first; j < no; j++) pp[k++] = ai.nb + j;
      perm_s = tfw_permute(exp, rn, pp);
    } else {
      perm_s = tfw_retain(exp);
    }
    cs = perm_s ? tfw_to_dtype(perm_s, tfw_tensor_dtype(p.view)) : NULL; /* contiguous copy */
    if (!cs) {
      tfpy_raise();
      goto adv_out;
    }
    size_t es = tfw_dtype_size(tfw_tensor_dtype(p.view));
    char *base = tfw_tensor_data(p.view);
    const char *sp = tfw_tensor_data(cs);
    int64_t rest = 1;
    for (int j = 0; j < no; j++) rest *= vs[others[j]];
    tfw__bump_version(p.view);
    for (int64_t b = 0; b < ai.count; b++) {
      int64_t pos[TFW_MAX_DIMS] = {0};
      for (int64_t r = 0; r < rest; r++) {
        int64_t o = ai.off[b];
        for (int j = 0; j < no; j++) o += pos[j] * vst[others[j]];
        memcpy(base + o * (int64_t)es, sp, es);
        sp += es;
        for (int j = no - 1; j >= 0; j--) {
          if (++pos[j] < vs[others[j]]) break;
          pos[j] = 0;
        }
      }
    }
    rc = 0;
  }
adv_out:
  adv_free(&ai);
  tfw_release(exp);
  tfw_release(perm_s);
  tfw_release(cs);
out:
  tfw_release(src);
  plan_free(&p);
  return rc;
}

static int tensor_contains(PyObject *self, PyObject *el) {
  PyObject *eq = binary(TFW__OP_eq, self, el);
  if (!eq) return -1;
  if (eq == Py_NotImplemented) {
    Py_DECREF(eq);
    PyErr_Format(PyExc_TypeError, "'in' needs a Tensor or a number, got %.100s", Py_TYPE(el)->tp_name);
    return -1;
  }
  tfw_tensor *any = tfw_any(T(eq), 0, NULL, false);
  Py_DECREF(eq);
  if (!any) {
    tfpy_raise();
    return -1;
  }
  double v = 0;
  tfw_status st = tfw_item(any, &v);
  tfw_release(any);
  if (st) {
    tfpy_raise();
    return -1;
  }
  return v != 0;
}

static PySequenceMethods tensor_as_sequence = {.sq_contains = tensor_contains};

static PyMappingMethods tensor_as_mapping = {
    .mp_length = tensor_len,
    .mp_subscript = tensor_getitem,
    .mp_ass_subscript = tensor_setitem,
};

/* ---- method table ---------------------------------------------------------------------------- */

static PyObject *t_register_gradfn(PyObject *cls, PyObject *f) {
  Py_XSETREF(gradfn_factory, Py_NewRef(f));
  Py_RETURN_NONE;
}

static PyObject *t_getstate(PyObject *self, PyObject *u) {
  PyErr_SetString(PyExc_TypeError, "pickling tenflower tensors is not supported; use "
                  "tenflower.save (safetensors)");
  return NULL;
}

static PyMethodDef tensor_methods[] = {
    {"item", t_item, METH_NOARGS, "the value of a one-element tensor as a Python number"},
    {"tolist", t_tolist, METH_NOARGS, "nested lists of Python numbers"},
    {"size", t_size, METH_VARARGS, "size(dim=None)"},
    {"stride", t_stride, METH_VARARGS, "stride(dim=None), in elements"},
    {"dim", t_dim, METH_NOARGS, NULL},
    {"ndimension", t_dim, METH_NOARGS, NULL},
    {"numel", t_numel, METH_NOARGS, NULL},
    {"nelement", t_numel, METH_NOARGS, NULL},
    {"is_contiguous", t_is_contiguous, METH_NOARGS, NULL},
    {"is_floating_point", t_is_floating_point, METH_NOARGS, NULL},
    {"data_ptr", t_data_ptr, METH_NOARGS, "address of the first element"},
    {"element_size", t_element_size, METH_NOARGS, NULL},
    {"detach", t_detach, METH_NOARGS, "a view without history that does not require grad"},
    {"contiguous", t_contiguous, METH_NOARGS, NULL},
    {"requires_grad_", (PyCFunction)(void (*)(void))t_requires_grad_, METH_VARARGS | METH_KEYWORDS, NULL},
    {"backward", (PyCFunction)(void (*)(void))t_backward, METH_VARARGS | METH_KEYWORDS,
     "backward(gradient=None, retain_graph=None, create_graph=False)"},
    {"to", (PyCFunction)(void (*)(void))t_to, METH_VARARGS | METH_KEYWORDS, "to(dtype) / to(device)"},
    {"float", t_float, METH_NOARGS, NULL},
    {"double", t_double, METH_NOARGS, NULL},
    {"half", t_half, METH_NOARGS, NULL},
    {"bfloat16", t_bfloat16, METH_NOARGS, NULL},
    {"int", t_int, METH_NOARGS, NULL},
    {"long", t_long, METH_NOARGS, NULL},
    {"bool", t_bool, METH_NOARGS, NULL},
    {"byte", t_byte, METH_NOARGS, NULL},
    {"char", t_char, METH_NOARGS, NULL},
    {"cpu", t_cpu, METH_NOARGS, NULL},
    {"copy_", t_copy_, METH_VARARGS, "copy_(src): writes src (broadcast, cast) into self"},
    {"fill_", t_fill_, METH_O, NULL},
    {"zero_", t_zero_, METH_NOARGS, NULL},
    {"numpy", tfpy_numpy, METH_NOARGS, "a numpy array sharing this tensor's memory"},
    {"__array__", (PyCFunction)(void (*)(void))tfpy_array, METH_VARARGS | METH_KEYWORDS, NULL},
    {"__dlpack__", (PyCFunction)(void (*)(void))tfpy_dlpack, METH_VARARGS | METH_KEYWORDS,
     "__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None)"},
    {"__dlpack_device__", tfpy_dlpack_device, METH_NOARGS, NULL},
    {"__reduce__", t_getstate, METH_NOARGS, NULL},
    {"_register_grad_fn_factory", t_register_gradfn, METH_O | METH_CLASS, NULL},
    {NULL},
};

PyTypeObject TfpyTensor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tenflower.Tensor",
    .tp_basicsize = sizeof(TensorObject),
    .tp_dealloc = tensor_dealloc,
    .tp_repr = tensor_repr,
    .tp_as_number = &tensor_as_number,
    .tp_as_mapping = &tensor_as_mapping,
    .tp_as_sequence = &tensor_as_sequence,
    .tp_hash = tensor_hash,
    .tp_as_buffer = &tfpy_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A strided, reference-counted n-d array (tenflower's tfw_tensor).",
    .tp_richcompare = tensor_richcompare,
    .tp_weaklistoffset = offsetof(TensorObject, weakrefs),
    .tp_iter = tensor_iter,
    .tp_methods = tensor_methods,
    .tp_getset = tensor_getset,
    .tp_new = tensor_tp_new,
};
