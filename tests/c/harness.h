/* Shared helpers for the C tests (Criterion). */
#ifndef TFW_TEST_HARNESS_H
#define TFW_TEST_HARNESS_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "tenflower/tenflower.h"

/* Deterministic test RNG (splitmix64), independent of the library's Philox. */
uint64_t th_rand_u64(uint64_t *state);
double th_rand_uniform(uint64_t *state, double lo, double hi);

/* A tensor of dtype dt and shape filled with uniform values in [lo, hi) (integers for
 * integer dtypes, 0/1 for bool) from the test RNG. */
tfw_tensor *th_random(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                      uint64_t seed);
/* A non-contiguous tensor with the same values as a random one: made by transposing a
 * larger buffer and slicing with step 2 on the first dim. */
tfw_tensor *th_random_strided(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                              uint64_t seed);

/* Reads every element of t (any strides) into a new malloc'd double array, row-major. */
double *th_values(const tfw_tensor *t);

/* Asserts t has the given shape and dtype, and that every element is within
 * atol + rtol * |ref| of ref[i] (NaNs must match NaNs). Prints the first mismatches. */
void th_expect_close(const tfw_tensor *t, tfw_dtype dt, int ndim, const int64_t *shape,
                     const double *ref, double rtol, double atol, const char *what);

/* Expects a NULL result / error status with code, and a message containing needle. */
void th_expect_error(tfw_status got, tfw_status code, const char *needle, const char *what);

/* Asserts that no tensors and no storage bytes are alive (call at the end of a test). */
void th_expect_no_leaks(void);

/* Default tolerance for dtype dt (relative eps-scaled). */
double th_eps(tfw_dtype dt);

/* ---- files ----------------------------------------------------------------------------- */
/* Reads the whole file at path into a new malloc'd buffer with a NUL after the last byte
 * (*n = the size in bytes; n may be NULL); fails the test when it cannot. */
uint8_t *th_read_file(const char *path, size_t *n);
/* Writes n bytes to path (created or truncated); fails the test when it cannot. */
void th_write_file(const char *path, const void *p, size_t n);

#endif

/* ---- PyTorch as the reference (Debian's python3-torch, run at test time) -------------------- */
/* True if /usr/bin/python3 can import torch (cached). Tests that need it call
 * th_require_torch(), which skips the test with a message when it is missing. */
bool th_torch_available(void);
void th_require_torch(void);
/* Runs `code` in /usr/bin/python3 with torch: the inputs are visible as the list `x` of torch
 * tensors (float64 for floating inputs, int64 for integer ones, bool for bool), with
 * requires_grad=True on floating inputs; the code must set `out` to a list of n_out tensors
 * (or numbers), which come back as float64 tfw tensors (new references in out[]). The prelude
 * imports torch (as torch) and torch.nn.functional (as F). Fails the test on a Python error,
 * printing the traceback. */
void th_torch_run(const char *code, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out);
