/* Replays every fuzz seed and every saved crash input through the fuzz targets' entry
 * points in the normal (and sanitizer) test runs, so fixed bugs stay fixed. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define LLVMFuzzerTestOneInput fuzz_ops_one
#include "../fuzz/fuzz_ops.c"
#undef LLVMFuzzerTestOneInput

static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t)) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    uint8_t buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fn(buf, len);
    n++;
  }
  closedir(d);
  return n;
}

Test(fuzz_replay, ops_corpus) {
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_ops", fuzz_ops_one);
  n += replay_dir(TFW_SOURCE_DIR "/tests/data/bad/ops", fuzz_ops_one);
  cr_assert(n >= 10, "only %d corpus files found", n);
  /* and a deterministic stream of random inputs */
  tfw_memory_stats before, after;
  tfw_memory_stats_get(&before);
  uint64_t st = 99;
  for (int i = 0; i < 3000; i++) {
    uint8_t buf[64];
    for (size_t k = 0; k < sizeof buf; k++) buf[k] = (uint8_t)th_rand_u64(&st);
    fuzz_ops_one(buf, sizeof buf);
  }
  tfw_memory_stats_get(&after);
  /* the inputs really reach the kernels: most calls allocate inputs and outputs */
  cr_assert(after.total_allocations - before.total_allocations > 3000, "only %lld allocations",
            (long long)(after.total_allocations - before.total_allocations));
  th_expect_no_leaks();
}
