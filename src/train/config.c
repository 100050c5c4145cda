/* RUN_DIR/config.txt: the run's configuration as "key = value" lines, read back by the
 * report. Plain text rather than JSON: every value a trainer has is a short string, the
 * file diffs well, and reading it needs no JSON parser. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "train/train_internal.h"

tfw_status tfw_run_config_write(const char *run_dir, int n, const char *const *keys,
                                const char *const *values) {
  if (!run_dir || n < 0 || (n > 0 && (!keys || !values)))
    return tfw__error(TFW_EVALUE, "tfw_run_config_write: NULL or negative argument");
  for (int i = 0; i < n; i++) {
    const char *k = keys[i], *v = values[i];
    if (!k || !v)
      return tfw__error(TFW_EVALUE, "tfw_run_config_write: %s %d is NULL", !k ? "key" : "value", i);
    size_t kl = strlen(k);
    if (!kl || strpbrk(k, "=\n\r") || k[0] == ' ' || k[kl - 1] == ' ' || k[0] == '#')
      return tfw__error(TFW_EVALUE,
                        "tfw_run_config_write: key %d '%.80s' is empty or has '=', a newline, a "
                        "leading '#' or outer spaces", i, k);
    if (strpbrk(v, "\n\r"))
      return tfw__error(TFW_EVALUE, "tfw_run_config_write: value of '%.80s' has a newline", k);
  }
  tfw_status s = tfw__mkdir(run_dir, "tfw_run_config_write");
  if (s) return s;
  size_t cap = strlen(run_dir) + 32;
  char *path = tfw__malloc(cap), *tmp = tfw__malloc(cap);
  if (!path || !tmp) {
    tfw__free(path);
    tfw__free(tmp);
    return tfw__error(TFW_ENOMEM, "tfw_run_config_write: out of memory");
  }
  snprintf(path, cap, "%s/config.txt", run_dir);
  snprintf(tmp, cap, "%s/config.txt.tmp", run_dir);
  FILE *f = fopen(tmp, "wb");
  int ok = f != NULL, err = errno;
  for (int i = 0; i < n && ok; i++) ok = fprintf(f, "%s = %s\n", keys[i], values[i]) > 0;
  if (!ok) err = errno;
  if (f && fclose(f) != 0 && ok) ok = 0, err = errno;
  if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
  if (!ok) {
    if (f) remove(tmp);
    s = tfw__error(TFW_EIO, "tfw_run_config_write: cannot write '%s': %s", path, strerror(err));
  }
  tfw__free(path);
  tfw__free(tmp);
  return s;
}
