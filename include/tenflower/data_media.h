/* tenflower — media formats: PNG and JPEG images, WAV audio, WebDataset tar shards and
 * image folders (root/<class>/<file>).
 *
 * Every decoder treats its input as hostile: a truncated, corrupt or inconsistent file is
 * TFW_EFORMAT with a message naming the function, the file (or "<memory>") and the problem,
 * never a crash; sizes a file claims are checked against caps (and, where the format allows,
 * against what its bytes can hold) before anything of that size is allocated.
 * Ownership: returned tensors and datasets are new references the caller releases.
 * docs/media.md has examples and the exact semantics. */
#ifndef TENFLOWER_DATA_MEDIA_H
#define TENFLOWER_DATA_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "data.h"
#include "dtype.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- images (PNG via libspng, JPEG via libjpeg-turbo) -------------------------------------
 * Result: a contiguous [H, W, C] tensor (HWC, as the file stores it; tfw_image_hwc_to_chw
 * gives CHW). Channels as stored: gray 1, gray+alpha 2, RGB 3, RGBA 4; a palette PNG gives 3
 * (4 when it has a tRNS chunk); PNGs of 1, 2 or 4 bits per sample are scaled to 8 bits.
 * dtype: u8 for 8-bit samples (and every JPEG). 16-bit PNGs give **int32** with the exact
 * values 0..65535 (tenflower has no uint16; i32 keeps them exact, like the IDX reader's
 * i16 -> i32), or u8 (value >> 8, the top byte, as PIL's "I;16" -> "L") with
 * TFW_IMAGE_FORCE_U8. The format is found from the magic bytes, not the name. */
typedef enum tfw_image_format {
  TFW_IMAGE_FORMAT_UNKNOWN = 0,
  TFW_IMAGE_FORMAT_PNG = 1,
  TFW_IMAGE_FORMAT_JPEG = 2,
} tfw_image_format;

typedef struct tfw_image_options {
  int channels;        /* 0: as stored; 1 (gray), 3 (RGB) or 4 (RGBA): converted. Gray from
                        * colour uses ITU-R 601 luma (L = (19595 R + 38470 G + 7471 B + 32768)
                        * >> 16, PIL's "L"); alpha is dropped or set to the maximum. */
  bool force_u8;       /* 16-bit PNG -> u8 (top byte) instead of i32 */
  int64_t max_pixels;  /* cap on W * H; 0 means 1 << 26 (67 M pixels). Larger: TFW_EFORMAT */
} tfw_image_options;

/* channels 0, force_u8 false, max_pixels 0 (the default cap). */
TFW_API tfw_image_options tfw_image_options_default(void);
/* The format of a buffer from its first bytes (UNKNOWN if neither). */
TFW_API tfw_image_format tfw_image_detect(const void *data, size_t size);
/* Decodes a PNG or JPEG held in memory. opt may be NULL (defaults). Errors: TFW_EFORMAT
 * (not an image, corrupt, truncated — a JPEG with "premature end of data" or any other
 * libjpeg warning included —, CRC mismatch, W*H above the cap, a PNG whose pixels could not
 * fit in its compressed bytes), TFW_EUNSUPPORTED (CMYK JPEG), TFW_EVALUE (bad options),
 * TFW_ENOMEM. */
TFW_API tfw_tensor *tfw_image_decode(const void *data, size_t size, const tfw_image_options *opt);
/* Reads and decodes a file (TFW_EIO if it cannot be read; files above 1 GiB are TFW_EFORMAT). */
TFW_API tfw_tensor *tfw_image_read(const char *path, const tfw_image_options *opt);
/* Reads the header only: width, height, channels as stored (see above), bits per sample (8
 * or 16) and the format. Any output pointer may be NULL. */
TFW_API tfw_status tfw_image_info(const void *data, size_t size, int64_t *width, int64_t *height,
                                  int *channels, int *bit_depth, tfw_image_format *format);
/* [H, W, C] -> [C, H, W] and back (new contiguous tensors, any dtype, rank 3, else
 * TFW_ESHAPE). */
TFW_API tfw_tensor *tfw_image_hwc_to_chw(const tfw_tensor *img);
TFW_API tfw_tensor *tfw_image_chw_to_hwc(const tfw_tensor *img);

/* ---- WAV audio (libsndfile) ----------------------------------------------------------------
 * Decodes to f32 [frames, channels] with libsndfile's normalisation, which is also
 * torchaudio.load's default: 8-bit unsigned (x - 128) / 128, 16-bit x / 32768, 24-bit
 * x / 2^23, 32-bit int x / 2^31, float as stored. *sample_rate (may be NULL) gets the rate
 * in Hz. Any container libsndfile reads is accepted (WAV, and FLAC/OGG where libsndfile has
 * them). max_samples caps frames * channels (0: 1 << 28); channels are capped at 1024.
 * Errors: TFW_EFORMAT (not audio, corrupt, truncated: fewer frames than the header
 * declares, above the caps), TFW_EIO (path), TFW_ENOMEM. */
TFW_API tfw_tensor *tfw_audio_decode(const void *data, size_t size, int64_t max_samples,
                                     int *sample_rate);
TFW_API tfw_tensor *tfw_audio_read(const char *path, int64_t max_samples, int *sample_rate);

/* ---- WebDataset tar shards (libarchive) ------------------------------------------------------
 * A shard is a tar (plain, or gzip/bzip2/xz/zstd compressed) whose files are named
 * <key>.<ext>: consecutive files with the same key form one sample. The key is the path up to
 * the first '.' of the file's base name; the extension (the rest, lower-cased, at most 31
 * bytes) names the field. Fields by extension:
 *   png, jpg, jpeg       decoded image, u8 (16-bit PNG: i32) [H, W, C]
 *   cls, cls2, index,    the decimal integer in the file (whitespace around allowed)
 *   label, id            as an i64 scalar
 *   everything else      the raw bytes as u8 [n] (txt, json, ... : text is its UTF-8 bytes)
 * plus "__key__": the key's bytes as u8 [n]. Directories and other non-regular entries are
 * skipped. Errors (TFW_EFORMAT, naming the shard and the member): a corrupt tar or
 * compressed stream, a member above max_member_bytes, two files of one key with the same
 * extension, more than TFW_SAMPLE_MAX_FIELDS - 1 fields in a sample, a bad .cls, a bad
 * image. A sample whose key repeats non-consecutively is read as a new sample. */
typedef struct tfw_wds_options {
  int64_t max_member_bytes; /* per file; 0 means 256 MiB */
  bool decode_images;       /* default true; false: images stay raw bytes */
  tfw_image_options image;  /* for decoded images */
  bool shuffle_shards;      /* each epoch reads the shards in an order drawn from (seed, epoch) */
  uint64_t seed;
} tfw_wds_options;
TFW_API tfw_wds_options tfw_wds_options_default(void);

typedef struct tfw_wds_reader tfw_wds_reader;
/* Opens one shard for reading (TFW_EIO / TFW_EFORMAT). opt may be NULL. */
TFW_API tfw_wds_reader *tfw_wds_open(const char *path, const tfw_wds_options *opt);
/* Opens a shard held in memory (the buffer must outlive the reader); name is for messages. */
TFW_API tfw_wds_reader *tfw_wds_open_memory(const void *data, size_t size, const char *name,
                                            const tfw_wds_options *opt);
/* The next sample into out (cleared first); out->n == 0 at the end of the shard. After an
 * error the reader can only be closed. */
TFW_API tfw_status tfw_wds_next(tfw_wds_reader *r, tfw_sample *out);
TFW_API void tfw_wds_close(tfw_wds_reader *r); /* NULL is a no-op */
/* An iterable dataset over shards paths[0..n) (copied) read in order (or shuffled per epoch),
 * one sample after another. Combine with the loader's world_size/rank to shard. */
TFW_API tfw_dataset *tfw_wds_dataset_new(int n, const char *const *paths,
                                         const tfw_wds_options *opt);

/* ---- image folders -------------------------------------------------------------------------
 * root/<class>/<file>.{png,jpg,jpeg} (extension case-insensitive; other files and hidden
 * entries ignored; subfolders of a class folder are searched too, like torchvision's
 * ImageFolder): a map-style dataset with samples {"image": [H, W, C] (as tfw_image_read with
 * opt), "label": i64 scalar}. Classes are the sub-directories of root sorted by byte order
 * (Python's sorted()), labels their positions; files are sorted by path within a class.
 * Decoding happens on get (thread-safe). Errors: TFW_EIO (root unreadable), TFW_EVALUE (no
 * class folder or no image found); a corrupt image is TFW_EFORMAT from get. */
TFW_API tfw_dataset *tfw_image_folder_new(const char *root, const tfw_image_options *opt);
/* Number of classes and the name of class i (borrowed, valid while ds lives); NULL/-1 with
 * TFW_EVALUE if ds is not an image folder or i is out of range. */
TFW_API int64_t tfw_image_folder_num_classes(const tfw_dataset *ds);
TFW_API const char *tfw_image_folder_class_name(const tfw_dataset *ds, int64_t i);
/* The file of sample i (borrowed). */
TFW_API const char *tfw_image_folder_path(const tfw_dataset *ds, int64_t i);

#ifdef __cplusplus
}
#endif
#endif
