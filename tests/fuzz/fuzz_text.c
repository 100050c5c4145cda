/* libFuzzer target: the unified reader's "text" backend on arbitrary bytes (format forced),
 * walking every record and column; see fuzz_reader_common.h for what counts as a bug.
 * Seeds: tests/fuzz/corpus/fuzz_text/, replayed with mutations by test_fuzz_replay_io. */
#include "fuzz_reader_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_reader(data, size, "text", "fuzz.text", NULL);
}
