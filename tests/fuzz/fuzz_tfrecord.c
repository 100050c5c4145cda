/* libFuzzer target: the TFRecord framing reader on arbitrary bytes, through the in-memory
 * entry point. Acceptable outcomes: records whose lengths and CRCs hold, ending in a clean
 * end of input or a TFW_EFORMAT (or ENOMEM) with a message that repeats on the next call.
 * Every record returned must lie inside the input and carry a correct CRC (checked again
 * here with the table implementation). Seeds: tests/fuzz/corpus/fuzz_tfrecord/ (PyTorch's
 * event file, a TFRecord of tf.train.Examples, empty and zero-length records, bad CRCs,
 * truncations, lying lengths), made by a Python script independent of the reader. */
#include <stdint.h>
#include <string.h>

#include "io/tfrecord.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfw_tfrecord_reader *r = tfw__tfrecord_reader_memory(data, size);
  if (!r) return 0;
  size_t consumed = 0;
  for (;;) {
    const uint8_t *rec;
    size_t len;
    tfw_status s = tfw_tfrecord_reader_next(r, &rec, &len);
    if (s != TFW_OK) {
      if ((s != TFW_EFORMAT && s != TFW_ENOMEM) || tfw_last_error()[0] == '\0')
        __builtin_trap(); /* a silent or miscategorised failure is a bug */
      if (tfw_tfrecord_reader_next(r, &rec, &len) != s) __builtin_trap(); /* sticky */
      break;
    }
    if (!rec) {
      if (consumed != size) __builtin_trap(); /* a clean end means every byte was used */
      break;
    }
    consumed += 16 + len;
    if (consumed > size) __builtin_trap();
    /* the record is the input's bytes at its place, and its CRC holds */
    if (len && memcmp(rec, data + consumed - 4 - len, len) != 0) __builtin_trap();
    uint32_t c = tfw__crc32c_mask(tfw__crc32c_sw(0, rec, len));
    const uint8_t *t = data + consumed - 4;
    if (c != ((uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24))
      __builtin_trap();
  }
  tfw_tfrecord_reader_close(r);
  return 0;
}
