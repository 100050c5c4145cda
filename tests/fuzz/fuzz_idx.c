/* libFuzzer target: the IDX reader (plain and gzip) on arbitrary bytes, through the
 * in-memory entry point. Acceptable outcomes: a clean TFW_EFORMAT / TFW_EUNSUPPORTED /
 * TFW_ENOMEM with a message, or a tensor whose byte count is exactly what its header
 * promised and whose every byte can be read. Seeds: tests/fuzz/corpus/fuzz_idx/ (small
 * valid files of each type code, plain and gzip, and the hostile files of
 * tests/c/test_data_idx.c); they are replayed on every test run by test_fuzz_replay_io. */
#include <stdint.h>
#include <string.h>

#include "data/data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfw_memory_set_limit((int64_t)256 << 20);
  tfw_tensor *t = tfw__idx_parse_buffer(data, size, "fuzz.idx");
  if (!t) {
    tfw_status s = tfw_last_status();
    if ((s != TFW_EFORMAT && s != TFW_EUNSUPPORTED && s != TFW_ENOMEM) ||
        strstr(tfw_last_error(), "fuzz.idx") == NULL)
      __builtin_trap(); /* a silent, unnamed or miscategorised failure is a bug */
    return 0;
  }
  int64_t n = tfw_tensor_numel(t);
  size_t es = tfw_dtype_size(tfw_tensor_dtype(t));
  bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  if (!gz) { /* a plain file holds exactly header + data */
    size_t file_es = data[2] == 0x0B ? 2 : es;
    if (size != 4 + 4 * (size_t)data[3] + (size_t)n * file_es) __builtin_trap();
  }
  const volatile uint8_t *p = tfw_tensor_data(t);
  uint8_t acc = 0;
  for (int64_t k = 0; k < n * (int64_t)es; k++) acc ^= p[k];
  (void)acc;
  tfw_release(t);
  return 0;
}
