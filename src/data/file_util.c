/* Small file helpers for the data pipeline: atomic whole-file writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_internal.h"

tfw_status tfw__write_file_atomic(const char *op, const char *path, const void *buf, size_t n) {
  size_t plen = strlen(path);
  char *tmp = tfw__malloc(plen + 16), *dir = tfw__malloc(plen + 2);
  if (!tmp || !dir) {
    tfw__free(tmp), tfw__free(dir);
    return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  }
  snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
  const char *slash = strrchr(path, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == path) strcpy(dir, "/");
  else memcpy(dir, path, (size_t)(slash - path)), dir[slash - path] = '\0';
  tfw_status s = TFW_OK;
  int fd = mkstemp(tmp);
  if (fd < 0) {
    s = tfw__error(TFW_EIO, "%s: cannot create a temporary file beside '%s': %s", op, path,
                   strerror(errno));
    goto out;
  }
  (void)fchmod(fd, 0644); /* mkstemp gives 0600; not fatal if it fails */
  const char *p = buf;
  size_t left = n;
  while (left > 0 && !s) {
    ssize_t w = write(fd, p, left > (1u << 30) ? (1u << 30) : left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) s = tfw__error(TFW_EIO, "%s: write to '%s' failed: %s", op, tmp, strerror(errno));
    else p += w, left -= (size_t)w;
  }
  if (!s && fsync(fd) != 0)
    s = tfw__error(TFW_EIO, "%s: fsync of '%s' failed: %s", op, tmp, strerror(errno));
  if (close(fd) != 0 && !s)
    s = tfw__error(TFW_EIO, "%s: close of '%s' failed: %s", op, tmp, strerror(errno));
  if (!s && rename(tmp, path) != 0)
    s = tfw__error(TFW_EIO, "%s: cannot rename '%s' to '%s': %s", op, tmp, path, strerror(errno));
  if (s) {
    unlink(tmp);
    goto out;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) != 0)
    s = tfw__error(TFW_EIO, "%s: fsync of directory '%s' failed: %s", op, dir, strerror(errno));
  if (dfd >= 0) close(dfd);
out:
  tfw__free(tmp);
  tfw__free(dir);
  return s;
}

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
