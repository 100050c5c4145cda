/* Training checkpoint files: a safetensors file (written atomically by
 * tfw_safetensors_save) whose metadata carries a format tag and a CRC-32C over every
 * tensor's name, dtype, shape and bytes, so that a truncated or bit-flipped file is
 * TFW_EFORMAT instead of silently wrong weights; plus the lookup of the newest loadable
 * checkpoint in a directory (RELIABILITY.md: lost checkpoints). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "io/tfrecord.h" /* tfw__crc32c */
#include "tenflower/io.h"
#include "tenflower/train.h"
#include "train/train_internal.h"

#define CKPT_FORMAT "tenflower-checkpoint-1"

/* CRC over one tensor's identity and bytes (contiguous copy when needed). */
static tfw_status crc_tensor(const char *name, const tfw_tensor *t, uint32_t *crc) {
  tfw_tensor *c = tfw_contiguous(t);
  if (!c) return tfw_last_status();
  *crc = tfw__crc32c(*crc, name, strlen(name) + 1);
  int32_t head[2] = {(int32_t)tfw_tensor_dtype(c), tfw_tensor_ndim(c)};
  *crc = tfw__crc32c(*crc, head, sizeof head);
  *crc = tfw__crc32c(*crc, tfw_tensor_shape(c), sizeof(int64_t) * (size_t)tfw_tensor_ndim(c));
  size_t bytes = (size_t)tfw_tensor_numel(c) * tfw_dtype_size(tfw_tensor_dtype(c));
  if (bytes) *crc = tfw__crc32c(*crc, tfw_tensor_data(c), bytes);
  tfw_release(c);
  return TFW_OK;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(((const tfw_named_tensor *)a)->name, ((const tfw_named_tensor *)b)->name);
}

typedef struct kv {
  const char *k, *v;
} kv;
static int cmp_kv(const void *a, const void *b) { return strcmp(((const kv *)a)->k, ((const kv *)b)->k); }

/* CRC over metadata pairs in key order, the checksum entry excluded. */
static tfw_status crc_meta(int n, kv *m, uint32_t *crc) {
  qsort(m, (size_t)n, sizeof *m, cmp_kv);
  for (int i = 0; i < n; i++) {
    if (strcmp(m[i].k, "tfw.checksum") == 0) continue;
    *crc = tfw__crc32c(*crc, m[i].k, strlen(m[i].k) + 1);
    *crc = tfw__crc32c(*crc, m[i].v, strlen(m[i].v) + 1);
  }
  return TFW_OK;
}

/* The checksum over tensors in name order (the order does not depend on the caller's),
 * continuing from *out (the metadata's CRC). */
static tfw_status checksum(int n, const tfw_named_tensor *ts, uint32_t *out) {
  tfw_named_tensor *sorted = tfw__malloc(sizeof *sorted * (size_t)(n ? n : 1));
  if (!sorted) return tfw__error(TFW_ENOMEM, "checkpoint: out of memory");
  memcpy(sorted, ts, sizeof *sorted * (size_t)n);
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_names);
  uint32_t crc = *out;
  tfw_status st = TFW_OK;
  for (int i = 0; i < n && !st; i++) st = crc_tensor(sorted[i].name, sorted[i].tensor, &crc);
  tfw__free(sorted);
  *out = crc;
  return st;
}

tfw_status tfw_ckpt_save(const char *path, int n, const tfw_named_tensor *tensors, int n_meta,
                         const char *const *meta_keys, const char *const *meta_values) {
  if (!path || n < 0 || (n > 0 && !tensors) || n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
    return tfw__error(TFW_EVALUE, "ckpt_save: path, tensors and metadata arrays must be given");
  for (int i = 0; i < n_meta; i++)
    if (!meta_keys[i] || strncmp(meta_keys[i], "tfw.", 4) == 0)
      return tfw__error(TFW_EVALUE, "ckpt_save: metadata key %d ('%s') is NULL or uses the "
                        "reserved prefix 'tfw.'", i, meta_keys[i] ? meta_keys[i] : "(null)");
  uint32_t crc = 0;
  kv *m = tfw__malloc(sizeof *m * (size_t)(n_meta + 1));
  if (!m) return tfw__error(TFW_ENOMEM, "ckpt_save: out of memory");
  m[0] = (kv){"tfw.format", CKPT_FORMAT};
  for (int i = 0; i < n_meta; i++) m[i + 1] = (kv){meta_keys[i], meta_values[i] ? meta_values[i] : ""};
  crc_meta(n_meta + 1, m, &crc);
  tfw__free(m);
  tfw_status st = checksum(n, tensors, &crc);
  if (st) return st;
  const char **names = tfw__malloc(sizeof *names * (size_t)(n ? n : 1));
  tfw_tensor **ts = tfw__malloc(sizeof *ts * (size_t)(n ? n : 1));
  const char **keys = tfw__malloc(sizeof *keys * (size_t)(n_meta + 2));
  const char **vals = tfw__malloc(sizeof *vals * (size_t)(n_meta + 2));
  if (!names || !ts || !keys || !vals) {
    st = tfw__error(TFW_ENOMEM, "ckpt_save: out of memory");
    goto out;
  }
  for (int i = 0; i < n; i++) names[i] = tensors[i].name, ts[i] = tensors[i].tensor;
  char crc_s[16];
  snprintf(crc_s, sizeof crc_s, "%08" PRIx32, crc);
  keys[0] = "tfw.format", vals[0] = CKPT_FORMAT;
  keys[1] = "tfw.checksum", vals[1] = crc_s;
  for (int i = 0; i < n_meta; i++) keys[i + 2] = meta_keys[i], vals[i + 2] = meta_values[i];
  st = tfw_safetensors_save(path, n, names, ts, n_meta + 2, keys, vals);
out:
  tfw__free(names), tfw__free(ts), tfw__free(keys), tfw__free(vals);
  return st;
}

tfw_status tfw_ckpt_load(const char *path, tfw_named_tensor **out, int *count) {
  if (!path || !out || !count) return tfw__error(TFW_EVALUE, "ckpt_load: path, out and count must be given");
  *out = NULL, *count = 0;
  tfw_safetensors *st = tfw_safetensors_open(path);
  if (!st) {
    tfw_status e = tfw_last_status(); /* EIO: cannot open/read; anything else is a bad file */
    if (e == TFW_EIO || e == TFW_ENOMEM || e == TFW_EFORMAT) return e;
    return tfw__error(TFW_EFORMAT, "ckpt_load: '%s' is corrupt: %s", path, tfw_last_error());
  }
  tfw_status s = TFW_OK;
  const char *fmt = tfw_safetensors_metadata_get(st, "tfw.format");
  const char *sum = tfw_safetensors_metadata_get(st, "tfw.checksum");
  if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !sum) {
    tfw__error(TFW_EFORMAT, "ckpt_load: '%s' is not a tenflower checkpoint (metadata "
               "tfw.format is %s%s%s)", path, fmt ? "'" : "", fmt ? fmt : "missing",
               fmt ? "'" : "");
    tfw_safetensors_close(st); /* fmt points into it */
    return TFW_EFORMAT;
  }
  int n = tfw_safetensors_count(st);
  tfw_named_tensor *list = tfw__calloc((size_t)(n ? n : 1), sizeof *list);
  if (!list) {
    tfw_safetensors_close(st);
    return tfw__error(TFW_ENOMEM, "ckpt_load: out of memory");
  }
  int k = 0;
  for (; k < n && !s; k++) {
    const char *name = tfw_safetensors_name(st, k);
    tfw_tensor *m = tfw_safetensors_get(st, name);
    tfw_tensor *c = m ? tfw_clone(m) : NULL; /* detach from the mapping */
    tfw_release(m);
    if (!c && tfw_last_status() != TFW_ENOMEM) {
      s = tfw__error(TFW_EFORMAT, "ckpt_load: '%s' is corrupt: tensor '%s': %s", path, name,
                     tfw_last_error());
      break;
    }
    size_t len = strlen(name);
    list[k].name = tfw__malloc(len + 1);
    if (!c || !list[k].name) {
      tfw_release(c);
      s = c ? tfw__error(TFW_ENOMEM, "ckpt_load: out of memory") : tfw_last_status();
      break;
    }
    memcpy(list[k].name, name, len + 1);
    list[k].tensor = c;
  }
  if (!s) {
    uint32_t crc = 0;
    int nm = tfw_safetensors_metadata_count(st);
    kv *m = tfw__malloc(sizeof *m * (size_t)(nm ? nm : 1));
    if (!m) s = tfw__error(TFW_ENOMEM, "ckpt_load: out of memory");
    for (int i = 0; !s && i < nm; i++)
      m[i] = (kv){tfw_safetensors_metadata_key(st, i), tfw_safetensors_metadata_value(st, i)};
    if (!s) crc_meta(nm, m, &crc);
    tfw__free(m);
    if (!s) s = checksum(n, list, &crc);
    char crc_s[16];
    snprintf(crc_s, sizeof crc_s, "%08" PRIx32, crc);
    if (!s && strcmp(crc_s, sum) != 0)
      s = tfw__error(TFW_EFORMAT, "ckpt_load: '%s' is corrupt: checksum %s, expected %s", path,
                     crc_s, sum);
  }
  tfw_safetensors_close(st);
  if (s) {
    tfw_named_tensors_free(list, n);
    return s;
  }
  *out = list, *count = n;
  return TFW_OK;
}

/* Parses "ckpt-<digits>.safetensors"; -1 otherwise. */
static int64_t step_of(const char *name) {
  if (strncmp(name, "ckpt-", 5) != 0) return -1;
  const char *p = name + 5;
  int64_t v = 0;
  int digits = 0;
  while (*p >= '0' && *p <= '9' && digits < 18) v = v * 10 + (*p++ - '0'), digits++;
  return digits && strcmp(p, ".safetensors") == 0 ? v : -1;
}

tfw_status tfw_ckpt_latest(const char *dir, char *buf, size_t cap, int64_t *step) {
  if (!dir || !buf || cap == 0) return tfw__error(TFW_EVALUE, "ckpt_latest: dir and buf must be given");
  int64_t tried = INT64_MAX;
  for (;;) {
    DIR *d = opendir(dir);
    if (!d) return tfw__error(TFW_EIO, "ckpt_latest: no checkpoint directory '%s'", dir);
    int64_t best = -1;
    char best_name[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
      int64_t s = step_of(e->d_name);
      if (s > best && s < tried) best = s, snprintf(best_name, sizeof best_name, "%s", e->d_name);
    }
    closedir(d);
    if (best < 0) return tfw__error(TFW_EIO, "ckpt_latest: no loadable checkpoint in '%s'", dir);
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, best_name) >= cap)
      return tfw__error(TFW_EVALUE, "ckpt_latest: buffer of %zu bytes is too small", cap);
    tfw_named_tensor *list;
    int n;
    if (tfw_ckpt_load(buf, &list, &n) == TFW_OK) {
      tfw_named_tensors_free(list, n);
      if (step) *step = best;
      return TFW_OK;
    }
    fprintf(stderr, "tenflower: skipping checkpoint %s: %s\n", buf, tfw_last_error());
    tried = best;
  }
}

static int cmp_i64_desc(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Single writer per directory: when called (after a complete write), any temporary is an
 * orphan of a killed process. */
void tfw__ckpt_prune(const char *dir, int keep) {
  DIR *d = opendir(dir);
  if (!d) return;
  int64_t *steps = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  char path[4200];
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "ckpt-", 5) == 0 && strstr(e->d_name, ".safetensors.tmp.")) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name); /* orphaned by a killed writer */
      unlink(path);
      continue;
    }
    int64_t s = step_of(e->d_name);
    if (s < 0) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      int64_t *v = tfw__realloc(steps, sizeof *v * cap);
      if (!v) break;
      steps = v;
    }
    steps[n++] = s;
  }
  closedir(d);
  if (steps) qsort(steps, n, sizeof *steps, cmp_i64_desc);
  for (size_t i = keep > 0 ? (size_t)keep : 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/ckpt-%012" PRId64 ".safetensors", dir, steps[i]);
    unlink(path);
  }
  tfw__free(steps);
}
