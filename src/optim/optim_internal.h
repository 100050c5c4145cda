/* Internal helpers of src/optim: building and strictly reading named-tensor state dicts. */
#ifndef TFW_OPTIM_INTERNAL_H
#define TFW_OPTIM_INTERNAL_H

#include "core/core.h"
#include "tenflower/optim.h"

/* A growing list of named tensors (a state dict being built). */
typedef struct tfw__sd_builder {
  tfw_named_tensor *v;
  int n, cap;
  tfw_status st; /* first failure; later adds are no-ops */
} tfw__sd_builder;

/* Appends t (the reference is taken over, also on failure) under the formatted name. */
void tfw__sd_add(tfw__sd_builder *b, tfw_tensor *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends a 0-d f64 tensor holding v. */
void tfw__sd_add_scalar(tfw__sd_builder *b, double v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends a contiguous copy of t (detached). */
void tfw__sd_add_copy(tfw__sd_builder *b, const tfw_tensor *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Hands the list to the caller (or frees it and returns the failure). */
tfw_status tfw__sd_finish(tfw__sd_builder *b, tfw_named_tensor **out, int *count);

/* Strict reader: every lookup marks the key used; tfw__sd_check_unused reports the rest. */
typedef struct tfw__sd_reader {
  const char *op;
  int n;
  const tfw_named_tensor *sd;
  bool *used;
} tfw__sd_reader;
tfw_status tfw__sd_reader_init(tfw__sd_reader *r, const char *op, int n,
                               const tfw_named_tensor *sd);
void tfw__sd_reader_free(tfw__sd_reader *r);
/* The tensor under the formatted name (borrowed), or NULL if absent (no error set). */
const tfw_tensor *tfw__sd_find(tfw__sd_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A required one-element value; TFW_EVALUE "missing key" / "not a scalar" / non-finite. */
tfw_status tfw__sd_scalar(tfw__sd_reader *r, double *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fails naming the first key never looked up ("unexpected key"). */
tfw_status tfw__sd_check_unused(tfw__sd_reader *r);
/* Fails unless t has exactly the given shape (message names key and both shapes). */
tfw_status tfw__sd_check_shape(const char *op, const char *key, const tfw_tensor *t, int ndim,
                               const int64_t *shape);

/* The gradient of a parameter (borrowed), NULL if none. */
tfw_tensor *tfw__param_grad(const tfw_tensor *p);
/* Replaces the gradient of p with g (retained; NULL drops it). */
void tfw__param_set_grad(tfw_tensor *p, tfw_tensor *g);

#endif
