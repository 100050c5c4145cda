/* libFuzzer target: WebDataset shards (tfw_wds_open_memory + tfw_wds_next, libarchive, with
 * the members decoded). Acceptable outcomes: samples, then the end or an error that names the
 * shard; never a crash. Seeds: tests/fuzz/corpus/fuzz_webdataset/; replayed by
 * test_fuzz_replay_io. */
#include <stdint.h>
#include <string.h>

#include "data/data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfw_memory_set_limit((int64_t)256 << 20);
  tfw_wds_options o = tfw_wds_options_default();
  o.max_member_bytes = 1 << 20;
  o.image.max_pixels = 1 << 20;
  tfw_wds_reader *r = tfw_wds_open_memory(data, size, "fuzz.tar", &o);
  if (!r) {
    if (strstr(tfw_last_error(), "fuzz.tar") == NULL) __builtin_trap();
    return 0;
  }
  tfw_sample s = {0};
  for (int k = 0; k < 10000; k++) {
    tfw_status st = tfw_wds_next(r, &s);
    if (st) {
      if (strstr(tfw_last_error(), "fuzz.tar") == NULL) __builtin_trap();
      break;
    }
    if (s.n == 0) break;
    if (!tfw_sample_get(&s, "__key__") || s.n < 2) __builtin_trap();
    tfw_sample_clear(&s);
  }
  tfw_sample_clear(&s);
  tfw_wds_close(r);
  return 0;
}
