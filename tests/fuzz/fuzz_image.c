/* libFuzzer target: PNG and JPEG decoding (tfw_image_decode) on arbitrary bytes, with the
 * channel conversions. Acceptable outcomes: TFW_EFORMAT / TFW_EUNSUPPORTED / TFW_ENOMEM with
 * a message naming the decoder, or an [H, W, C] tensor within the pixel cap whose every byte
 * can be read. Seeds: tests/fuzz/corpus/fuzz_image/ (the shared test images and hostile
 * variants); replayed on every test run by test_fuzz_replay_io. */
#include <stdint.h>
#include <string.h>

#include "data/data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfw_memory_set_limit((int64_t)256 << 20);
  tfw_image_options o = tfw_image_options_default();
  o.max_pixels = (int64_t)1 << 22;
  o.channels = size ? (int[]){0, 1, 3, 4}[data[size - 1] & 3] : 0;
  tfw_tensor *t = tfw_image_decode(data, size, &o);
  if (!t) {
    tfw_status s = tfw_last_status();
    if ((s != TFW_EFORMAT && s != TFW_EUNSUPPORTED && s != TFW_ENOMEM) ||
        strstr(tfw_last_error(), "image_decode") == NULL)
      __builtin_trap();
    return 0;
  }
  const int64_t *sh = tfw_tensor_shape(t);
  if (tfw_tensor_ndim(t) != 3 || sh[0] * sh[1] > o.max_pixels || sh[2] < 1 || sh[2] > 4 ||
      (o.channels && sh[2] != o.channels))
    __builtin_trap();
  const volatile uint8_t *p = tfw_tensor_data(t);
  uint8_t acc = 0;
  int64_t nb = tfw_tensor_numel(t) * (int64_t)tfw_dtype_size(tfw_tensor_dtype(t));
  for (int64_t k = 0; k < nb; k++) acc ^= p[k];
  (void)acc;
  tfw_release(t);
  return 0;
}
