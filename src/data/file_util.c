/* Small helpers for the data pipeline: permutations, whole-file reads, the batch context
 * (atomic whole-file writes are tfw__write_file_atomic in core/fileio.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_internal.h"

void tfw__random_permutation(int64_t *perm, int64_t n, uint64_t *s) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    /* unbiased draw in [0, i] (Lemire's multiply-shift with rejection) */
    uint64_t range = (uint64_t)i + 1, x = tfw__splitmix64(s);
    __uint128_t m = (__uint128_t)x * range;
    uint64_t lo = (uint64_t)m;
    if (lo < range) {
      uint64_t thresh = -range % range;
      while (lo < thresh) {
        x = tfw__splitmix64(s);
        m = (__uint128_t)x * range;
        lo = (uint64_t)m;
      }
    }
    int64_t j = (int64_t)(m >> 64), tmp = perm[i];
    perm[i] = perm[j], perm[j] = tmp;
  }
}

tfw_status tfw__data_read_file(const char *op, const char *path, size_t max_bytes, uint8_t **data,
                          size_t *size) {
  *data = NULL, *size = 0;
  if (!path) return tfw__error(TFW_EVALUE, "%s: path is NULL", op);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tfw__error(TFW_EIO, "%s: cannot open '%s': %s", op, path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return tfw__error(TFW_EIO, "%s: '%s' is not a regular file", op, path);
  }
  if ((uint64_t)st.st_size > max_bytes) {
    close(fd);
    return tfw__error(TFW_EFORMAT, "%s: '%s' is %lld bytes, above the cap of %zu", op, path,
                      (long long)st.st_size, max_bytes);
  }
  size_t n = (size_t)st.st_size, got = 0;
  uint8_t *buf = tfw__malloc(n + 1);
  if (!buf) {
    close(fd);
    return tfw__error(TFW_ENOMEM, "%s: out of memory for '%s' (%zu bytes)", op, path, n);
  }
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got > (1u << 30) ? (1u << 30) : n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      tfw_status s = tfw__error(TFW_EIO, "%s: read of '%s' failed: %s", op, path, strerror(errno));
      close(fd);
      tfw__free(buf);
      return s;
    }
    if (r == 0) break; /* shrank while reading: use what is there */
    got += (size_t)r;
  }
  close(fd);
  buf[got] = 0;
  *data = buf, *size = got;
  return TFW_OK;
}

static _Thread_local tfw__batch_ctx tls_batch_ctx;
const tfw__batch_ctx *tfw__batch_ctx_get(void) { return &tls_batch_ctx; }
void tfw__batch_ctx_set(int64_t epoch, const int64_t *indices, int64_t n) {
  tls_batch_ctx.epoch = epoch, tls_batch_ctx.indices = indices, tls_batch_ctx.n = n;
}
