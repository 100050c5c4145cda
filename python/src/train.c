/* tenflower._C: optimizers, lr schedulers, gradient clipping, safetensors, autocast,
 * checkpointing, forward-mode tangents, and the data API (IDX/MNIST, tensor loader) that
 * tenflower.optim, tenflower.save/load, tenflower.amp, tenflower.utils and tenflower.data
 * build on. Library calls that do work run with the GIL released. */
#include "tfpy.h"

#include <math.h>

#include "autograd/autograd.h"

#define T(o) (((TensorObject *)(o))->t)

static PyObject *status_none(tfw_status st) {
  if (st) return tfpy_raise();
  Py_RETURN_NONE;
}

/* A Python sequence of Tensors -> a malloc'd array of borrowed pointers (n in *n). */
static tfw_tensor **tensor_array(PyObject *seq_in, int *n, PyObject **keep) {
  PyObject *seq = PySequence_Fast(seq_in, "expected a sequence of tensors");
  if (!seq) return NULL;
  Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
  tfw_tensor **a = PyMem_Malloc(sizeof(*a) * (size_t)(len ? len : 1));
  if (!a) {
    Py_DECREF(seq);
    PyErr_NoMemory();
    return NULL;
  }
  for (Py_ssize_t i = 0; i < len; i++) {
    PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
    if (!Tfpy_Check(o)) {
      PyErr_Format(PyExc_TypeError, "expected a Tensor at position %zd, got %.100s", i,
                   Py_TYPE(o)->tp_name);
      PyMem_Free(a);
      Py_DECREF(seq);
      return NULL;
    }
    a[i] = T(o);
  }
  *n = (int)len;
  *keep = seq; /* keeps the items alive while a is used */
  return a;
}

/* [(name, tensor)] <-> tfw_named_tensor lists */
static PyObject *named_to_list(tfw_named_tensor *l, int n) {
  PyObject *out = PyList_New(n);
  for (int i = 0; out && i < n; i++) {
    PyObject *t = tfpy_wrap(tfw_retain(l[i].tensor));
    PyObject *pair = t ? Py_BuildValue("(sN)", l[i].name, t) : NULL;
    if (!pair) Py_CLEAR(out);
    else PyList_SET_ITEM(out, i, pair);
  }
  tfw_named_tensors_free(l, n);
  return out;
}

/* Borrowed view of a list of (str, Tensor) pairs; names point into the Python strings. */
static tfw_named_tensor *list_to_named(PyObject *lst, int *n, PyObject **keep) {
  PyObject *seq = PySequence_Fast(lst, "expected a sequence of (name, tensor) pairs");
  if (!seq) return NULL;
  Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
  tfw_named_tensor *a = PyMem_Calloc((size_t)(len ? len : 1), sizeof *a);
  if (!a) {
    Py_DECREF(seq);
    PyErr_NoMemory();
    return NULL;
  }
  for (Py_ssize_t i = 0; i < len; i++) {
    PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
    PyObject *name, *t;
    if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 2 ||
        !PyUnicode_Check(name = PyTuple_GET_ITEM(it, 0)) ||
        !Tfpy_Check(t = PyTuple_GET_ITEM(it, 1))) {
      PyErr_Format(PyExc_TypeError, "entry %zd is not a (str, Tensor) pair", i);
      PyMem_Free(a);
      Py_DECREF(seq);
      return NULL;
    }
    a[i].name = (char *)PyUnicode_AsUTF8(name);
    a[i].tensor = T(t);
    if (!a[i].name) {
      PyMem_Free(a);
      Py_DECREF(seq);
      return NULL;
    }
  }
  *n = (int)len;
  *keep = seq;
  return a;
}

/* ---- optimizer -------------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  tfw_optimizer *opt;
} OptObject;

static const char *k_kinds[] = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "AdaBelief", "Lion"};

static int dict_double(PyObject *d, const char *k, double *out) {
  PyObject *v = PyDict_GetItemString(d, k);
  if (!v) return 0;
  double x = PyFloat_AsDouble(v);
  if (x == -1 && PyErr_Occurred()) return -1;
  *out = x;
  return 0;
}

static int dict_bool(PyObject *d, const char *k, bool *out) {
  PyObject *v = PyDict_GetItemString(d, k);
  if (!v) return 0;
  int b = PyObject_IsTrue(v);
  if (b < 0) return -1;
  *out = b;
  return 0;
}

static int dict_to_options(PyObject *d, tfw_optim_options *o) {
  if (!PyDict_Check(d)) {
    PyErr_SetString(PyExc_TypeError, "options must be a dict");
    return -1;
  }
  PyObject *betas = PyDict_GetItemString(d, "betas");
  if (betas) {
    if (!PyArg_ParseTuple(betas, "dd", &o->beta1, &o->beta2)) {
      PyErr_Clear();
      PyErr_SetString(PyExc_TypeError, "betas must be a pair of floats");
      return -1;
    }
  }
  if (dict_double(d, "lr", &o->lr) || dict_double(d, "weight_decay", &o->weight_decay) ||
      dict_double(d, "momentum", &o->momentum) || dict_double(d, "dampening", &o->dampening) ||
      dict_bool(d, "nesterov", &o->nesterov) || dict_double(d, "eps", &o->eps) ||
      dict_bool(d, "amsgrad", &o->amsgrad) || dict_bool(d, "maximize", &o->maximize) ||
      dict_double(d, "alpha", &o->alpha) || dict_bool(d, "centered", &o->centered) ||
      dict_double(d, "lr_decay", &o->lr_decay) ||
      dict_double(d, "initial_accumulator_value", &o->initial_accumulator_value) ||
      dict_bool(d, "decoupled_weight_decay", &o->decoupled_weight_decay))
    return -1;
  return 0;
}

static PyObject *options_to_dict(const tfw_optim_options *o) {
  return Py_BuildValue(
      "{s:d,s:d,s:d,s:d,s:O,s:(dd),s:d,s:O,s:O,s:d,s:O,s:d,s:d,s:O}", "lr", o->lr,
      "weight_decay", o->weight_decay, "momentum", o->momentum, "dampening", o->dampening,
      "nesterov", o->nesterov ? Py_True : Py_False, "betas", o->beta1, o->beta2, "eps", o->eps,
      "amsgrad", o->amsgrad ? Py_True : Py_False, "maximize", o->maximize ? Py_True : Py_False,
      "alpha", o->alpha, "centered", o->centered ? Py_True : Py_False, "lr_decay", o->lr_decay,
      "initial_accumulator_value", o->initial_accumulator_value, "decoupled_weight_decay",
      o->decoupled_weight_decay ? Py_True : Py_False);
}

static int kind_of(const char *name, tfw_optim_kind *k) {
  for (int i = 0; i < 7; i++)
    if (!strcmp(k_kinds[i], name)) {
      *k = (tfw_optim_kind)i;
      return 0;
    }
  PyErr_Format(PyExc_ValueError, "unknown optimizer '%s'", name);
  return -1;
}

static void opt_dealloc(PyObject *self) {
  tfw_optimizer_release(((OptObject *)self)->opt);
  Py_TYPE(self)->tp_free(self);
}

static PyObject *opt_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  const char *name;
  PyObject *defaults;
  if (!PyArg_ParseTuple(args, "sO", &name, &defaults)) return NULL;
  tfw_optim_kind k;
  if (kind_of(name, &k)) return NULL;
  tfw_optim_options o = tfw_optim_defaults(k);
  if (dict_to_options(defaults, &o)) return NULL;
  tfw_optimizer *opt = tfw_optimizer_new(k, &o);
  if (!opt) return tfpy_raise();
  OptObject *self = (OptObject *)type->tp_alloc(type, 0);
  if (!self) {
    tfw_optimizer_release(opt);
    return NULL;
  }
  self->opt = opt;
  return (PyObject *)self;
}

#define OPT(self) (((OptObject *)(self))->opt)

static PyObject *opt_defaults(PyObject *cls, PyObject *arg) {
  tfw_optim_kind k;
  const char *name = PyUnicode_AsUTF8(arg);
  if (!name || kind_of(name, &k)) return NULL;
  tfw_optim_options o = tfw_optim_defaults(k);
  return options_to_dict(&o);
}

static PyObject *opt_add_group(PyObject *self, PyObject *args) {
  PyObject *params, *d, *keep;
  if (!PyArg_ParseTuple(args, "OO", &params, &d)) return NULL;
  /* the Python layer passes the group's full options (its defaults merged in) */
  tfw_optim_options o = tfw_optim_defaults(tfw_optimizer_kind(OPT(self)));
  if (dict_to_options(d, &o)) return NULL;
  int n;
  tfw_tensor **a = tensor_array(params, &n, &keep);
  if (!a) return NULL;
  tfw_status st = tfw_optimizer_add_param_group(OPT(self), n, a, &o);
  PyMem_Free(a);
  Py_DECREF(keep);
  return status_none(st);
}

static PyObject *opt_step(PyObject *self, PyObject *u) {
  tfw_status st;
  tfw_optimizer *opt = OPT(self);
  Py_BEGIN_ALLOW_THREADS
  st = tfw_optimizer_step(opt);
  Py_END_ALLOW_THREADS
  return status_none(st);
}

static PyObject *opt_zero_grad(PyObject *self, PyObject *arg) {
  int none = PyObject_IsTrue(arg);
  if (none < 0) return NULL;
  tfw_optimizer_zero_grad(OPT(self), none);
  Py_RETURN_NONE;
}

static PyObject *opt_get_options(PyObject *self, PyObject *arg) {
  int g = (int)PyLong_AsLong(arg);
  if (g == -1 && PyErr_Occurred()) return NULL;
  tfw_optim_options o;
  if (tfw_optimizer_get_options(OPT(self), g, &o)) return tfpy_raise();
  return options_to_dict(&o);
}

static PyObject *opt_set_options(PyObject *self, PyObject *args) {
  int g;
  PyObject *d;
  if (!PyArg_ParseTuple(args, "iO", &g, &d)) return NULL;
  tfw_optim_options o;
  if (tfw_optimizer_get_options(OPT(self), g, &o)) return tfpy_raise();
  if (dict_to_options(d, &o)) return NULL;
  return status_none(tfw_optimizer_set_options(OPT(self), g, &o));
}

static PyObject *opt_set_lr(PyObject *self, PyObject *args) {
  int g;
  double lr;
  if (!PyArg_ParseTuple(args, "id", &g, &lr)) return NULL;
  return status_none(tfw_optimizer_set_lr(OPT(self), g, lr));
}

static PyObject *opt_state_dict(PyObject *self, PyObject *u) {
  tfw_named_tensor *l;
  int n;
  if (tfw_optimizer_state_dict(OPT(self), &l, &n)) return tfpy_raise();
  return named_to_list(l, n);
}

static PyObject *opt_load_state_dict(PyObject *self, PyObject *arg) {
  PyObject *keep;
  int n;
  tfw_named_tensor *a = list_to_named(arg, &n, &keep);
  if (!a) return NULL;
  tfw_status st = tfw_optimizer_load_state_dict(OPT(self), n, a);
  PyMem_Free(a);
  Py_DECREF(keep);
  return status_none(st);
}

static PyObject *opt_param_step(PyObject *self, PyObject *arg) {
  return PyLong_FromLongLong(tfw_optimizer_param_step(OPT(self), (int)PyLong_AsLong(arg)));
}

static PyMethodDef opt_methods[] = {
    {"defaults_for", opt_defaults, METH_O | METH_STATIC, NULL},
    {"add_param_group", opt_add_group, METH_VARARGS, NULL},
    {"step", opt_step, METH_NOARGS, NULL},
    {"zero_grad", opt_zero_grad, METH_O, NULL},
    {"get_options", opt_get_options, METH_O, NULL},
    {"set_options", opt_set_options, METH_VARARGS, NULL},
    {"set_lr", opt_set_lr, METH_VARARGS, NULL},
    {"state_dict", opt_state_dict, METH_NOARGS, NULL},
    {"load_state_dict", opt_load_state_dict, METH_O, NULL},
    {"param_step", opt_param_step, METH_O, NULL},
    {NULL},
};

static PyTypeObject Opt_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tenflower._C._Optimizer",
    .tp_basicsize = sizeof(OptObject),
    .tp_dealloc = opt_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = opt_methods,
    .tp_new = opt_new,
    .tp_doc = "_Optimizer(kind, defaults): a C optimizer (tenflower.optim wraps it)",
};

/* ---- lr schedulers ---------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  tfw_lr_scheduler *s;
  PyObject *opt; /* keeps the optimizer alive */
} SchedObject;

static void sched_dealloc(PyObject *self) {
  SchedObject *o = (SchedObject *)self;
  tfw_lr_scheduler_release(o->s);
  Py_XDECREF(o->opt);
  Py_TYPE(self)->tp_free(self);
}

static PyTypeObject Sched_Type;

/* _LRScheduler(optimizer, kind, *args) */
static PyObject *sched_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  if (PyTuple_GET_SIZE(args) < 2 || !PyObject_TypeCheck(PyTuple_GET_ITEM(args, 0), &Opt_Type) ||
      !PyUnicode_Check(PyTuple_GET_ITEM(args, 1))) {
    PyErr_SetString(PyExc_TypeError, "_LRScheduler(optimizer, kind, *args)");
    return NULL;
  }
  PyObject *po = PyTuple_GET_ITEM(args, 0);
  tfw_optimizer *opt = OPT(po);
  const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 1));
  PyObject *a = PyTuple_GetSlice(args, 2, PyTuple_GET_SIZE(args));
  if (!a) return NULL;
  tfw_lr_scheduler *s = NULL;
  int ok = 1;
  long long i0, i1;
  double d0, d1;
  if (!strcmp(kind, "StepLR")) {
    ok = PyArg_ParseTuple(a, "Ld", &i0, &d0);
    if (ok) s = tfw_step_lr_new(opt, i0, d0);
  } else if (!strcmp(kind, "MultiStepLR")) {
    PyObject *ms;
    ok = PyArg_ParseTuple(a, "Od", &ms, &d0);
    int64_t v[64];
    int n = 0;
    if (ok) ok = tfpy_parse_int_list(ms, "milestones", v, &n, 64) == 0;
    if (ok) s = tfw_multistep_lr_new(opt, n, v, d0);
  } else if (!strcmp(kind, "ExponentialLR")) {
    ok = PyArg_ParseTuple(a, "d", &d0);
    if (ok) s = tfw_exponential_lr_new(opt, d0);
  } else if (!strcmp(kind, "CosineAnnealingLR")) {
    ok = PyArg_ParseTuple(a, "Ld", &i0, &d0);
    if (ok) s = tfw_cosine_lr_new(opt, i0, d0);
  } else if (!strcmp(kind, "CosineAnnealingWarmRestarts")) {
    ok = PyArg_ParseTuple(a, "LLd", &i0, &i1, &d0);
    if (ok) s = tfw_cosine_warm_restarts_lr_new(opt, i0, i1, d0);
  } else if (!strcmp(kind, "PolynomialLR")) {
    ok = PyArg_ParseTuple(a, "Ld", &i0, &d0);
    if (ok) s = tfw_polynomial_lr_new(opt, i0, d0);
  } else if (!strcmp(kind, "LinearLR")) {
    ok = PyArg_ParseTuple(a, "ddL", &d0, &d1, &i0);
    if (ok) s = tfw_linear_lr_new(opt, d0, d1, i0);
  } else if (!strcmp(kind, "Warmup")) {
    PyObject *inner;
    ok = PyArg_ParseTuple(a, "OLd", &inner, &i0, &d0);
    if (ok && inner != Py_None && !PyObject_TypeCheck(inner, &Sched_Type)) {
      PyErr_SetString(PyExc_TypeError, "Warmup: inner must be a scheduler or None");
      ok = 0;
    }
    if (ok) {
      tfw_lr_scheduler *in = NULL;
      if (inner != Py_None) { /* ownership moves to the warmup */
        in = ((SchedObject *)inner)->s;
        ((SchedObject *)inner)->s = NULL;
        if (!in) {
          PyErr_SetString(PyExc_ValueError, "Warmup: inner scheduler already used");
          ok = 0;
        }
      }
      if (ok) s = tfw_warmup_lr_new(opt, in, i0, d0);
    }
  } else if (!strcmp(kind, "OneCycleLR")) {
    PyObject *maxl;
    const char *anneal;
    tfw_one_cycle_options o = tfw_one_cycle_defaults(1);
    int cyc, three;
    long long total;
    ok = PyArg_ParseTuple(a, "OLdspddddp", &maxl, &total, &o.pct_start, &anneal, &cyc,
                          &o.base_momentum, &o.max_momentum, &o.div_factor, &o.final_div_factor,
                          &three);
    if (ok) {
      o.total_steps = total;
      o.anneal_strategy = !strcmp(anneal, "linear") ? TFW_ANNEAL_LINEAR : TFW_ANNEAL_COS;
      o.cycle_momentum = cyc;
      o.three_phase = three;
      double v[64];
      int n = 0;
      PyObject *seq = PySequence_Fast(maxl, "max_lr must be a float or a list");
      if (!seq) {
        PyErr_Clear();
        v[0] = PyFloat_AsDouble(maxl);
        n = 1;
        ok = !PyErr_Occurred();
      } else {
        n = (int)PySequence_Fast_GET_SIZE(seq);
        for (int i = 0; i < n && i < 64 && ok; i++) {
          v[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
          ok = !PyErr_Occurred();
        }
        if (n > 64) n = 64;
        Py_DECREF(seq);
      }
      if (ok) s = tfw_one_cycle_lr_new(opt, n, v, &o);
    }
  } else if (!strcmp(kind, "ReduceLROnPlateau")) {
    tfw_plateau_options o = tfw_plateau_defaults();
    const char *mode, *tmode;
    PyObject *minl;
    long long pat, cool;
    ok = PyArg_ParseTuple(a, "sdLdsLOd", &mode, &o.factor, &pat, &o.threshold, &tmode, &cool, &minl,
                          &o.eps);
    if (ok) {
      o.mode_max = !strcmp(mode, "max");
      o.patience = pat;
      o.threshold_abs = !strcmp(tmode, "abs");
      o.cooldown = cool;
      int ng = tfw_optimizer_num_groups(opt);
      double v[64];
      if (PySequence_Check(minl)) {
        for (int i = 0; i < ng && i < 64 && ok; i++) {
          PyObject *it = PySequence_GetItem(minl, i);
          v[i] = it ? PyFloat_AsDouble(it) : 0;
          Py_XDECREF(it);
          ok = !PyErr_Occurred();
        }
        if (ok) s = tfw_plateau_lr_new(opt, &o, v);
      } else {
        o.min_lr = PyFloat_AsDouble(minl);
        ok = !PyErr_Occurred();
        if (ok) s = tfw_plateau_lr_new(opt, &o, NULL);
      }
    }
  } else {
    PyErr_Format(PyExc_ValueError, "unknown scheduler '%s'", kind);
    ok = 0;
  }
  Py_DECREF(a);
  if (!ok) return NULL;
  if (!s) return tfpy_raise();
  SchedObject *self = (SchedObject *)type->tp_alloc(type, 0);
  if (!self) {
    tfw_lr_scheduler_release(s);
    return NULL;
  }
  self->s = s;
  Py_INCREF(po);
  self->opt = po;
  return (PyObject *)self;
}

#define SCHED(self) (((SchedObject *)(self))->s)

static int sched_ok(PyObject *self) {
  if (SCHED(self)) return 0;
  PyErr_SetString(PyExc_RuntimeError, "this scheduler was moved into a warmup scheduler");
  return -1;
}

static PyObject *sched_step(PyObject *self, PyObject *args) {
  PyObject *metric = Py_None;
  if (!PyArg_ParseTuple(args, "|O", &metric) || sched_ok(self)) return NULL;
  if (metric == Py_None) return status_none(tfw_lr_scheduler_step(SCHED(self)));
  double m = PyFloat_AsDouble(metric);
  if (m == -1 && PyErr_Occurred()) return NULL;
  return status_none(tfw_lr_scheduler_step_metric(SCHED(self), m));
}

static PyObject *sched_last_lr(PyObject *self, PyObject *arg) {
  if (sched_ok(self)) return NULL;
  return PyFloat_FromDouble(tfw_lr_scheduler_get_last_lr(SCHED(self), (int)PyLong_AsLong(arg)));
}

static PyObject *sched_last_epoch(PyObject *self, PyObject *u) {
  if (sched_ok(self)) return NULL;
  return PyLong_FromLongLong(tfw_lr_scheduler_last_epoch(SCHED(self)));
}

static PyObject *sched_state_dict(PyObject *self, PyObject *u) {
  if (sched_ok(self)) return NULL;
  tfw_named_tensor *l;
  int n;
  if (tfw_lr_scheduler_state_dict(SCHED(self), &l, &n)) return tfpy_raise();
  return named_to_list(l, n);
}

static PyObject *sched_load_state_dict(PyObject *self, PyObject *arg) {
  if (sched_ok(self)) return NULL;
  PyObject *keep;
  int n;
  tfw_named_tensor *a = list_to_named(arg, &n, &keep);
  if (!a) return NULL;
  tfw_status st = tfw_lr_scheduler_load_state_dict(SCHED(self), n, a);
  PyMem_Free(a);
  Py_DECREF(keep);
  return status_none(st);
}

static PyMethodDef sched_methods[] = {
    {"step", sched_step, METH_VARARGS, NULL},
    {"last_lr", sched_last_lr, METH_O, NULL},
    {"last_epoch", sched_last_epoch, METH_NOARGS, NULL},
    {"state_dict", sched_state_dict, METH_NOARGS, NULL},
    {"load_state_dict", sched_load_state_dict, METH_O, NULL},
    {NULL},
};

static PyTypeObject Sched_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tenflower._C._LRScheduler",
    .tp_basicsize = sizeof(SchedObject),
    .tp_dealloc = sched_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = sched_methods,
    .tp_new = sched_new,
    .tp_doc = "_LRScheduler(optimizer, kind, *args): a C lr scheduler",
};

/* ---- clipping ----------------------------------------------------------------------------------- */

static PyObject *f_clip_grad_norm(PyObject *m, PyObject *args) {
  PyObject *params, *keep;
  double max_norm, norm_type;
  int err;
  if (!PyArg_ParseTuple(args, "Oddp", &params, &max_norm, &norm_type, &err)) return NULL;
  int n;
  tfw_tensor **a = tensor_array(params, &n, &keep);
  if (!a) return NULL;
  double total = 0;
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_clip_grad_norm_(n, a, max_norm, norm_type, err, &total);
  Py_END_ALLOW_THREADS
  PyMem_Free(a);
  Py_DECREF(keep);
  if (st) return tfpy_raise();
  return PyFloat_FromDouble(total);
}

static PyObject *f_clip_grad_value(PyObject *m, PyObject *args) {
  PyObject *params, *keep;
  double v;
  if (!PyArg_ParseTuple(args, "Od", &params, &v)) return NULL;
  int n;
  tfw_tensor **a = tensor_array(params, &n, &keep);
  if (!a) return NULL;
  tfw_status st = tfw_clip_grad_value_(n, a, v);
  PyMem_Free(a);
  Py_DECREF(keep);
  return status_none(st);
}

/* ---- safetensors ------------------------------------------------------------------------------ */

static PyObject *f_st_save(PyObject *m, PyObject *args) {
  const char *path;
  PyObject *names, *tensors, *meta, *keep_t;
  if (!PyArg_ParseTuple(args, "sOOO!", &path, &names, &tensors, &PyDict_Type, &meta)) return NULL;
  int n;
  tfw_tensor **t = tensor_array(tensors, &n, &keep_t);
  if (!t) return NULL;
  Py_ssize_t nm = PyDict_Size(meta);
  const char **nv = PyMem_Calloc((size_t)n + 1, sizeof(char *));
  const char **mk = PyMem_Calloc((size_t)nm + 1, sizeof(char *));
  const char **mv = PyMem_Calloc((size_t)nm + 1, sizeof(char *));
  PyObject *ret = NULL;
  if (!nv || !mk || !mv) {
    PyErr_NoMemory();
    goto done;
  }
  if (PySequence_Size(names) != n) {
    PyErr_SetString(PyExc_ValueError, "names and tensors differ in length");
    goto done;
  }
  for (int i = 0; i < n; i++) {
    PyObject *s = PySequence_GetItem(names, i); /* list items stay alive in the list */
    if (!s) goto done;
    nv[i] = PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    Py_DECREF(s);
    if (!nv[i]) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "tensor names must be str");
      goto done;
    }
  }
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  int j = 0;
  while (PyDict_Next(meta, &pos, &k, &v)) {
    if (!PyUnicode_Check(k) || !PyUnicode_Check(v)) {
      PyErr_SetString(PyExc_TypeError, "metadata keys and values must be str");
      goto done;
    }
    mk[j] = PyUnicode_AsUTF8(k);
    mv[j] = PyUnicode_AsUTF8(v);
    if (!mk[j] || !mv[j]) goto done;
    j++;
  }
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_safetensors_save(path, n, nv, t, j, mk, mv);
  Py_END_ALLOW_THREADS
  ret = status_none(st);
done:
  PyMem_Free(nv);
  PyMem_Free(mk);
  PyMem_Free(mv);
  PyMem_Free(t);
  Py_DECREF(keep_t);
  return ret;
}

/* _st_load(path) -> ([(name, tensor)], {metadata}) in file order */
static PyObject *f_st_load(PyObject *m, PyObject *args) {
  const char *path;
  if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
  tfw_safetensors *st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_safetensors_open(path);
  Py_END_ALLOW_THREADS
  if (!st) return tfpy_raise();
  int n = tfw_safetensors_count(st);
  PyObject *lst = PyList_New(0), *meta = PyDict_New(), *ret = NULL;
  if (!lst || !meta) goto done;
  for (int i = 0; i < n; i++) {
    const char *name = tfw_safetensors_name(st, i);
    PyObject *t = tfpy_wrap(tfw_safetensors_get(st, name));
    if (!t) goto done;
    PyObject *pair = Py_BuildValue("(sN)", name, t);
    if (!pair || PyList_Append(lst, pair) < 0) {
      Py_XDECREF(pair);
      goto done;
    }
    Py_DECREF(pair);
  }
  for (int i = 0; i < tfw_safetensors_metadata_count(st); i++) {
    PyObject *v = PyUnicode_FromString(tfw_safetensors_metadata_value(st, i));
    if (!v || PyDict_SetItemString(meta, tfw_safetensors_metadata_key(st, i), v) < 0) {
      Py_XDECREF(v);
      goto done;
    }
    Py_DECREF(v);
  }
  ret = Py_BuildValue("(OO)", lst, meta);
done:
  Py_XDECREF(lst);
  Py_XDECREF(meta);
  tfw_safetensors_close(st);
  return ret;
}

/* ---- autocast ------------------------------------------------------------------------------------ */

static PyObject *f_autocast_set(PyObject *m, PyObject *args) {
  int enabled;
  PyObject *dto;
  if (!PyArg_ParseTuple(args, "pO", &enabled, &dto)) return NULL;
  tfw_dtype dt;
  if (tfpy_parse_dtype(dto, TFW_DTYPE_BF16, &dt) < 0) return NULL;
  tfw_autocast_state prev;
  if (tfw_autocast_set(enabled, dt, &prev)) return tfpy_raise();
  return Py_BuildValue("(Oi)", prev.enabled ? Py_True : Py_False, (int)prev.dtype);
}

static PyObject *f_autocast_restore(PyObject *m, PyObject *args) {
  int enabled, dt;
  if (!PyArg_ParseTuple(args, "pi", &enabled, &dt)) return NULL;
  tfw_autocast_restore((tfw_autocast_state){enabled, (tfw_dtype)dt});
  Py_RETURN_NONE;
}

static PyObject *f_autocast_get(PyObject *m, PyObject *u) {
  tfw_autocast_state s = tfw_autocast_get();
  PyObject *d = tfpy_dtypes[s.dtype];
  return Py_BuildValue("(OO)", s.enabled ? Py_True : Py_False, d);
}

/* ---- checkpointing (Python callables as tfw_fn) ---------------------------------------------- */

typedef struct {
  PyObject *fn;
} pyfn_ctx;

static void pyfn_free(void *p) {
  pyfn_ctx *c = p;
  if (Py_IsInitialized()) {
    PyGILState_STATE g = PyGILState_Ensure();
    Py_XDECREF(c->fn);
    PyGILState_Release(g);
  }
  free(c);
}

static tfw_status pyfn_call(void *ctx, int n_in, tfw_tensor *const *in, int n_out,
                            tfw_tensor **out) {
  pyfn_ctx *c = ctx;
  PyGILState_STATE g = PyGILState_Ensure();
  tfw_status st = TFW_OK;
  PyObject *args = PyTuple_New(n_in), *r = NULL;
  for (int i = 0; args && i < n_in; i++) {
    PyObject *t = tfpy_wrap(tfw_retain(in[i]));
    if (!t) Py_CLEAR(args);
    else PyTuple_SET_ITEM(args, i, t);
  }
  if (args) r = PyObject_Call(c->fn, args, NULL);
  Py_XDECREF(args);
  if (!r) goto pyerr;
  if (Tfpy_Check(r)) {
    if (n_out != 1) goto count;
    out[0] = tfw_retain(T(r));
  } else if (PyTuple_Check(r)) {
    if (PyTuple_GET_SIZE(r) != n_out) goto count;
    for (int k = 0; k < n_out; k++) {
      PyObject *o = PyTuple_GET_ITEM(r, k);
      if (!Tfpy_Check(o)) goto count;
      out[k] = tfw_retain(T(o));
    }
  } else {
    goto count;
  }
  Py_DECREF(r);
  PyGILState_Release(g);
  return TFW_OK;
count:
  for (int k = 0; k < n_out; k++) {
    tfw_release(out[k]);
    out[k] = NULL;
  }
  Py_XDECREF(r);
  st = tfw__error(TFW_EVALUE, "checkpoint: the function must return %d tensor(s) every time",
                  n_out);
  PyGILState_Release(g);
  return st;
pyerr: {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject *s = value ? PyObject_Str(value) : NULL;
  const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
  st = tfw__error(TFW_EVALUE, "checkpoint: the function raised %s: %s",
                  type ? ((PyTypeObject *)type)->tp_name : "?", msg ? msg : "");
  Py_XDECREF(s);
  PyErr_Clear();
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  PyGILState_Release(g);
  return st;
}
}

/* _checkpoint(fn, n_out, *inputs) -> tuple */
static PyObject *f_checkpoint(PyObject *m, PyObject *args) {
  Py_ssize_t na = PyTuple_GET_SIZE(args);
  if (na < 3) {
    PyErr_SetString(PyExc_TypeError, "_checkpoint(fn, n_out, *inputs)");
    return NULL;
  }
  PyObject *fn = PyTuple_GET_ITEM(args, 0);
  int n_out = (int)PyLong_AsLong(PyTuple_GET_ITEM(args, 1));
  if (n_out == -1 && PyErr_Occurred()) return NULL;
  int n_in = (int)(na - 2);
  if (n_in > TFW__MAX_IN || n_out < 1 || n_out > TFW__MAX_OUT)
    return tfpy_raise_status(TFW_EVALUE, "checkpoint: %d inputs and %d outputs given; 1 to %d "
                             "inputs and 1 to %d outputs are supported", n_in, n_out,
                             TFW__MAX_IN, TFW__MAX_OUT);
  tfw_tensor *in[TFW__MAX_IN], *out[TFW__MAX_OUT] = {0};
  for (int i = 0; i < n_in; i++) {
    PyObject *o = PyTuple_GET_ITEM(args, i + 2);
    if (!Tfpy_Check(o)) {
      PyErr_Format(PyExc_TypeError, "checkpoint: input %d is not a Tensor", i);
      return NULL;
    }
    in[i] = T(o);
  }
  pyfn_ctx *c = malloc(sizeof *c);
  if (!c) return PyErr_NoMemory();
  Py_INCREF(fn);
  c->fn = fn;
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw__checkpoint_ex(pyfn_call, c, pyfn_free, n_in, in, n_out, out);
  Py_END_ALLOW_THREADS
  if (st) return tfpy_raise();
  PyObject *r = PyTuple_New(n_out);
  for (int k = 0; k < n_out; k++) {
    PyObject *t = tfpy_wrap(out[k]);
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

/* ---- forward-mode tangents -------------------------------------------------------------------- */

static PyObject *f_set_tangent(PyObject *m, PyObject *args) {
  PyObject *t, *tan;
  if (!PyArg_ParseTuple(args, "O!O", &TfpyTensor_Type, &t, &tan)) return NULL;
  if (tan != Py_None && !Tfpy_Check(tan)) {
    PyErr_SetString(PyExc_TypeError, "tangent must be a Tensor or None");
    return NULL;
  }
  return status_none(tfw_tensor_set_tangent(T(t), tan == Py_None ? NULL : T(tan)));
}

static PyObject *f_tangent(PyObject *m, PyObject *arg) {
  if (!Tfpy_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "expected a Tensor");
    return NULL;
  }
  tfw_tensor *g = tfw_tensor_tangent(T(arg));
  if (!g) Py_RETURN_NONE;
  return tfpy_wrap(g);
}

/* ---- data: IDX, MNIST, normalisation, a loader over tensors ----------------------------------- */

static PyObject *f_idx_read(PyObject *m, PyObject *args) {
  const char *path;
  if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
  tfw_tensor *t;
  Py_BEGIN_ALLOW_THREADS
  t = tfw_idx_read(path);
  Py_END_ALLOW_THREADS
  return tfpy_wrap(t);
}

static PyObject *f_mnist_load(PyObject *m, PyObject *args) {
  PyObject *dir;
  int train;
  if (!PyArg_ParseTuple(args, "Op", &dir, &train)) return NULL;
  const char *d = dir == Py_None ? NULL : PyUnicode_AsUTF8(dir);
  if (dir != Py_None && !d) return NULL;
  tfw_tensor *img = NULL, *lab = NULL;
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_mnist_load(d, train, &img, &lab);
  Py_END_ALLOW_THREADS
  if (st) return tfpy_raise();
  PyObject *pi = tfpy_wrap(img);
  if (!pi) {
    tfw_release(lab);
    return NULL;
  }
  PyObject *pl = tfpy_wrap(lab);
  if (!pl) {
    Py_DECREF(pi);
    return NULL;
  }
  return Py_BuildValue("(NN)", pi, pl);
}

static PyObject *f_normalize_u8(PyObject *m, PyObject *args) {
  PyObject *x, *mean, *std;
  if (!PyArg_ParseTuple(args, "O!OO", &TfpyTensor_Type, &x, &mean, &std)) return NULL;
  float mv[16], sv[16];
  Py_ssize_t n = PySequence_Size(mean);
  if (n < 1 || n > 16 || PySequence_Size(std) != n) {
    PyErr_SetString(PyExc_ValueError, "mean and std must be sequences of the same length (1-16)");
    return NULL;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *a = PySequence_GetItem(mean, i), *b = PySequence_GetItem(std, i);
    mv[i] = a ? (float)PyFloat_AsDouble(a) : 0;
    sv[i] = b ? (float)PyFloat_AsDouble(b) : 0;
    Py_XDECREF(a);
    Py_XDECREF(b);
    if (PyErr_Occurred()) return NULL;
  }
  tfw_tensor *r;
  tfw_tensor *xt = T(x);
  Py_BEGIN_ALLOW_THREADS
  r = tfw_normalize_u8(xt, (int)n, mv, sv);
  Py_END_ALLOW_THREADS
  return tfpy_wrap(r);
}

typedef struct {
  PyObject_HEAD
  tfw_loader *l;
  int n_fields;
  int started; /* an epoch is being iterated */
} LoaderObject;

static void loader_dealloc(PyObject *self) {
  LoaderObject *o = (LoaderObject *)self;
  if (o->l) {
    tfw_loader *l = o->l;
    Py_BEGIN_ALLOW_THREADS
    tfw_loader_free(l);
    Py_END_ALLOW_THREADS
  }
  Py_TYPE(self)->tp_free(self);
}

/* _TensorLoader(tensors, batch_size, shuffle, seed, drop_last, num_workers) */
static PyObject *loader_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  PyObject *tensors, *keep;
  long long bs;
  int shuffle, drop_last, workers;
  unsigned long long seed;
  if (!PyArg_ParseTuple(args, "OLpKpi", &tensors, &bs, &shuffle, &seed, &drop_last, &workers))
    return NULL;
  int n;
  tfw_tensor **t = tensor_array(tensors, &n, &keep);
  if (!t) return NULL;
  static const char *names[TFW_SAMPLE_MAX_FIELDS] = {"f0", "f1", "f2", "f3",
                                                     "f4", "f5", "f6", "f7"};
  tfw_dataset *ds = n >= 1 && n <= TFW_SAMPLE_MAX_FIELDS ? tfw_dataset_from_tensors(n, names, t)
                                                         : NULL;
  PyMem_Free(t);
  Py_DECREF(keep);
  if (!ds) {
    if (n < 1 || n > TFW_SAMPLE_MAX_FIELDS)
      return tfpy_raise_status(TFW_EVALUE, "TensorLoader: 1 to %d tensors, got %d",
                               TFW_SAMPLE_MAX_FIELDS, n);
    return tfpy_raise();
  }
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = bs;
  o.shuffle = shuffle;
  o.seed = seed;
  o.drop_last = drop_last;
  o.num_workers = workers;
  tfw_loader *l = tfw_loader_new(ds, &o);
  tfw_dataset_release(ds);
  if (!l) return tfpy_raise();
  LoaderObject *self = (LoaderObject *)type->tp_alloc(type, 0);
  if (!self) {
    tfw_loader_free(l);
    return NULL;
  }
  self->l = l;
  self->n_fields = n;
  return (PyObject *)self;
}

static PyObject *loader_iter(PyObject *self) {
  Py_INCREF(self);
  return self;
}

static PyObject *loader_next(PyObject *self) {
  LoaderObject *o = (LoaderObject *)self;
  tfw_sample s;
  tfw_sample_init(&s);
  tfw_status st;
  tfw_loader *l = o->l;
  Py_BEGIN_ALLOW_THREADS
  st = tfw_loader_next(l, &s);
  Py_END_ALLOW_THREADS
  if (st) return tfpy_raise();
  if (s.n == 0) return NULL; /* end of the epoch: StopIteration */
  PyObject *r = PyTuple_New(s.n);
  for (int i = 0; r && i < s.n; i++) {
    PyObject *t = tfpy_wrap(tfw_retain(s.tensors[i]));
    if (!t) Py_CLEAR(r);
    else PyTuple_SET_ITEM(r, i, t);
  }
  tfw_sample_clear(&s);
  return r;
}

static Py_ssize_t loader_len(PyObject *self) {
  return (Py_ssize_t)tfw_loader_len(((LoaderObject *)self)->l);
}

static PyObject *loader_state(PyObject *self, PyObject *u) {
  int64_t e, i;
  tfw_loader_state(((LoaderObject *)self)->l, &e, &i);
  return Py_BuildValue("(LL)", (long long)e, (long long)i);
}

static PyMethodDef loader_methods[] = {
    {"state", loader_state, METH_NOARGS, "(epoch, batch index) of the next batch"},
    {NULL},
};

static PySequenceMethods loader_seq = {.sq_length = loader_len};

static PyTypeObject Loader_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tenflower._C._TensorLoader",
    .tp_basicsize = sizeof(LoaderObject),
    .tp_dealloc = loader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = loader_iter,
    .tp_iternext = loader_next,
    .tp_as_sequence = &loader_seq,
    .tp_methods = loader_methods,
    .tp_new = loader_new,
    .tp_doc = "_TensorLoader(tensors, batch_size, shuffle, seed, drop_last, num_workers): "
              "batches of rows of tensors (the C loader); one pass per iteration",
};

static PyMethodDef train_methods[] = {
    {"_clip_grad_norm", f_clip_grad_norm, METH_VARARGS, NULL},
    {"_clip_grad_value", f_clip_grad_value, METH_VARARGS, NULL},
    {"_st_save", f_st_save, METH_VARARGS, NULL},
    {"_st_load", f_st_load, METH_VARARGS, NULL},
    {"_autocast_set", f_autocast_set, METH_VARARGS, NULL},
    {"_autocast_restore", f_autocast_restore, METH_VARARGS, NULL},
    {"_autocast_get", f_autocast_get, METH_NOARGS, NULL},
    {"_checkpoint", f_checkpoint, METH_VARARGS, NULL},
    {"_set_tangent", f_set_tangent, METH_VARARGS, NULL},
    {"_tangent", f_tangent, METH_O, NULL},
    {"_idx_read", f_idx_read, METH_VARARGS, NULL},
    {"_mnist_load", f_mnist_load, METH_VARARGS, NULL},
    {"_normalize_u8", f_normalize_u8, METH_VARARGS, NULL},
    {NULL},
};

int tfpy_train_init(PyObject *module) {
  if (PyType_Ready(&Opt_Type) < 0 || PyType_Ready(&Sched_Type) < 0 ||
      PyType_Ready(&Loader_Type) < 0)
    return -1;
  Py_INCREF(&Opt_Type);
  if (PyModule_AddObject(module, "_Optimizer", (PyObject *)&Opt_Type) < 0) return -1;
  Py_INCREF(&Sched_Type);
  if (PyModule_AddObject(module, "_LRScheduler", (PyObject *)&Sched_Type) < 0) return -1;
  Py_INCREF(&Loader_Type);
  if (PyModule_AddObject(module, "_TensorLoader", (PyObject *)&Loader_Type) < 0) return -1;
  return PyModule_AddFunctions(module, train_methods);
}
