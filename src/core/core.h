/* tenflower internal core: tensor and storage layout, errors, allocation, parallel loops,
 * dtype dispatch. Internal header — never installed. */
#ifndef TFW_CORE_H
#define TFW_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tenflower/tenflower.h"

/* ---- multiversioned hot loops ---------------------------------------------------------- */
/* Compiles a function for AVX-512 (x86-64-v4), AVX2 (v3) and baseline x86-64 and picks one
 * at load time, so a baseline build still runs wide vectors. Only on gcc: clang 14 gives
 * static clones in different files colliding resolver symbols, so clang builds (fuzzing,
 * tidy) use the baseline code. Use on static functions. */
#if defined(__GNUC__) && !defined(__clang__)
#define TFW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TFW_CLONES
#endif

/* ---- invariants (on in release builds too: they guard what no input can break) ---- */
void tfw__assert_fail(const char *expr, const char *file, int line);
#define TFW_ASSERT(x) ((x) ? (void)0 : tfw__assert_fail(#x, __FILE__, __LINE__))

/* ---- errors ------------------------------------------------------------------------- */
/* Sets the thread's last error and returns code. The message should name the op. */
tfw_status tfw__error(tfw_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats "[2, 3, 4]" into buf. Returns buf. */
char *tfw__shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);
#define TFW__SHAPE_BUF 160

/* ---- storage and tensor --------------------------------------------------------------- */
typedef struct tfw__storage {
  _Atomic int64_t refcount;
  void *data;
  size_t nbytes;
  tfw_release_fn release; /* non-NULL for borrowed user buffers */
  void *release_ctx;
  bool owned;             /* data came from tfw__storage_alloc */
  _Atomic int64_t version; /* bumped by in-place writes; autograd checks saved tensors */
} tfw__storage;

struct tfw_tensor {
  _Atomic int64_t refcount;
  tfw__storage *storage;
  tfw_dtype dtype;
  int ndim;
  int64_t shape[TFW_MAX_DIMS];
  int64_t strides[TFW_MAX_DIMS]; /* elements */
  int64_t offset;                /* elements */
  bool wrapped_number;           /* created from a C scalar: lowest type-promotion priority */
  void *autograd;                /* reserved for src/autograd */
};

/* Validates a shape: 0 <= ndim <= TFW_MAX_DIMS, every dim >= 0, and numel * elsize fits in
 * int64. On success stores numel (may be NULL). Errors name op. */
tfw_status tfw__check_shape(const char *op, int ndim, const int64_t *shape, size_t elsize,
                            int64_t *numel);
/* New contiguous tensor with uninitialised data (shape is validated). */
tfw_tensor *tfw__tensor_new(const char *op, tfw_dtype dt, int ndim, const int64_t *shape);
/* New tensor sharing base's storage (shape/strides not validated against the storage:
 * callers compute them from base). */
tfw_tensor *tfw__tensor_view(const tfw_tensor *base, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset);
/* Contiguous strides for shape. */
void tfw__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Product of the dims; -1 if it overflows int64 (only possible for unvalidated shapes). */
int64_t tfw__numel(int ndim, const int64_t *shape);
static inline char *tfw__data(const tfw_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)tfw_dtype_size(t->dtype);
}
bool tfw__is_contiguous(const tfw_tensor *t);
/* Wraps a possibly negative dim into [0, ndim); returns -1 and sets TFW_EINDEX if out of
 * range. For ops that insert a dim (unsqueeze, stack) pass ndim + 1. */
int tfw__wrap_dim(const char *op, int dim, int ndim);
/* Checks that t is non-NULL; sets TFW_EVALUE naming op and argument. */
tfw_status tfw__check_tensor(const char *op, const char *arg, const tfw_tensor *t);

/* ---- allocation ------------------------------------------------------------------------- */
/* All allocation goes through these (swappable in tests via tfw_memory_fail_at). Storage
 * buffers are 64-byte aligned and counted in the memory statistics. */
void *tfw__malloc(size_t n);
void *tfw__calloc(size_t n, size_t size);
void *tfw__realloc(void *p, size_t n);
void tfw__free(void *p);
void *tfw__storage_alloc(size_t nbytes); /* NULL (no message set) on failure */
void tfw__storage_free(void *p, size_t nbytes);
void tfw__stats_tensor(int delta);

/* ---- parallel loops ---------------------------------------------------------------------- */
/* Calls fn(begin, end, ctx) over [0, n) in chunks of at least grain. The split is a pure
 * function of n and grain (never of the thread count), so a kernel whose chunk results are
 * combined in chunk order is bit-identical for any number of threads. */
typedef void (*tfw__range_fn)(int64_t begin, int64_t end, void *ctx);
void tfw__parallel_for(int64_t n, int64_t grain, tfw__range_fn fn, void *ctx);
/* The number of chunks tfw__parallel_for uses for (n, grain); chunk i covers
 * [i * n / chunks, (i + 1) * n / chunks). */
int64_t tfw__parallel_chunks(int64_t n, int64_t grain);
int tfw__num_threads(void);
/* True inside a chunk of a parallel loop (or an OpenMP region): nested loops run serially. */
bool tfw__in_parallel(void);

/* ---- dtype dispatch ----------------------------------------------------------------------- */
typedef uint16_t tfw__f16;
typedef uint16_t tfw__bf16;
/* Runs BODY with T typedef'd to the C type of dt, for the "native arithmetic" dtypes
 * (everything but f16/bf16, which kernels compute in f32). DEFAULT runs otherwise. */
#define TFW__DISPATCH_NATIVE(dt, BODY, DEFAULT)               \
  switch (dt) {                                               \
  case TFW_DTYPE_F32: { typedef float T; BODY; } break;       \
  case TFW_DTYPE_F64: { typedef double T; BODY; } break;      \
  case TFW_DTYPE_I8: { typedef int8_t T; BODY; } break;       \
  case TFW_DTYPE_U8: { typedef uint8_t T; BODY; } break;      \
  case TFW_DTYPE_I32: { typedef int32_t T; BODY; } break;     \
  case TFW_DTYPE_I64: { typedef int64_t T; BODY; } break;     \
  case TFW_DTYPE_BOOL: { typedef bool T; BODY; } break;       \
  default: { DEFAULT; } break;                                \
  }

/* Element load/store as double (slow path: printing, item, tests). */
double tfw__load_f64(const void *p, tfw_dtype dt);
void tfw__store_f64(void *p, tfw_dtype dt, double v);
int64_t tfw__load_i64(const void *p, tfw_dtype dt);

/* Casts src (any strides, broadcast to dst's shape) into dst (any strides). */
tfw_status tfw__copy_cast(tfw_tensor *dst, const tfw_tensor *src);
/* Returns t retained if already of dtype dt and contiguous, else a contiguous cast copy. */
tfw_tensor *tfw__as_contiguous(const tfw_tensor *t, tfw_dtype dt);

/* ---- files and text buffers (fileio.c) ----------------------------------------------------- */
/* An atomic, durable file replacement: the bytes go to a unique temporary file beside path
 * (mode 0644); tfw__atomic_end fsyncs it, renames it over path and fsyncs the directory, so
 * a reader sees the old file or the whole new one, also after a crash. Every message starts
 * with op and names the file. */
typedef struct tfw__atomic_file {
  const char *op, *path;
  char *tmp, *dir;
  int fd;
} tfw__atomic_file;
/* Creates the temporary. On failure nothing is left to end (f holds no resources). */
tfw_status tfw__atomic_begin(tfw__atomic_file *f, const char *op, const char *path);
/* Appends n bytes (retrying short writes and EINTR). */
tfw_status tfw__atomic_write(tfw__atomic_file *f, const void *p, size_t n);
/* With s == TFW_OK: fsync, close, rename over path, fsync of the directory; with an error s
 * (or when a step fails): closes and removes the temporary, path untouched. Frees f's
 * resources; returns the first error (s itself when s is one). */
tfw_status tfw__atomic_end(tfw__atomic_file *f, tfw_status s);
/* Writes n bytes to path atomically (begin, write, end). */
tfw_status tfw__write_file_atomic(const char *op, const char *path, const void *buf, size_t n);

/* A growable byte buffer (NUL-terminated after len once anything was put); after an allocation failure it stops
 * growing and sets oom (the caller checks it once at the end). Zero-initialise to start. */
typedef struct tfw__sbuf {
  char *p;
  size_t len, cap;
  int oom;
} tfw__sbuf;
void tfw__sbuf_put(tfw__sbuf *b, const char *s, size_t n);
void tfw__sbuf_puts(tfw__sbuf *b, const char *s);
void tfw__sbuf_printf(tfw__sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tfw__sbuf_free(tfw__sbuf *b);

#endif
