/* tenflower._C — the CPython extension module (CPython C API only).
 *
 * Shared declarations of the extension's files:
 *   module.c   module init, dtypes, exceptions, creation functions, grad mode, autograd.grad
 *   tensor.c   the Tensor type: properties, operators, indexing, printing, autograd methods
 *   interop.c  buffer protocol, numpy, DLPack (export and import)
 *   ops.c      the op bindings: a table of PyTorch-style signatures over the op registry
 *
 * The extension links the static library and includes its internal headers (src/), so that
 * the bindings can call the registry (tfw__op_run_multi) directly and create "wrapped
 * numbers" (Python scalars) with PyTorch's promotion priority. */
#ifndef TFPY_H
#define TFPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "core/core.h"
#include "ops/registry.h"
#include "tenflower/tenflower.h"

typedef struct {
  PyObject_HEAD
  tfw_tensor *t;       /* owned reference; never NULL once constructed */
  PyObject *weakrefs;
  PyObject *pyhooks;   /* reserved */
} TensorObject;

typedef struct {
  PyObject_HEAD
  tfw_dtype dt;
  PyObject *name; /* "float32" */
} DTypeObject;

extern PyTypeObject TfpyTensor_Type;
extern PyTypeObject TfpyDType_Type;
extern PyTypeObject TfpyOpFunc_Type;

#define Tfpy_Check(o) PyObject_TypeCheck((o), &TfpyTensor_Type)

/* module.c */
extern PyObject *tfpy_dtypes[TFW_DTYPE_COUNT]; /* DTypeObject singletons */
extern PyObject *tfpy_device_cpu;             /* tenflower.device("cpu"), set by __init__.py */
/* Raises the Python exception for the library's last error (message from tfw_last_error)
 * and returns NULL. */
PyObject *tfpy_raise(void);
/* Raises the exception class of status s with a formatted message; returns NULL. */
PyObject *tfpy_raise_status(tfw_status s, const char *fmt, ...);
/* Parses a dtype argument (DTypeObject, None -> dflt, or a name string). Returns 0 on
 * success, -1 with an exception set. */
int tfpy_parse_dtype(PyObject *o, tfw_dtype dflt, tfw_dtype *out);
/* Parses a shape given as varargs (2, 3) or one sequence ((2, 3)); -1 on error. */
int tfpy_parse_shape(PyObject *args, Py_ssize_t start, int64_t *shape, int *ndim);
int tfpy_parse_int_list(PyObject *o, const char *what, int64_t *out, int *n, int max);

/* tensor.c */
/* Wraps t (steals the reference). t NULL -> raises from the last error. */
PyObject *tfpy_wrap(tfw_tensor *t);
/* Converts o to a tensor: a Tensor (new reference to the same tfw_tensor), a Python scalar
 * (a 0-d "wrapped number", so that promotion follows PyTorch), or nested sequences / objects
 * with the buffer protocol (a copy). NULL with an exception on failure. */
tfw_tensor *tfpy_to_tensor(PyObject *o);
/* tenflower.tensor(data, dtype=None, requires_grad=False) */
PyObject *tfpy_tensor_new(PyObject *self, PyObject *args, PyObject *kwargs);
tfw_tensor *tfpy_from_sequence(PyObject *data, int has_dtype, tfw_dtype dt);

/* interop.c */
extern PyBufferProcs tfpy_as_buffer;
PyObject *tfpy_numpy(PyObject *self, PyObject *unused);
PyObject *tfpy_array(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *tfpy_array_interface(PyObject *self, void *closure);
PyObject *tfpy_dlpack(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *tfpy_dlpack_device(PyObject *self, PyObject *unused);
PyObject *tfpy_from_dlpack(PyObject *mod, PyObject *args, PyObject *kwargs);
PyObject *tfpy_from_numpy(PyObject *mod, PyObject *arg);
/* Imports any object with the buffer protocol zero-copy (NULL + exception on failure). */
tfw_tensor *tfpy_from_buffer_obj(PyObject *o, int require_format);
const char *tfpy_buffer_format(tfw_dtype dt); /* NULL for bfloat16 */

/* ops.c */
int tfpy_ops_init(PyObject *module);

/* nn.c: functionals, initialisers, C-backed modules; train.c: optimizers, schedulers,
 * clipping, safetensors, autocast, checkpointing, tangents, data */
int tfpy_nn_init(PyObject *module);
int tfpy_train_init(PyObject *module);
PyObject *tfpy_raw_op(PyObject *mod, PyObject *args, PyObject *kwargs);

/* Runs a registry call with the GIL released; out[] receives n_out references. */
static inline tfw_status tfpy_run(const tfw__call *c, tfw_tensor **out) {
  tfw_status st;
  Py_BEGIN_ALLOW_THREADS
  st = tfw__op_run_multi(c, out);
  Py_END_ALLOW_THREADS
  return st;
}

#endif
