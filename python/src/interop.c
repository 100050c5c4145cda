/* Zero-copy interop: the buffer protocol (PEP 3118), numpy (.numpy(), __array__,
 * __array_interface__, from_numpy) and DLPack (__dlpack__, __dlpack_device__, from_dlpack).
 *
 * Lifetimes: every export holds its own reference to the tfw_tensor (not to the Python
 * object), so the memory stays valid however the exporting Tensor object is used afterwards.
 * Every import wraps the foreign memory with tfw_from_buffer; the release callback gives the
 * memory back (PyBuffer_Release under the GIL, or the DLPack deleter) when the last tensor
 * viewing it is gone. DLPack deleters of our exports touch no Python object, so they may run
 * on any thread and after interpreter shutdown. */
#include "tfpy.h"

#include <stdlib.h>

#include "dlpack.h"

#define T(self) (((TensorObject *)(self))->t)

/* ---- buffer protocol ----------------------------------------------------------------------- */

const char *tfpy_buffer_format(tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: return "f";
  case TFW_DTYPE_F64: return "d";
  case TFW_DTYPE_F16: return "e";
  case TFW_DTYPE_I8: return "b";
  case TFW_DTYPE_U8: return "B";
  case TFW_DTYPE_I32: return "i";
  case TFW_DTYPE_I64: return "q";
  case TFW_DTYPE_BOOL: return "?";
  default: return NULL;
  }
}

typedef struct {
  tfw_tensor *t;
  Py_ssize_t shape[TFW_MAX_DIMS];
  Py_ssize_t strides[TFW_MAX_DIMS];
} bufholder;

static int tensor_getbuffer(PyObject *self, Py_buffer *view, int flags) {
  tfw_tensor *t = T(self);
  tfw_dtype dt = tfw_tensor_dtype(t);
  const char *fmt = tfpy_buffer_format(dt);
  if (!fmt) {
    PyErr_SetString(PyExc_BufferError, "bfloat16 has no buffer-protocol format; use DLPack "
                    "(tenflower.from_dlpack / __dlpack__) or convert with .float()");
    view->obj = NULL;
    return -1;
  }
  bool contiguous = tfw_tensor_is_contiguous(t);
  int nd = tfw_tensor_ndim(t);
  if (!contiguous && (flags & PyBUF_STRIDES) != PyBUF_STRIDES) {
    PyErr_SetString(PyExc_BufferError, "tensor is not contiguous: the consumer must accept strides "
                    "(or call .contiguous() first)");
    view->obj = NULL;
    return -1;
  }
  if (!contiguous && (flags & 0xE0)) {
    PyErr_SetString(PyExc_BufferError, "a contiguous buffer was requested but the tensor is not "
                    "contiguous; call .contiguous() first");
    view->obj = NULL;
    return -1;
  }
  if ((flags & 0x40) && !(flags & 0x80) && !(flags & 0x20) && nd > 1 && tfw_tensor_numel(t) > 1) {
    PyErr_SetString(PyExc_BufferError, "tensors are row-major; a Fortran-contiguous buffer was "
                    "requested");
    view->obj = NULL;
    return -1;
  }
  bufholder *h = PyMem_Malloc(sizeof *h);
  if (!h) {
    PyErr_NoMemory();
    view->obj = NULL;
    return -1;
  }
  h->t = tfw_retain(t);
  size_t es = tfw_dtype_size(dt);
  for (int d = 0; d < nd; d++) {
    h->shape[d] = (Py_ssize_t)tfw_tensor_shape(t)[d];
    h->strides[d] = (Py_ssize_t)(tfw_tensor_strides(t)[d] * (int64_t)es);
  }
  view->buf = tfw_tensor_data(t);
  view->obj = Py_NewRef(self);
  view->len = (Py_ssize_t)(tfw_tensor_numel(t) * (int64_t)es);
  view->readonly = 0;
  view->itemsize = (Py_ssize_t)es;
  view->format = (flags & PyBUF_FORMAT) ? (char *)fmt : NULL;
  view->ndim = nd;
  view->shape = (flags & PyBUF_ND) == PyBUF_ND ? h->shape : NULL;
  view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? h->strides : NULL;
  view->suboffsets = NULL;
  view->internal = h;
  return 0;
}

static void tensor_releasebuffer(PyObject *self, Py_buffer *view) {
  bufholder *h = view->internal;
  if (h) {
    tfw_release(h->t);
    PyMem_Free(h);
    view->internal = NULL;
  }
}

PyBufferProcs tfpy_as_buffer = {tensor_getbuffer, tensor_releasebuffer};

/* ---- importing buffers --------------------------------------------------------------------- */

static int format_dtype(const char *f, Py_ssize_t itemsize, tfw_dtype *out) {
  if (!f) f = "B";
  if (*f == '<' || *f == '=' || *f == '@') f++;
  else if (*f == '>' || *f == '!') {
    tfpy_raise_status(TFW_EDTYPE, "from_buffer: big-endian data (format '%s') is not supported; "
                      "convert to native byte order first", f);
    return -1;
  }
  if (f[0] && f[1]) goto bad;
  switch (f[0]) {
  case 'f': if (itemsize == 4) { *out = TFW_DTYPE_F32; return 0; } break;
  case 'd': if (itemsize == 8) { *out = TFW_DTYPE_F64; return 0; } break;
  case 'e': if (itemsize == 2) { *out = TFW_DTYPE_F16; return 0; } break;
  case '?': if (itemsize == 1) { *out = TFW_DTYPE_BOOL; return 0; } break;
  case 'b': case 'h': case 'i': case 'l': case 'q': case 'n':
    if (itemsize == 1) { *out = TFW_DTYPE_I8; return 0; }
    if (itemsize == 4) { *out = TFW_DTYPE_I32; return 0; }
    if (itemsize == 8) { *out = TFW_DTYPE_I64; return 0; }
    break;
  case 'B': case 'c':
    if (itemsize == 1) { *out = TFW_DTYPE_U8; return 0; }
    break;
  default: break;
  }
bad:
  tfpy_raise_status(TFW_EDTYPE, "from_buffer: unsupported element format '%s' (itemsize %zd); "
                    "tenflower has float16/32/64, bfloat16, int8/32/64, uint8 and bool", f, itemsize);
  return -1;
}

static void buffer_release_cb(void *ctx, void *data) {
  Py_buffer *view = ctx;
  if (!Py_IsInitialized()) return; /* interpreter gone: leak rather than crash */
  PyGILState_STATE g = PyGILState_Ensure();
  PyBuffer_Release(view);
  PyMem_RawFree(view);
  PyGILState_Release(g);
}

tfw_tensor *tfpy_from_buffer_obj(PyObject *o, int require_format) {
  Py_buffer *view = PyMem_RawMalloc(sizeof *view);
  if (!view) {
    PyErr_NoMemory();
    return NULL;
  }
  if (PyObject_GetBuffer(o, view, PyBUF_RECORDS) < 0) {
    PyErr_Clear();
    if (PyObject_GetBuffer(o, view, PyBUF_RECORDS_RO) < 0) {
      PyMem_RawFree(view);
      return NULL;
    }
  }
  tfw_dtype dt;
  int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
  if (format_dtype(view->format, view->itemsize, &dt)) goto fail;
  if (view->ndim > TFW_MAX_DIMS) {
    tfpy_raise_status(TFW_EVALUE, "from_buffer: %d dims; at most %d", view->ndim, TFW_MAX_DIMS);
    goto fail;
  }
  if (view->suboffsets) {
    PyErr_SetString(PyExc_BufferError, "from_buffer: indirect (suboffsets) buffers are not supported");
    goto fail;
  }
  for (int d = 0; d < view->ndim; d++) {
    shape[d] = view->shape[d];
    Py_ssize_t s = view->strides ? view->strides[d] : 0;
    if (s < 0) {
      tfpy_raise_status(TFW_EVALUE, "from_buffer: at least one stride is negative (%zd bytes at "
                        "dim %d); tenflower tensors need non-negative strides (copy the array "
                        "first, e.g. numpy.ascontiguousarray)", s, d);
      goto fail;
    }
    if (s % view->itemsize) {
      tfpy_raise_status(TFW_EVALUE, "from_buffer: stride %zd bytes at dim %d is not a multiple of "
                        "the element size %zd", s, d, view->itemsize);
      goto fail;
    }
    strides[d] = s / view->itemsize;
  }
  tfw_tensor *t = tfw_from_buffer(dt, view->ndim, shape, view->strides ? strides : NULL, view->buf,
                                  buffer_release_cb, view);
  if (!t) {
    tfpy_raise();
    goto fail;
  }
  (void)require_format;
  return t;
fail:
  PyBuffer_Release(view);
  PyMem_RawFree(view);
  return NULL;
}

PyObject *tfpy_from_numpy(PyObject *mod, PyObject *arg) {
  if (!PyObject_CheckBuffer(arg)) {
    PyErr_Format(PyExc_TypeError, "from_numpy: expected a numpy.ndarray (or any object with the "
                 "buffer protocol), got %.100s", Py_TYPE(arg)->tp_name);
    return NULL;
  }
  tfw_tensor *t = tfpy_from_buffer_obj(arg, 1);
  if (!t) return NULL;
  return tfpy_wrap(t);
}

/* ---- numpy --------------------------------------------------------------------------------- */

static PyObject *numpy_asarray(PyObject *obj) {
  PyObject *np = PyImport_ImportModule("numpy");
  if (!np) return NULL;
  PyObject *r = PyObject_CallMethod(np, "asarray", "O", obj);
  Py_DECREF(np);
  return r;
}

PyObject *tfpy_numpy(PyObject *self, PyObject *unused) {
  tfw_tensor *t = T(self);
  if (tfw_tensor_requires_grad(t))
    return tfpy_raise_status(TFW_ESTATE, "numpy: can't call numpy() on a Tensor that requires grad; "
                             "use tensor.detach().numpy() instead");
  if (tfw_tensor_dtype(t) == TFW_DTYPE_BF16)
    return tfpy_raise_status(TFW_EDTYPE, "numpy: numpy has no bfloat16; convert with .float() or "
                             "exchange through DLPack");
  PyObject *mv = PyMemoryView_FromObject(self);
  if (!mv) return NULL;
  PyObject *r = numpy_asarray(mv);
  Py_DECREF(mv);
  return r;
}

PyObject *tfpy_array(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"dtype", "copy", NULL};
  PyObject *dtype = Py_None, *copy = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:__array__", kw, &dtype, &copy)) return NULL;
  tfw_tensor *t = T(self);
  PyObject *src;
  if (tfw_tensor_dtype(t) == TFW_DTYPE_BF16) {
    if (copy == Py_False) {
      PyErr_SetString(PyExc_ValueError, "__array__: bfloat16 needs a conversion (a copy) but "
                      "copy=False was passed");
      return NULL;
    }
    tfw_tensor *f = tfw_to_dtype(t, TFW_DTYPE_F32);
    src = tfpy_wrap(f);
  } else {
    src = Py_NewRef(self);
  }
  if (!src) return NULL;
  PyObject *mv = PyMemoryView_FromObject(src);
  Py_DECREF(src);
  if (!mv) return NULL;
  PyObject *a = numpy_asarray(mv);
  Py_DECREF(mv);
  if (!a) return NULL;
  if (dtype != Py_None) {
    PyObject *b = PyObject_CallMethod(a, "astype", "OO", dtype, copy == Py_True ? Py_True : Py_False);
    Py_DECREF(a);
    return b;
  }
  if (copy == Py_True) {
    PyObject *b = PyObject_CallMethod(a, "copy", NULL);
    Py_DECREF(a);
    return b;
  }
  return a;
}

PyObject *tfpy_array_interface(PyObject *self, void *closure) {
  tfw_tensor *t = T(self);
  static const char *typestr[TFW_DTYPE_COUNT] = {
      [TFW_DTYPE_F32] = "<f4", [TFW_DTYPE_F64] = "<f8", [TFW_DTYPE_F16] = "<f2",
      [TFW_DTYPE_I8] = "|i1", [TFW_DTYPE_U8] = "|u1", [TFW_DTYPE_I32] = "<i4",
      [TFW_DTYPE_I64] = "<i8", [TFW_DTYPE_BOOL] = "|b1"};
  tfw_dtype dt = tfw_tensor_dtype(t);
  if (!typestr[dt]) {
    PyErr_SetString(PyExc_AttributeError, "__array_interface__: bfloat16 has no typestr");
    return NULL;
  }
  int nd = tfw_tensor_ndim(t);
  PyObject *shape = PyTuple_New(nd), *strides;
  if (!shape) return NULL;
  for (int d = 0; d < nd; d++) PyTuple_SET_ITEM(shape, d, PyLong_FromLongLong(tfw_tensor_shape(t)[d]));
  if (tfw_tensor_is_contiguous(t)) {
    strides = Py_NewRef(Py_None);
  } else {
    strides = PyTuple_New(nd);
    if (!strides) {
      Py_DECREF(shape);
      return NULL;
    }
    size_t es = tfw_dtype_size(dt);
    for (int d = 0; d < nd; d++)
      PyTuple_SET_ITEM(strides, d, PyLong_FromLongLong(tfw_tensor_strides(t)[d] * (int64_t)es));
  }
  return Py_BuildValue("{sNsss(NO)sNsi}", "shape", shape, "typestr", typestr[dt], "data",
                       PyLong_FromVoidPtr(tfw_tensor_data(t)), Py_False, "strides", strides,
                       "version", 3);
}

/* ---- DLPack export ---------------------------------------------------------------------------- */

typedef struct {
  union {
    DLManagedTensor legacy;
    DLManagedTensorVersioned v;
  } m;
  int64_t shape[TFW_MAX_DIMS];
  int64_t strides[TFW_MAX_DIMS];
  tfw_tensor *t;
} dl_export;

static void export_free(dl_export *e) {
  if (!e) return;
  tfw_release(e->t); /* touches no Python object */
  free(e);
}
static void legacy_deleter(DLManagedTensor *m) { export_free(m ? m->manager_ctx : NULL); }
static void versioned_deleter(DLManagedTensorVersioned *m) {
  export_free(m ? m->manager_ctx : NULL);
}

static DLDataType dl_dtype(tfw_dtype dt) {
  DLDataType r = {0, 0, 1};
  switch (dt) {
  case TFW_DTYPE_F32: r.code = kDLFloat; r.bits = 32; break;
  case TFW_DTYPE_F64: r.code = kDLFloat; r.bits = 64; break;
  case TFW_DTYPE_F16: r.code = kDLFloat; r.bits = 16; break;
  case TFW_DTYPE_BF16: r.code = kDLBfloat; r.bits = 16; break;
  case TFW_DTYPE_I8: r.code = kDLInt; r.bits = 8; break;
  case TFW_DTYPE_U8: r.code = kDLUInt; r.bits = 8; break;
  case TFW_DTYPE_I32: r.code = kDLInt; r.bits = 32; break;
  case TFW_DTYPE_I64: r.code = kDLInt; r.bits = 64; break;
  case TFW_DTYPE_BOOL: r.code = kDLBool; r.bits = 8; break;
  default: break;
  }
  return r;
}

static void dl_capsule_destructor(PyObject *cap) {
  /* Called when the capsule dies. If a consumer took it, the name is "used_dltensor..." and the
   * consumer owns the tensor; otherwise we still own it and call the deleter. */
  if (PyCapsule_IsValid(cap, "dltensor")) {
    DLManagedTensor *m = PyCapsule_GetPointer(cap, "dltensor");
    if (m && m->deleter) m->deleter(m);
  } else if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
    DLManagedTensorVersioned *m = PyCapsule_GetPointer(cap, "dltensor_versioned");
    if (m && m->deleter) m->deleter(m);
  }
}

PyObject *tfpy_dlpack(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"stream", "max_version", "dl_device", "copy", NULL};
  PyObject *stream = Py_None, *max_version = Py_None, *dl_device = Py_None, *copy = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOO:__dlpack__", kw, &stream, &max_version,
                                   &dl_device, &copy))
    return NULL;
  if (stream != Py_None) {
    long long s = PyLong_AsLongLong(stream);
    if (s == -1 && PyErr_Occurred()) return NULL;
    if (s == 0 || s < -1) {
      PyErr_Format(PyExc_ValueError, "__dlpack__: stream must be None, -1 or a positive integer, "
                   "got %lld", s);
      return NULL;
    }
    /* CPU tensors: no stream ordering is needed */
  }
  if (dl_device != Py_None) {
    int dtype_, did;
    if (!PyArg_ParseTuple(dl_device, "ii", &dtype_, &did)) return NULL;
    if (dtype_ != kDLCPU) {
      PyErr_Format(PyExc_BufferError, "__dlpack__: cannot export to device type %d; tenflower "
                   "tensors here are on the CPU (device type 1)", dtype_);
      return NULL;
    }
  }
  int versioned = 0;
  unsigned minor = 0;
  if (max_version != Py_None) {
    unsigned major;
    if (!PyArg_ParseTuple(max_version, "II", &major, &minor)) return NULL;
    versioned = major >= 1;
    if (major > 1) minor = DLPACK_MINOR_VERSION;
    if (minor > DLPACK_MINOR_VERSION) minor = DLPACK_MINOR_VERSION;
  }
  tfw_tensor *t = T(self);
  if (tfw_tensor_requires_grad(t))
    return tfpy_raise_status(TFW_ESTATE, "__dlpack__: can't export a tensor that requires grad; "
                             "use tensor.detach()");
  int copied = 0;
  tfw_tensor *src;
  if (copy == Py_True) {
    src = tfw_clone(t);
    if (!src) return tfpy_raise();
    copied = 1;
  } else {
    src = tfw_retain(t);
  }
  dl_export *e = calloc(1, sizeof *e);
  if (!e) {
    tfw_release(src);
    return PyErr_NoMemory();
  }
  e->t = src;
  int nd = tfw_tensor_ndim(src);
  for (int d = 0; d < nd; d++) {
    e->shape[d] = tfw_tensor_shape(src)[d];
    e->strides[d] = tfw_tensor_strides(src)[d];
  }
  DLTensor dl = {
      .data = tfw_tensor_data(src),
      .device = {kDLCPU, 0},
      .ndim = nd,
      .dtype = dl_dtype(tfw_tensor_dtype(src)),
      .shape = e->shape,
      .strides = e->strides,
      .byte_offset = 0,
  };
  PyObject *cap;
  if (versioned) {
    e->m.v.version.major = DLPACK_MAJOR_VERSION;
    e->m.v.version.minor = minor;
    e->m.v.manager_ctx = e;
    e->m.v.deleter = versioned_deleter;
    e->m.v.flags = copied ? DLPACK_FLAG_BITMASK_IS_COPIED : 0;
    e->m.v.dl_tensor = dl;
    cap = PyCapsule_New(&e->m.v, "dltensor_versioned", dl_capsule_destructor);
  } else {
    e->m.legacy.dl_tensor = dl;
    e->m.legacy.manager_ctx = e;
    e->m.legacy.deleter = legacy_deleter;
    cap = PyCapsule_New(&e->m.legacy, "dltensor", dl_capsule_destructor);
  }
  if (!cap) export_free(e);
  return cap;
}

PyObject *tfpy_dlpack_device(PyObject *self, PyObject *unused) {
  return Py_BuildValue("(ii)", kDLCPU, 0);
}

/* ---- DLPack import ------------------------------------------------------------------------------ */

typedef struct {
  int versioned;
  void *m;
} dl_import;

static void dl_import_release(void *ctx, void *data) {
  dl_import *im = ctx;
  if (im->versioned) {
    DLManagedTensorVersioned *m = im->m;
    if (m->deleter) m->deleter(m);
  } else {
    DLManagedTensor *m = im->m;
    if (m->deleter) m->deleter(m);
  }
  free(im);
}

static int dl_to_dtype(DLDataType d, tfw_dtype *out) {
  if (d.lanes != 1) return -1;
  switch (d.code) {
  case kDLFloat:
    if (d.bits == 32) *out = TFW_DTYPE_F32;
    else if (d.bits == 64) *out = TFW_DTYPE_F64;
    else if (d.bits == 16) *out = TFW_DTYPE_F16;
    else return -1;
    return 0;
  case kDLBfloat:
    if (d.bits != 16) return -1;
    *out = TFW_DTYPE_BF16;
    return 0;
  case kDLInt:
    if (d.bits == 8) *out = TFW_DTYPE_I8;
    else if (d.bits == 32) *out = TFW_DTYPE_I32;
    else if (d.bits == 64) *out = TFW_DTYPE_I64;
    else return -1;
    return 0;
  case kDLUInt:
    if (d.bits != 8) return -1;
    *out = TFW_DTYPE_U8;
    return 0;
  case kDLBool:
    if (d.bits != 8) return -1;
    *out = TFW_DTYPE_BOOL;
    return 0;
  default: return -1;
  }
}

static PyObject *import_capsule(PyObject *cap, PyObject *copy) {
  int versioned;
  DLTensor *dl;
  void *m;
  if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
    versioned = 1;
    DLManagedTensorVersioned *mv = PyCapsule_GetPointer(cap, "dltensor_versioned");
    if (!mv) return NULL;
    if (mv->version.major != DLPACK_MAJOR_VERSION) {
      /* the layout may differ: touch nothing but the deleter */
      unsigned major = mv->version.major;
      PyCapsule_SetName(cap, "used_dltensor_versioned");
      if (mv->deleter) mv->deleter(mv);
      PyErr_Format(PyExc_BufferError, "from_dlpack: DLPack major version %u is not supported "
                   "(tenflower understands %d)", major, DLPACK_MAJOR_VERSION);
      return NULL;
    }
    m = mv;
    dl = &mv->dl_tensor;
  } else if (PyCapsule_IsValid(cap, "dltensor")) {
    versioned = 0;
    DLManagedTensor *ml = PyCapsule_GetPointer(cap, "dltensor");
    if (!ml) return NULL;
    m = ml;
    dl = &ml->dl_tensor;
  } else {
    const char *name = PyCapsule_GetName(cap);
    PyErr_Clear();
    PyErr_Format(PyExc_BufferError, "from_dlpack: the capsule is named %s%s%s; expected "
                 "\"dltensor\" or \"dltensor_versioned\" (a capsule can be consumed only once)",
                 name ? "\"" : "", name ? name : "NULL", name ? "\"" : "");
    return NULL;
  }
  if (dl->device.device_type != kDLCPU && dl->device.device_type != kDLCUDAHost) {
    PyErr_Format(PyExc_BufferError, "from_dlpack: device type %d is not supported (CPU only)",
                 (int)dl->device.device_type);
    return NULL;
  }
  tfw_dtype dt;
  if (dl_to_dtype(dl->dtype, &dt)) {
    PyErr_Format(PyExc_BufferError, "from_dlpack: unsupported DLPack dtype (code %u, bits %u, lanes "
                 "%u)", dl->dtype.code, dl->dtype.bits, dl->dtype.lanes);
    return NULL;
  }
  if (dl->ndim < 0 || dl->ndim > TFW_MAX_DIMS) {
    PyErr_Format(PyExc_BufferError, "from_dlpack: %d dims; tenflower supports 0..%d", dl->ndim,
                 TFW_MAX_DIMS);
    return NULL;
  }
  int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
  for (int d = 0; d < dl->ndim; d++) {
    shape[d] = dl->shape[d];
    if (shape[d] < 0) {
      PyErr_Format(PyExc_BufferError, "from_dlpack: negative size %lld at dim %d",
                   (long long)shape[d], d);
      return NULL;
    }
    if (dl->strides) {
      strides[d] = dl->strides[d];
      if (strides[d] < 0) {
        PyErr_Format(PyExc_BufferError, "from_dlpack: negative stride %lld at dim %d is not "
                     "supported", (long long)strides[d], d);
        return NULL;
      }
    }
  }
  int readonly = versioned && (((DLManagedTensorVersioned *)m)->flags & DLPACK_FLAG_BITMASK_READ_ONLY);
  dl_import *im = malloc(sizeof *im);
  if (!im) return PyErr_NoMemory();
  im->versioned = versioned;
  im->m = m;
  char *data = (char *)dl->data + dl->byte_offset;
  tfw_tensor *t = tfw_from_buffer(dt, dl->ndim, shape, dl->strides ? strides : NULL, data,
                                  dl_import_release, im);
  if (!t) {
    free(im);
    return tfpy_raise(); /* the capsule keeps ownership; its destructor calls the deleter */
  }
  /* we own it now */
  PyCapsule_SetName(cap, versioned ? "used_dltensor_versioned" : "used_dltensor");
  if (readonly || copy == Py_True) {
    if (readonly && copy == Py_False) {
      tfw_release(t);
      PyErr_SetString(PyExc_BufferError, "from_dlpack: the producer's data is read-only and "
                      "copy=False was passed (tenflower tensors are writable)");
      return NULL;
    }
    tfw_tensor *c;
    Py_BEGIN_ALLOW_THREADS
    c = tfw_clone(t);
    Py_END_ALLOW_THREADS
    tfw_release(t);
    return tfpy_wrap(c);
  }
  return tfpy_wrap(t);
}

PyObject *tfpy_from_dlpack(PyObject *mod, PyObject *args, PyObject *kwargs) {
  static char *kw[] = {"x", "device", "copy", NULL};
  PyObject *x, *device = Py_None, *copy = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$OO:from_dlpack", kw, &x, &device, &copy))
    return NULL;
  if (device != Py_None) {
    PyObject *s = PyObject_Str(device);
    if (!s) return NULL;
    int cpu = PyUnicode_CompareWithASCIIString(s, "cpu") == 0;
    Py_DECREF(s);
    if (!cpu) {
      PyErr_Format(PyExc_BufferError, "from_dlpack: device %R is not available (CPU only)", device);
      return NULL;
    }
  }
  if (PyCapsule_CheckExact(x)) return import_capsule(x, copy);
  if (Tfpy_Check(x)) {
    if (copy == Py_True) return tfpy_wrap(tfw_clone(T(x)));
    return Py_NewRef(x);
  }
  PyObject *devfn = PyObject_GetAttrString(x, "__dlpack_device__");
  if (!devfn) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "from_dlpack: %.100s has no __dlpack__/__dlpack_device__ and is "
                 "not a DLPack capsule", Py_TYPE(x)->tp_name);
    return NULL;
  }
  PyObject *dev = PyObject_CallNoArgs(devfn);
  Py_DECREF(devfn);
  if (!dev) return NULL;
  int dtype_ = 0, did = 0;
  if (!PyArg_ParseTuple(dev, "ii", &dtype_, &did)) {
    Py_DECREF(dev);
    return NULL;
  }
  Py_DECREF(dev);
  if (dtype_ != kDLCPU && dtype_ != kDLCUDAHost) {
    PyErr_Format(PyExc_BufferError, "from_dlpack: device type %d is not supported (CPU only)",
                 dtype_);
    return NULL;
  }
  PyObject *fn = PyObject_GetAttrString(x, "__dlpack__");
  if (!fn) return NULL;
  /* Ask for a versioned capsule; producers older than DLPack 1.0 (numpy < 2, torch < 2.3)
   * reject max_version with a TypeError: then ask again the legacy way. */
  PyObject *kwa = Py_BuildValue("{s(ii)}", "max_version", DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION);
  PyObject *empty = PyTuple_New(0);
  PyObject *cap = (kwa && empty) ? PyObject_Call(fn, empty, kwa) : NULL;
  Py_XDECREF(kwa);
  if (!cap && PyErr_ExceptionMatches(PyExc_TypeError)) {
    PyErr_Clear();
    cap = PyObject_Call(fn, empty, NULL);
  }
  Py_XDECREF(empty);
  Py_DECREF(fn);
  if (!cap) return NULL;
  if (!PyCapsule_CheckExact(cap)) {
    Py_DECREF(cap);
    PyErr_SetString(PyExc_TypeError, "from_dlpack: __dlpack__ did not return a capsule");
    return NULL;
  }
  PyObject *r = import_capsule(cap, copy);
  Py_DECREF(cap);
  return r;
}
