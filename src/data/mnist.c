/* MNIST loading (four IDX files) and the u8 -> f32 normalisation kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data_internal.h"

#define OP "mnist_load"

/* dir/base, or dir/base.gz when only that exists. */
static tfw_tensor *read_one(const char *dir, const char *base) {
  size_t n = strlen(dir) + strlen(base) + 8;
  char *path = tfw__malloc(n);
  if (!path) {
    tfw__error(TFW_ENOMEM, OP ": out of memory");
    return NULL;
  }
  snprintf(path, n, "%s/%s", dir, base);
  if (access(path, F_OK) != 0) {
    snprintf(path, n, "%s/%s.gz", dir, base);
    if (access(path, F_OK) != 0) {
      tfw__error(TFW_EIO, OP ": neither '%s/%s' nor its .gz is there (run "
                 "scripts/fetch_mnist.sh, or set TFW_MNIST_DIR to a directory with the four "
                 "MNIST files)", dir, base);
      tfw__free(path);
      return NULL;
    }
  }
  tfw_tensor *t = tfw_idx_read(path);
  tfw__free(path);
  return t;
}

tfw_status tfw_mnist_load(const char *dir, bool train, tfw_tensor **images, tfw_tensor **labels) {
  if (!images || !labels) return tfw__error(TFW_EVALUE, OP ": images or labels is NULL");
  *images = *labels = NULL;
  if (!dir) dir = getenv("TFW_MNIST_DIR");
  if (!dir || !*dir)
    return tfw__error(TFW_EVALUE, OP ": dir is NULL and TFW_MNIST_DIR is not set");
  const char *split = train ? "train" : "t10k";
  char ib[64], lb[64];
  snprintf(ib, sizeof ib, "%s-images-idx3-ubyte", split);
  snprintf(lb, sizeof lb, "%s-labels-idx1-ubyte", split);
  tfw_tensor *im = read_one(dir, ib);
  if (!im) return tfw_last_status();
  tfw_tensor *lab = read_one(dir, lb);
  if (!lab) {
    tfw_release(im);
    return tfw_last_status();
  }
  tfw_status s = TFW_OK;
  char a[TFW__SHAPE_BUF], b[TFW__SHAPE_BUF];
  tfw__shape_str(a, sizeof a, im->ndim, im->shape);
  tfw__shape_str(b, sizeof b, lab->ndim, lab->shape);
  if (im->dtype != TFW_DTYPE_U8 || lab->dtype != TFW_DTYPE_U8 || im->ndim != 3 ||
      im->shape[1] != 28 || im->shape[2] != 28 || lab->ndim != 1 ||
      lab->shape[0] != im->shape[0]) {
    s = tfw__error(TFW_EFORMAT, OP ": '%s': %s images %s %s and labels %s %s do not form MNIST "
                   "(u8 [N, 28, 28] and u8 [N])", dir, split, tfw_dtype_name(im->dtype), a,
                   tfw_dtype_name(lab->dtype), b);
  } else {
    const uint8_t *l = (const uint8_t *)tfw__data(lab);
    for (int64_t i = 0; i < lab->shape[0]; i++)
      if (l[i] > 9) {
        s = tfw__error(TFW_EFORMAT, OP ": '%s': %s label %lld is %d, not a digit", dir, split,
                       (long long)i, l[i]);
        break;
      }
  }
  if (s) {
    tfw_release(im);
    tfw_release(lab);
    return s;
  }
  *images = im;
  *labels = lab;
  return TFW_OK;
}

/* ---- normalisation ---------------------------------------------------------------------
 * Reference: out = ((float)x / 255.0f - mean) / std, in f32 with IEEE division — what
 * torchvision's ToTensor (x.float().div(255)) then Normalize ((x - mean) / std) compute, so
 * the result is bit-identical to PyTorch's. Written as a plain loop that gcc vectorises
 * (no -ffast-math: the divisions stay exact) and compiled for AVX-512 / AVX2 / baseline.
 * Measured on the 2-core Zen 4: 47 M pixels (MNIST train) in about 25 ms. */
TFW_CLONES static void normalize_row(const uint8_t *restrict x, float *restrict out, int64_t n,
                                     float mean, float std) {
  for (int64_t i = 0; i < n; i++) out[i] = ((float)x[i] / 255.0f - mean) / std;
}

typedef struct norm_ctx {
  const uint8_t *x;
  float *out;
  int64_t inner; /* elements per channel block */
  int n_ch;
  const float *mean, *std;
} norm_ctx;

static void norm_range(int64_t begin, int64_t end, void *vctx) {
  const norm_ctx *c = vctx;
  /* blocks of `inner` elements; block k has channel k % n_ch */
  for (int64_t k = begin; k < end; k++) {
    int ch = (int)(k % c->n_ch);
    normalize_row(c->x + k * c->inner, c->out + k * c->inner, c->inner, c->mean[ch], c->std[ch]);
  }
}

tfw_tensor *tfw_normalize_u8(const tfw_tensor *x, int n_channels, const float *mean,
                             const float *std) {
  if (tfw__check_tensor("normalize_u8", "x", x)) return NULL;
  if (!mean || !std || n_channels < 1) {
    tfw__error(TFW_EVALUE, "normalize_u8: mean/std NULL or n_channels %d < 1", n_channels);
    return NULL;
  }
  if (x->dtype != TFW_DTYPE_U8) {
    tfw__error(TFW_EDTYPE, "normalize_u8: x is %s, expected uint8", tfw_dtype_name(x->dtype));
    return NULL;
  }
  int64_t numel = tfw_tensor_numel(x), inner = numel;
  if (n_channels > 1) {
    char sh[TFW__SHAPE_BUF];
    if (x->ndim < 3 || x->shape[x->ndim - 3] != n_channels) {
      tfw__shape_str(sh, sizeof sh, x->ndim, x->shape);
      tfw__error(TFW_ESHAPE, "normalize_u8: x is %s; %d channels need dim -3 of size %d", sh,
                 n_channels, n_channels);
      return NULL;
    }
    inner = x->shape[x->ndim - 1] * x->shape[x->ndim - 2];
  }
  for (int c = 0; c < n_channels; c++)
    if (std[c] == 0.0f || std[c] != std[c]) {
      tfw__error(TFW_EVALUE, "normalize_u8: std[%d] is %g", c, (double)std[c]);
      return NULL;
    }
  tfw_tensor *xc = tfw__as_contiguous(x, TFW_DTYPE_U8);
  if (!xc) return NULL;
  tfw_tensor *out = tfw__tensor_new("normalize_u8", TFW_DTYPE_F32, x->ndim, x->shape);
  if (!out) {
    tfw_release(xc);
    return NULL;
  }
  if (numel > 0) {
    norm_ctx c = {(const uint8_t *)tfw__data(xc), (float *)tfw__data(out), inner, n_channels,
                  mean, std};
    int64_t blocks = numel / inner;
    if (n_channels == 1) { /* one block: split it into rows of 64 Ki for the thread pool */
      c.inner = 65536;
      blocks = numel / c.inner;
      tfw__parallel_for(blocks, 4, norm_range, &c);
      int64_t done = blocks * c.inner;
      normalize_row(c.x + done, c.out + done, numel - done, mean[0], std[0]);
    } else {
      tfw__parallel_for(blocks, (65536 + inner - 1) / inner, norm_range, &c);
    }
  }
  tfw_release(xc);
  return out;
}
