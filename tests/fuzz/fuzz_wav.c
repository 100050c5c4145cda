/* libFuzzer target: audio decoding (tfw_audio_decode, libsndfile) on arbitrary bytes.
 * Acceptable outcomes: TFW_EFORMAT / TFW_ENOMEM naming the decoder, or f32 [frames, channels]
 * within the sample cap. Seeds: tests/fuzz/corpus/fuzz_wav/; replayed by test_fuzz_replay_io. */
#include <stdint.h>
#include <string.h>

#include "data/data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfw_memory_set_limit((int64_t)256 << 20);
  int rate = -1;
  tfw_tensor *t = tfw_audio_decode(data, size, (int64_t)1 << 22, &rate);
  if (!t) {
    tfw_status s = tfw_last_status();
    if ((s != TFW_EFORMAT && s != TFW_ENOMEM) || strstr(tfw_last_error(), "audio_decode") == NULL ||
        rate != 0)
      __builtin_trap();
    return 0;
  }
  if (tfw_tensor_ndim(t) != 2 || tfw_tensor_numel(t) > ((int64_t)1 << 22) || rate <= 0 ||
      tfw_tensor_dtype(t) != TFW_DTYPE_F32)
    __builtin_trap();
  const volatile float *p = tfw_tensor_data(t);
  float acc = 0;
  for (int64_t k = 0; k < tfw_tensor_numel(t); k++) acc += p[k];
  (void)acc;
  tfw_release(t);
  return 0;
}
