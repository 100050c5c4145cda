/* Plain text: one record per line (field "line", u8 bytes without the "\n" or "\r\n"), or the
 * whole input as one record (field "text", zero copy) with tfw_reader_options.text_whole.
 * Bytes are passed through as they are (no UTF-8 check: text is bytes here); a final line
 * without a newline is a record, a final newline does not start an empty one. */
#include <string.h>

#include "data/reader_internal.h"

static int text_sniff(const uint8_t *head, size_t n) {
  if (n == 0) return 0;
  return memchr(head, 0, n) ? 0 : 1; /* the weakest guess: anything without NUL bytes */
}

static tfw_status text_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  tfw_field f = {.name = opt->text_whole ? "text" : "line", .dtype = TFW_DTYPE_U8, .ndim = 1,
                 .shape = {-1}, .is_string = true};
  tfw_status s = tfw__reader_set_schema(r, 1, &f);
  if (s) return s;
  tfw_column c = {0};
  int64_t rows;
  if (opt->text_whole) {
    int64_t n = (int64_t)in->size, two = 2;
    rows = 1;
    c.values = tfw__blob_tensor(in->blob, 0, TFW_DTYPE_U8, 1, &n, NULL);
    c.offsets = tfw__tensor_new("text", TFW_DTYPE_I64, 1, &two);
    if (!c.values || !c.offsets) goto nomem;
    int64_t *o = (int64_t *)(void *)tfw__data(c.offsets);
    o[0] = 0, o[1] = n;
    return tfw__reader_set_table(r, rows, &c);
  }
  rows = 0;
  for (size_t i = 0; i < in->size; i++) rows += in->data[i] == '\n';
  if (in->size && in->data[in->size - 1] != '\n') rows++;
  int64_t n1 = rows + 1;
  c.offsets = tfw__tensor_new("text", TFW_DTYPE_I64, 1, &n1);
  uint8_t *buf = tfw__malloc(in->size ? in->size : 1);
  if (!c.offsets || !buf) {
    tfw__free(buf);
    goto nomem;
  }
  int64_t *o = (int64_t *)(void *)tfw__data(c.offsets);
  size_t w = 0, start = 0;
  int64_t k = 0;
  o[0] = 0;
  for (size_t i = 0; i <= in->size; i++) {
    if (i < in->size && in->data[i] != '\n') continue;
    if (i == in->size && start == in->size) break;
    size_t end = i;
    if (end > start && in->data[end - 1] == '\r') end--;
    memcpy(buf + w, in->data + start, end - start);
    w += end - start;
    o[++k] = (int64_t)w;
    start = i + 1;
  }
  int64_t nw = (int64_t)w;
  c.values = tfw__tensor_new("text", TFW_DTYPE_U8, 1, &nw);
  if (!c.values) {
    tfw__free(buf);
    goto nomem;
  }
  if (w) memcpy(tfw__data(c.values), buf, w);
  tfw__free(buf);
  return tfw__reader_set_table(r, rows, &c);
nomem:
  tfw_column_clear(&c);
  return tfw__error(TFW_ENOMEM, "text: '%s': out of memory", in->name);
}

const tfw__reader_backend tfw__backend_text = {"text", ".txt .text .log", text_sniff, text_open};
