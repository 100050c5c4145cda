/* tenflower._C: module init, dtypes, exceptions, creation functions, grad mode, autograd.grad. */
#include "tfpy.h"

#include <math.h>
#include <stdarg.h>

PyObject *tfpy_dtypes[TFW_DTYPE_COUNT];
PyObject *tfpy_device_cpu;

/* ---- exceptions ------------------------------------------------------------------------ */

static PyObject *exc_base;                /* TenflowerError */
static PyObject *exc_for[TFW_EINTERNAL + 1];

static const struct {
  tfw_status st;
  const char *name;
  const char *doc;
} exc_table[] = {
    {TFW_ESHAPE, "ShapeError", "shape mismatch or invalid shape (a ValueError)"},
    {TFW_EDTYPE, "DTypeError", "unsupported or mismatched dtype (a TypeError)"},
    {TFW_EDEVICE, "DeviceError", "tensors on different or unavailable devices (a RuntimeError)"},
    {TFW_EVALUE, "InvalidArgumentError", "invalid argument value (a ValueError)"},
    {TFW_EINDEX, "TensorIndexError", "index or dimension out of range (an IndexError)"},
    {TFW_ENOMEM, "OutOfMemoryError", "out of memory (a MemoryError)"},
    {TFW_EIO, "TensorIOError", "input/output error (an OSError)"},
    {TFW_EFORMAT, "FormatError", "corrupt or malformed file (a ValueError)"},
    {TFW_EUNSUPPORTED, "UnsupportedError", "operation not supported (a NotImplementedError)"},
    {TFW_ESTATE, "StateError", "invalid state (a RuntimeError)"},
    {TFW_EINTERNAL, "InternalError", "internal error (a RuntimeError)"},
};

static PyObject *builtin_base(tfw_status st) {
  switch (st) {
  case TFW_ESHAPE: case TFW_EVALUE: case TFW_EFORMAT: return PyExc_ValueError;
  case TFW_EDTYPE: return PyExc_TypeError;
  case TFW_EINDEX: return PyExc_IndexError;
  case TFW_ENOMEM: return PyExc_MemoryError;
  case TFW_EIO: return PyExc_OSError;
  case TFW_EUNSUPPORTED: return PyExc_NotImplementedError;
  default: return PyExc_RuntimeError;
  }
}

static PyObject *raise_with(tfw_status st, const char *msg) {
  PyObject *cls = (st > 0 && st <= TFW_EINTERNAL && exc_for[st]) ? exc_for[st] : exc_base;
  if (st == TFW_EIO) {
    /* OSError's constructor reinterprets (errno, strerror) tuples; pass the message only */
  }
  PyObject *m = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
  if (!m) return NULL;
  PyObject *e = PyObject_CallOneArg(cls, m);
  Py_DECREF(m);
  if (!e) return NULL;
  PyObject *code = PyUnicode_FromString(tfw_status_name(st));
  if (code) {
    PyObject_SetAttrString(e, "status", code);
    Py_DECREF(code);
  }
  PyErr_Clear();
  PyErr_SetObject(cls, e);
  Py_DECREF(e);
  return NULL;
}

PyObject *tfpy_raise(void) {
  tfw_status st = tfw_last_status();
  const char *msg = tfw_last_error();
  if (st == TFW_OK) {
    st = TFW_EINTERNAL;
    msg = "tenflower: an operation failed without an error message";
  }
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", msg);
  tfw_clear_error();
  return raise_with(st, buf);
}

PyObject *tfpy_raise_status(tfw_status s, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return raise_with(s, buf);
}

/* ---- dtype objects ------------------------------------------------------------------------ */

static PyObject *dtype_repr(PyObject *o) {
  return PyUnicode_FromFormat("tenflower.%U", ((DTypeObject *)o)->name);
}
static void dtype_dealloc(PyObject *o) {
  Py_XDECREF(((DTypeObject *)o)->name);
  Py_TYPE(o)->tp_free(o);
}
static PyObject *dtype_get_itemsize(PyObject *o, void *c) {
  return PyLong_FromSize_t(tfw_dtype_size(((DTypeObject *)o)->dt));
}
static PyObject *dtype_get_isfloat(PyObject *o, void *c) {
  return PyBool_FromLong(tfw_dtype_is_floating(((DTypeObject *)o)->dt));
}
static PyObject *dtype_get_signed(PyObject *o, void *c) {
  tfw_dtype d = ((DTypeObject *)o)->dt;
  return PyBool_FromLong(d != TFW_DTYPE_U8 && d != TFW_DTYPE_BOOL);
}
static PyObject *dtype_get_name(PyObject *o, void *c) {
  return Py_NewRef(((DTypeObject *)o)->name);
}
static PyObject *dtype_reduce(PyObject *o, PyObject *unused) {
  return PyUnicode_FromFormat("%U", ((DTypeObject *)o)->name); /* module-level constant */
}
static PyGetSetDef dtype_getset[] = {
    {"itemsize", dtype_get_itemsize, NULL, "bytes per element", NULL},
    {"is_floating_point", dtype_get_isfloat, NULL, "float16/bfloat16/float32/float64", NULL},
    {"is_signed", dtype_get_signed, NULL, "all but uint8 and bool", NULL},
    {"name", dtype_get_name, NULL, "the dtype's name", NULL},
    {NULL},
};
static PyMethodDef dtype_methods[] = {
    {"__reduce__", dtype_reduce, METH_NOARGS, NULL},
    {NULL},
};

PyTypeObject TfpyDType_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tenflower.dtype",
    .tp_basicsize = sizeof(DTypeObject),
    .tp_dealloc = dtype_dealloc,
    .tp_repr = dtype_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A tensor element type (tenflower.float32, ...).",
    .tp_getset = dtype_getset,
    .tp_methods = dtype_methods,
};

int tfpy_parse_dtype(PyObject *o, tfw_dtype dflt, tfw_dtype *out) {
  if (!o || o == Py_None) {
    *out = dflt;
    return 0;
  }
  if (PyObject_TypeCheck(o, &TfpyDType_Type)) {
    *out = ((DTypeObject *)o)->dt;
    return 0;
  }
  if (PyUnicode_Check(o)) {
    const char *s = PyUnicode_AsUTF8(o);
    if (!s) return -1;
    for (int d = 0; d < TFW_DTYPE_COUNT; d++)
      if (strcmp(s, tfw_dtype_name((tfw_dtype)d)) == 0) {
        *out = (tfw_dtype)d;
        return 0;
      }
  }
  if (o == (PyObject *)&PyFloat_Type) { *out = TFW_DTYPE_F32; return 0; }
  if (o == (PyObject *)&PyLong_Type) { *out = TFW_DTYPE_I64; return 0; }
  if (o == (PyObject *)&PyBool_Type) { *out = TFW_DTYPE_BOOL; return 0; }
  PyErr_Format(PyExc_TypeError, "dtype must be a tenflower dtype (e.g. tenflower.float32), got %R",
               o);
  return -1;
}

/* ---- shape / int list parsing -------------------------------------------------------------- */

int tfpy_parse_int_list(PyObject *o, const char *what, int64_t *out, int *n, int max) {
  if (PyLong_Check(o) || (Tfpy_Check(o) && tfw_tensor_ndim(((TensorObject *)o)->t) == 0)) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    out[0] = v;
    *n = 1;
    return 0;
  }
  PyObject *seq = PySequence_Fast(o, "");
  if (!seq) {
    PyErr_Format(PyExc_TypeError, "%s must be an int or a sequence of ints, got %.100s", what,
                 Py_TYPE(o)->tp_name);
    return -1;
  }
  Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
  if (len > max) {
    Py_DECREF(seq);
    tfpy_raise_status(TFW_EVALUE, "%s: %zd entries given; at most %d are supported", what, len,
                      max);
    return -1;
  }
  for (Py_ssize_t i = 0; i < len; i++) {
    PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
    if (PyFloat_Check(it) || PyBool_Check(it)) {
      Py_DECREF(seq);
      PyErr_Format(PyExc_TypeError, "%s must contain ints, got %.100s at position %zd", what,
                   Py_TYPE(it)->tp_name, i);
      return -1;
    }
    long long v = PyLong_AsLongLong(it);
    if (v == -1 && PyErr_Occurred()) {
      Py_DECREF(seq);
      return -1;
    }
    out[i] = v;
  }
  *n = (int)len;
  Py_DECREF(seq);
  return 0;
}

int tfpy_parse_shape(PyObject *args, Py_ssize_t start, int64_t *shape, int *ndim) {
  Py_ssize_t n = PyTuple_GET_SIZE(args) - start;
  if (n == 1 && !PyLong_Check(PyTuple_GET_ITEM(args, start)))
    return tfpy_parse_int_list(PyTuple_GET_ITEM(args, start), "size", shape, ndim, TFW_MAX_DIMS);
  PyObject *rest = PyTuple_GetSlice(args, start, PyTuple_GET_SIZE(args));
  if (!rest) return -1;
  int r = tfpy_parse_int_list(rest, "size", shape, ndim, TFW_MAX_DIMS);
  Py_DECREF(rest);
  return r;
}

/* ---- creation ------------------------------------------------------------------------------- */

static PyObject *finish_creation(tfw_tensor *t, PyObject *requires_grad) {
  if (!t) return tfpy_raise();
  if (requires_grad && PyObject_IsTrue(requires_grad)) {
    if (tfw_tensor_set_requires_grad(t, true)) {
      tfw_release(t);
      return tfpy_raise();
    }
  }
  return tfpy_wrap(t);
}

/* zeros/ones/empty/rand/randn(*size, dtype=None, requires_grad=False) */
typedef enum { CR_ZEROS, CR_ONES, CR_EMPTY, CR_RAND, CR_RANDN } creation_kind;

static PyObject *creation(creation_kind kind, PyObject *args, PyObject *kwargs) {
  PyObject *dtype = NULL, *rg = NULL;
  if (kwargs) {
    dtype = PyDict_GetItemString(kwargs, "dtype");
    rg = PyDict_GetItemString(kwargs, "requires_grad");
    Py_ssize_t known = (dtype != NULL) + (rg != NULL);
    if (PyDict_GetItemString(kwargs, "device")) known++;
    if (PyDict_GetItemString(kwargs, "size")) {
      args = PyTuple_Pack(1, PyDict_GetItemString(kwargs, "size"));
      known++;
    } else {
      Py_INCREF(args);
    }
    if (known != PyDict_Size(kwargs)) {
      Py_DECREF(args);
      PyErr_SetString(PyExc_TypeError,
                      "unexpected keyword argument (accepted: size, dtype, device, requires_grad)");
      return NULL;
    }
  } else {
    Py_INCREF(args);
  }
  int64_t shape[TFW_MAX_DIMS];
  int nd = 0;
  int r = tfpy_parse_shape(args, 0, shape, &nd);
  Py_DECREF(args);
  if (r) return NULL;
  tfw_dtype dt;
  if (tfpy_parse_dtype(dtype, TFW_DTYPE_F32, &dt)) return NULL;
  tfw_tensor *t = NULL;
  Py_BEGIN_ALLOW_THREADS
  switch (kind) {
  case CR_ZEROS: t = tfw_zeros(dt, nd, shape); break;
  case CR_ONES: t = tfw_ones(dt, nd, shape); break;
  case CR_EMPTY: t = tfw_empty(dt, nd, shape); break;
  case CR_RAND: t = tfw_rand(dt, nd, shape); break;
  case CR_RANDN: t = tfw_randn(dt, nd, shape); break;
  }
  Py_END_ALLOW_THREADS
  return finish_creation(t, rg);
}

static PyObject *m_zeros(PyObject *m, PyObject *a, PyObject *k) { return creation(CR_ZEROS, a, k); }
static PyObject *m_ones(PyObject *m, PyObject *a, PyObject *k) { return creation(CR_ONES, a, k); }
static PyObject *m_empty(PyObject *m, PyObject *a, PyObject *k) { return creation(CR_EMPTY, a, k); }
static PyObject *m_rand(PyObject *m, PyObject *a, PyObject *k) { return creation(CR_RAND, a, k); }
static PyObject *m_randn(PyObject *m, PyObject *a, PyObject *k) { return creation(CR_RANDN, a, k); }

static int scalar_dtype(PyObject *v, tfw_dtype *dt) {
  if (PyBool_Check(v)) *dt = TFW_DTYPE_BOOL;
  else if (PyLong_Check(v)) *dt = TFW_DTYPE_I64;
  else if (PyFloat_Check(v)) *dt = TFW_DTYPE_F32;
  else if (Tfpy_Check(v)) *dt = tfw_tensor_dtype(((TensorObject *)v)->t);
  else {
    PyErr_Format(PyExc_TypeError, "expected a number, got %.100s", Py_TYPE(v)->tp_name);
    return -1;
  }
  return 0;
}

static PyObject *m_full(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"size", "fill_value", "dtype", "device", "requires_grad", NULL};
  PyObject *size, *fill, *dtype = Py_None, *device = Py_None, *rg = Py_False;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|$OOO:full", kw, &size, &fill, &dtype, &device,
                                   &rg))
    return NULL;
  int64_t shape[TFW_MAX_DIMS];
  int nd;
  if (tfpy_parse_int_list(size, "size", shape, &nd, TFW_MAX_DIMS)) return NULL;
  tfw_dtype dflt;
  if (scalar_dtype(fill, &dflt)) return NULL;
  tfw_dtype dt;
  if (tfpy_parse_dtype(dtype, dflt, &dt)) return NULL;
  double v = PyFloat_AsDouble(fill);
  if (v == -1.0 && PyErr_Occurred()) return NULL;
  return finish_creation(tfw_full(dt, nd, shape, v), rg);
}

static PyObject *m_arange(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"start", "end", "step", "dtype", "device", "requires_grad", NULL};
  PyObject *a = NULL, *b = Py_None, *s = NULL, *dtype = Py_None, *device = Py_None, *rg = Py_False;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO$OOO:arange", kw, &a, &b, &s, &dtype,
                                   &device, &rg))
    return NULL;
  PyObject *start, *end;
  if (b == Py_None) {
    start = NULL;
    end = a;
  } else {
    start = a;
    end = b;
  }
  double vs = 0, ve, vstep = 1;
  int any_float = 0;
  PyObject *vals[3] = {start, end, s};
  for (int i = 0; i < 3; i++) {
    if (!vals[i]) continue;
    if (PyFloat_Check(vals[i])) any_float = 1;
    else if (Tfpy_Check(vals[i]) && tfw_dtype_is_floating(tfw_tensor_dtype(((TensorObject *)vals[i])->t)))
      any_float = 1;
  }
  if (start && (vs = PyFloat_AsDouble(start)) == -1.0 && PyErr_Occurred()) return NULL;
  if ((ve = PyFloat_AsDouble(end)) == -1.0 && PyErr_Occurred()) return NULL;
  if (s && (vstep = PyFloat_AsDouble(s)) == -1.0 && PyErr_Occurred()) return NULL;
  tfw_dtype dt;
  if (tfpy_parse_dtype(dtype, any_float ? TFW_DTYPE_F32 : TFW_DTYPE_I64, &dt)) return NULL;
  return finish_creation(tfw_arange(vs, ve, vstep, dt), rg);
}

static PyObject *m_linspace(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"start", "end", "steps", "dtype", "device", "requires_grad", NULL};
  double a, b;
  long long steps;
  PyObject *dtype = Py_None, *device = Py_None, *rg = Py_False;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ddL|$OOO:linspace", kw, &a, &b, &steps, &dtype,
                                   &device, &rg))
    return NULL;
  tfw_dtype dt;
  if (tfpy_parse_dtype(dtype, TFW_DTYPE_F32, &dt)) return NULL;
  return finish_creation(tfw_linspace(a, b, steps, dt), rg);
}

static PyObject *m_eye(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"n", "m", "dtype", "device", "requires_grad", NULL};
  long long n;
  PyObject *mm = Py_None, *dtype = Py_None, *device = Py_None, *rg = Py_False;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "L|O$OOO:eye", kw, &n, &mm, &dtype, &device, &rg))
    return NULL;
  long long cols = n;
  if (mm != Py_None) {
    cols = PyLong_AsLongLong(mm);
    if (cols == -1 && PyErr_Occurred()) return NULL;
  }
  tfw_dtype dt;
  if (tfpy_parse_dtype(dtype, TFW_DTYPE_F32, &dt)) return NULL;
  return finish_creation(tfw_eye(n, cols, dt), rg);
}

/* randint(high, size) or randint(low, high, size), dtype=int64 */
static PyObject *m_randint(PyObject *m, PyObject *args, PyObject *kwargs) {
  PyObject *dtype = NULL, *size = NULL;
  long long low = 0, high;
  Py_ssize_t n = PyTuple_GET_SIZE(args);
  if (kwargs) {
    dtype = PyDict_GetItemString(kwargs, "dtype");
    size = PyDict_GetItemString(kwargs, "size");
  }
  Py_ssize_t npos = n;
  if (!size) {
    if (n < 2) {
      PyErr_SetString(PyExc_TypeError, "randint(low=0, high, size, *, dtype=int64)");
      return NULL;
    }
    size = PyTuple_GET_ITEM(args, n - 1);
    npos = n - 1;
  }
  if (npos == 1) {
    high = PyLong_AsLongLong(PyTuple_GET_ITEM(args, 0));
  } else if (npos == 2) {
    low = PyLong_AsLongLong(PyTuple_GET_ITEM(args, 0));
    high = PyLong_AsLongLong(PyTuple_GET_ITEM(args, 1));
  } else {
    PyErr_SetString(PyExc_TypeError, "randint(low=0, high, size, *, dtype=int64)");
    return NULL;
  }
  if (PyErr_Occurred()) return NULL;
  int64_t shape[TFW_MAX_DIMS];
  int nd;
  if (tfpy_parse_int_list(size, "size", shape, &nd, TFW_MAX_DIMS)) return NULL;
  tfw_dtype dt;
  if (tfpy_parse_dtype(dtype, TFW_DTYPE_I64, &dt)) return NULL;
  return finish_creation(tfw_randint(low, high, dt, nd, shape), NULL);
}

static PyObject *m_manual_seed(PyObject *m, PyObject *arg) {
  unsigned long long s = PyLong_AsUnsignedLongLongMask(arg);
  if (PyErr_Occurred()) return NULL;
  tfw_manual_seed(s);
  Py_RETURN_NONE;
}
static PyObject *m_initial_seed(PyObject *m, PyObject *unused) {
  return PyLong_FromUnsignedLongLong(tfw_initial_seed());
}
static PyObject *m_get_rng_state(PyObject *m, PyObject *unused) {
  uint64_t s, o;
  tfw_rng_get_state(&s, &o);
  return Py_BuildValue("(KK)", (unsigned long long)s, (unsigned long long)o);
}
static PyObject *m_set_rng_state(PyObject *m, PyObject *arg) {
  unsigned long long s, o;
  if (!PyArg_ParseTuple(arg, "KK", &s, &o)) return NULL;
  tfw_rng_set_state(s, o);
  Py_RETURN_NONE;
}

/* ---- grad mode and autograd.grad ------------------------------------------------------------ */

static PyObject *m_set_grad_enabled(PyObject *m, PyObject *arg) {
  int on = PyObject_IsTrue(arg);
  if (on < 0) return NULL;
  return PyBool_FromLong(tfw_set_grad_enabled(on));
}
static PyObject *m_is_grad_enabled(PyObject *m, PyObject *unused) {
  return PyBool_FromLong(tfw_grad_enabled());
}
static PyObject *m_set_anomaly(PyObject *m, PyObject *arg) {
  int on = PyObject_IsTrue(arg);
  if (on < 0) return NULL;
  bool prev = tfw_anomaly_mode();
  tfw_set_anomaly_mode(on);
  return PyBool_FromLong(prev);
}

static int tensor_list(PyObject *o, const char *what, tfw_tensor **out, int max, int allow_none) {
  if (Tfpy_Check(o)) {
    out[0] = ((TensorObject *)o)->t;
    return 1;
  }
  PyObject *seq = PySequence_Fast(o, "");
  if (!seq) {
    PyErr_Format(PyExc_TypeError, "%s must be a Tensor or a sequence of Tensors", what);
    return -1;
  }
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  if (n > max) {
    Py_DECREF(seq);
    PyErr_Format(PyExc_ValueError, "%s: at most %d tensors are supported, got %zd", what, max, n);
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
    if (allow_none && it == Py_None) {
      out[i] = NULL;
      continue;
    }
    if (!Tfpy_Check(it)) {
      Py_DECREF(seq);
      PyErr_Format(PyExc_TypeError, "%s[%zd] must be a Tensor, got %.100s", what, i,
                   Py_TYPE(it)->tp_name);
      return -1;
    }
    out[i] = ((TensorObject *)it)->t; /* borrowed: the sequence is held by the caller */
  }
  Py_DECREF(seq);
  return (int)n;
}

#define MAX_GRAD_TENSORS 256

/* autograd.grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
 *               allow_unused=False) */
static PyObject *m_autograd_grad(PyObject *m, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"outputs", "inputs", "grad_outputs", "retain_graph", "create_graph",
                       "allow_unused", NULL};
  PyObject *outs, *ins, *gouts = Py_None, *retain = Py_None;
  int create = 0, allow_unused = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|OOpp:grad", kw, &outs, &ins, &gouts, &retain,
                                   &create, &allow_unused))
    return NULL;
  tfw_tensor *o[MAX_GRAD_TENSORS], *in[MAX_GRAD_TENSORS], *go[MAX_GRAD_TENSORS];
  tfw_tensor *g[MAX_GRAD_TENSORS];
  int no = tensor_list(outs, "outputs", o, MAX_GRAD_TENSORS, 0);
  if (no < 0) return NULL;
  int ni = tensor_list(ins, "inputs", in, MAX_GRAD_TENSORS, 0);
  if (ni < 0) return NULL;
  tfw_tensor *const *gop = NULL;
  tfw_tensor *gconv[MAX_GRAD_TENSORS] = {NULL};
  if (gouts != Py_None) {
    int ng = tensor_list(gouts, "grad_outputs", go, MAX_GRAD_TENSORS, 1);
    if (ng < 0) return NULL;
    if (ng != no) {
      PyErr_Format(PyExc_ValueError, "grad: %d grad_outputs for %d outputs", ng, no);
      return NULL;
    }
    for (int k = 0; k < no; k++) {
      if (!go[k]) {
        gconv[k] = tfw_ones_like(o[k]);
        if (!gconv[k]) goto fail;
        go[k] = gconv[k];
      }
    }
    gop = go;
  }
  int retain_graph = retain == Py_None ? create : PyObject_IsTrue(retain);
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_grad(no, o, ni, in, gop, retain_graph, create, allow_unused, g);
  Py_END_ALLOW_THREADS
  for (int k = 0; k < no; k++) tfw_release(gconv[k]);
  if (st) return tfpy_raise();
  PyObject *res = PyTuple_New(ni);
  if (!res) {
    for (int k = 0; k < ni; k++) tfw_release(g[k]);
    return NULL;
  }
  for (int k = 0; k < ni; k++) {
    if (!g[k]) {
      PyTuple_SET_ITEM(res, k, Py_NewRef(Py_None));
    } else {
      PyObject *w = tfpy_wrap(g[k]);
      if (!w) {
        for (int j = k + 1; j < ni; j++) tfw_release(g[j]);
        Py_DECREF(res);
        return NULL;
      }
      PyTuple_SET_ITEM(res, k, w);
    }
  }
  return res;
fail:
  for (int k = 0; k < no; k++) tfw_release(gconv[k]);
  return tfpy_raise();
}

/* ---- misc ------------------------------------------------------------------------------------ */

static PyObject *m_set_num_threads(PyObject *m, PyObject *arg) {
  long n = PyLong_AsLong(arg);
  if (n == -1 && PyErr_Occurred()) return NULL;
  tfw_set_num_threads((int)n);
  Py_RETURN_NONE;
}
static PyObject *m_get_num_threads(PyObject *m, PyObject *unused) {
  return PyLong_FromLong(tfw_get_num_threads());
}
static PyObject *m_memory_stats(PyObject *m, PyObject *unused) {
  tfw_memory_stats s;
  tfw_memory_stats_get(&s);
  return Py_BuildValue("{sLsLsLsLsLsLsL}", "live_tensors", (long long)s.live_tensors, "live_bytes",
                       (long long)s.live_bytes, "peak_bytes", (long long)s.peak_bytes,
                       "live_allocations", (long long)s.live_allocations, "total_allocations",
                       (long long)s.total_allocations, "cached_bytes", (long long)s.cached_bytes,
                       "cache_hits", (long long)s.cache_hits);
}
static PyObject *m_register(PyObject *m, PyObject *args, PyObject *kwargs) {
  PyObject *dev = kwargs ? PyDict_GetItemString(kwargs, "device_cpu") : NULL;
  if (dev) Py_XSETREF(tfpy_device_cpu, Py_NewRef(dev));
  Py_RETURN_NONE;
}
/* _add_method(name, function): installs a Python function as a Tensor method (the pure-Python
 * parts of the API: reshape, flatten, split, ...). */
static PyObject *m_add_method(PyObject *m, PyObject *args) {
  PyObject *name, *fn;
  if (!PyArg_ParseTuple(args, "UO:_add_method", &name, &fn)) return NULL;
  if (PyDict_SetItem(TfpyTensor_Type.tp_dict, name, fn) < 0) return NULL;
  PyType_Modified(&TfpyTensor_Type);
  Py_RETURN_NONE;
}
static PyObject *m_promote_types(PyObject *m, PyObject *args) {
  PyObject *a, *b;
  if (!PyArg_ParseTuple(args, "OO", &a, &b)) return NULL;
  tfw_dtype da, db;
  if (tfpy_parse_dtype(a, TFW_DTYPE_F32, &da) || tfpy_parse_dtype(b, TFW_DTYPE_F32, &db)) return NULL;
  return Py_NewRef(tfpy_dtypes[tfw_promote_types(da, db)]);
}

static PyMethodDef module_methods[] = {
    {"tensor", (PyCFunction)(void (*)(void))tfpy_tensor_new, METH_VARARGS | METH_KEYWORDS,
     "tensor(data, dtype=None, device=None, requires_grad=False): a copy of data"},
    {"zeros", (PyCFunction)(void (*)(void))m_zeros, METH_VARARGS | METH_KEYWORDS, "zeros(*size, dtype=None, requires_grad=False)"},
    {"ones", (PyCFunction)(void (*)(void))m_ones, METH_VARARGS | METH_KEYWORDS, "ones(*size, dtype=None, requires_grad=False)"},
    {"empty", (PyCFunction)(void (*)(void))m_empty, METH_VARARGS | METH_KEYWORDS, "empty(*size, dtype=None, requires_grad=False)"},
    {"rand", (PyCFunction)(void (*)(void))m_rand, METH_VARARGS | METH_KEYWORDS, "rand(*size, dtype=None): U[0, 1)"},
    {"randn", (PyCFunction)(void (*)(void))m_randn, METH_VARARGS | METH_KEYWORDS, "randn(*size, dtype=None): N(0, 1)"},
    {"randint", (PyCFunction)(void (*)(void))m_randint, METH_VARARGS | METH_KEYWORDS, "randint(low=0, high, size, *, dtype=int64)"},
    {"full", (PyCFunction)(void (*)(void))m_full, METH_VARARGS | METH_KEYWORDS, "full(size, fill_value, *, dtype=None)"},
    {"arange", (PyCFunction)(void (*)(void))m_arange, METH_VARARGS | METH_KEYWORDS, "arange(start=0, end, step=1, *, dtype=None)"},
    {"linspace", (PyCFunction)(void (*)(void))m_linspace, METH_VARARGS | METH_KEYWORDS, "linspace(start, end, steps, *, dtype=None)"},
    {"eye", (PyCFunction)(void (*)(void))m_eye, METH_VARARGS | METH_KEYWORDS, "eye(n, m=None, *, dtype=None)"},
    {"manual_seed", m_manual_seed, METH_O, "manual_seed(seed): seeds the global Philox generator"},
    {"initial_seed", m_initial_seed, METH_NOARGS, NULL},
    {"get_rng_state", m_get_rng_state, METH_NOARGS, "(seed, offset) of the global generator"},
    {"set_rng_state", m_set_rng_state, METH_O, NULL},
    {"_set_grad_enabled", m_set_grad_enabled, METH_O, "sets grad mode; returns the previous one"},
    {"is_grad_enabled", m_is_grad_enabled, METH_NOARGS, NULL},
    {"_set_anomaly_enabled", m_set_anomaly, METH_O, NULL},
    {"_autograd_grad", (PyCFunction)(void (*)(void))m_autograd_grad, METH_VARARGS | METH_KEYWORDS, NULL},
    {"from_numpy", tfpy_from_numpy, METH_O, "from_numpy(ndarray): a tensor sharing the array's memory"},
    {"from_dlpack", (PyCFunction)(void (*)(void))tfpy_from_dlpack, METH_VARARGS | METH_KEYWORDS,
     "from_dlpack(x, *, device=None, copy=None): zero-copy import of a DLPack producer or capsule"},
    {"set_num_threads", m_set_num_threads, METH_O, NULL},
    {"get_num_threads", m_get_num_threads, METH_NOARGS, NULL},
    {"memory_stats", m_memory_stats, METH_NOARGS, "the allocator's statistics (dict)"},
    {"promote_types", m_promote_types, METH_VARARGS, NULL},
    {"_add_method", m_add_method, METH_VARARGS, NULL},
    {"_register", (PyCFunction)(void (*)(void))m_register, METH_VARARGS | METH_KEYWORDS, NULL},
    {"_op", (PyCFunction)(void (*)(void))tfpy_raw_op, METH_VARARGS | METH_KEYWORDS,
     "_op(name, *tensors, ints=None, i=(), f=(), b=(), dtype=None, str=None): runs one registry "
     "op with raw attributes; returns a Tensor or a tuple for two outputs"},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tenflower._C", "tenflower's C extension (CPython C API).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__C(void) {
  PyObject *m = PyModule_Create(&module_def);
  if (!m) return NULL;
  if (PyType_Ready(&TfpyDType_Type) < 0 || PyType_Ready(&TfpyTensor_Type) < 0 ||
      PyType_Ready(&TfpyOpFunc_Type) < 0)
    goto fail;
  Py_INCREF(&TfpyTensor_Type);
  if (PyModule_AddObject(m, "Tensor", (PyObject *)&TfpyTensor_Type) < 0) goto fail;
  Py_INCREF(&TfpyDType_Type);
  if (PyModule_AddObject(m, "dtype", (PyObject *)&TfpyDType_Type) < 0) goto fail;
  for (int d = 0; d < TFW_DTYPE_COUNT; d++) {
    DTypeObject *o = PyObject_New(DTypeObject, &TfpyDType_Type);
    if (!o) goto fail;
    o->dt = (tfw_dtype)d;
    o->name = PyUnicode_FromString(tfw_dtype_name((tfw_dtype)d));
    if (!o->name) goto fail;
    tfpy_dtypes[d] = (PyObject *)o;
    Py_INCREF(o);
    if (PyModule_AddObject(m, tfw_dtype_name((tfw_dtype)d), (PyObject *)o) < 0) goto fail;
  }
  exc_base = PyErr_NewExceptionWithDoc("tenflower.TenflowerError",
                                       "Base class of tenflower's errors; .status is the C code "
                                       "name (\"TFW_ESHAPE\", ...).", PyExc_Exception, NULL);
  if (!exc_base) goto fail;
  Py_INCREF(exc_base);
  PyModule_AddObject(m, "TenflowerError", exc_base);
  for (size_t i = 0; i < sizeof exc_table / sizeof exc_table[0]; i++) {
    char full[96];
    snprintf(full, sizeof full, "tenflower.%s", exc_table[i].name);
    PyObject *bases = PyTuple_Pack(2, exc_base, builtin_base(exc_table[i].st));
    if (!bases) goto fail;
    PyObject *cls = PyErr_NewExceptionWithDoc(full, exc_table[i].doc, bases, NULL);
    Py_DECREF(bases);
    if (!cls) goto fail;
    exc_for[exc_table[i].st] = cls;
    Py_INCREF(cls);
    if (PyModule_AddObject(m, exc_table[i].name, cls) < 0) goto fail;
  }
  if (PyModule_AddStringConstant(m, "__version__", tfw_version()) < 0) goto fail;
  if (tfpy_ops_init(m) < 0) goto fail;
  if (tfpy_nn_init(m) < 0 || tfpy_train_init(m) < 0) goto fail;
  return m;
fail:
  Py_DECREF(m);
  return NULL;
}
