/* libFuzzer target: the safetensors reader on arbitrary bytes, through the in-memory entry
 * point (no filesystem). The only acceptable outcomes are a clean TFW_EFORMAT (or ENOMEM)
 * with a message, or a handle whose every promise holds: each tensor's byte count equals
 * shape x dtype, lies inside the input, and reading every element (zero-copy or copied,
 * aligned or not) stays in bounds. Seeds: tests/fuzz/corpus/fuzz_safetensors/ (files from
 * ../shared/testdata and handcrafted bad files); crashes become tests/data/bad/safetensors/. */
#include <stdint.h>
#include <string.h>

#include "io/safetensors_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfw_memory_set_limit((int64_t)256 << 20);
  tfw_safetensors *st = tfw__safetensors_parse_buffer(data, size);
  if (!st) {
    tfw_status s = tfw_last_status();
    if ((s != TFW_EFORMAT && s != TFW_ENOMEM) || tfw_last_error()[0] == '\0')
      __builtin_trap(); /* a silent or miscategorised failure is a bug */
    return 0;
  }
  int64_t total = 0;
  for (int i = 0; i < tfw_safetensors_count(st); i++) {
    tfw_safetensors_info info;
    if (tfw_safetensors_tensor_info(st, i, &info) != TFW_OK) __builtin_trap();
    if (info.nbytes < 0 || info.file_offset < 8 || (uint64_t)info.file_offset > size ||
        (uint64_t)info.nbytes > size - (uint64_t)info.file_offset)
      __builtin_trap(); /* every tensor lies inside the input */
    total += info.nbytes;
    if (tfw_safetensors_find(st, info.name) != i) __builtin_trap();
    tfw_tensor *t = tfw_safetensors_get(st, info.name);
    if (!t) {
      if (tfw_last_status() != TFW_EUNSUPPORTED && tfw_last_status() != TFW_ENOMEM)
        __builtin_trap();
      continue;
    }
    int64_t want = tfw_tensor_numel(t) * (int64_t)tfw_dtype_size(tfw_tensor_dtype(t));
    if (want != info.nbytes) __builtin_trap();
    const volatile uint8_t *p = tfw_tensor_data(t);
    uint8_t acc = 0;
    for (int64_t k = 0; k < want; k++) acc ^= p[k]; /* read every byte */
    double v;
    if (tfw_tensor_numel(t) == 1) (void)tfw_item(t, &v); /* typed load (bool, f16, ...) */
    (void)acc;
    tfw_release(t);
  }
  for (int i = 0; i < tfw_safetensors_metadata_count(st); i++) {
    const char *k = tfw_safetensors_metadata_key(st, i), *v = tfw_safetensors_metadata_value(st, i);
    if (!k || !v || !tfw_safetensors_metadata_get(st, k)) __builtin_trap();
  }
  /* the tensors tile the data section exactly */
  if (tfw_safetensors_count(st) > 0) {
    tfw_safetensors_info last;
    tfw_safetensors_tensor_info(st, tfw_safetensors_count(st) - 1, &last);
    if ((uint64_t)(last.file_offset + last.nbytes) != size) __builtin_trap();
  }
  (void)total;
  tfw_safetensors_close(st);
  return 0;
}
