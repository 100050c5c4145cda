/* tenflower internal: CRC-32C and TFRecord framing, shared by the TensorBoard event writer
 * (src/train/tfevents.c) and the data pipeline. Internal header — never installed. */
#ifndef TFW_IO_TFRECORD_H
#define TFW_IO_TFRECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"
#include "tenflower/logging.h"

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF) of
 * p[0, n) continuing from crc (0 to start): tfw__crc32c(0, "123456789", 9) == 0xE3069283.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else a table. */
uint32_t tfw__crc32c(uint32_t crc, const void *p, size_t n);
/* The table version only (tests compare both paths). */
uint32_t tfw__crc32c_sw(uint32_t crc, const void *p, size_t n);
/* TensorFlow's masked CRC: rotate right by 15 and add a constant. */
static inline uint32_t tfw__crc32c_mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* Appends one framed record to f. TFW_EIO (with strerror) if a write fails. */
tfw_status tfw__tfrecord_write(FILE *f, const void *data, size_t len);
/* A reader over data[0, len), which the caller keeps alive until close (fuzzing, tests). */
tfw_tfrecord_reader *tfw__tfrecord_reader_memory(const void *data, size_t len);

#endif
