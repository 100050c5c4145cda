/* Bulk conversions between f32 and the 16-bit float formats (contiguous arrays). */
#ifndef TFW_CONVERT_H
#define TFW_CONVERT_H

#include <stdint.h>

void tfw__f32_to_f16_n(const float *src, uint16_t *dst, int64_t n);
void tfw__f16_to_f32_n(const uint16_t *src, float *dst, int64_t n);
void tfw__f32_to_bf16_n(const float *src, uint16_t *dst, int64_t n);
void tfw__bf16_to_f32_n(const uint16_t *src, float *dst, int64_t n);

#endif
