/* tenflower — image and text transforms, and a seeded transform pipeline for datasets and
 * the loader.
 *
 * Layout rule for images: a u8 tensor of rank 3 is [H, W, C] (as decoded), any other
 * dtype of rank 3 is [C, H, W] (after to-tensor); rank 2 is [H, W] either way. Crops and
 * flips take both; the arithmetic ops (normalize, resize, rotate, blur, colour, noise) take
 * f32 [C, H, W] (or [H, W]) — apply to-tensor first. Semantics follow torchvision's tensor
 * transforms (tested against PyTorch): see docs/transforms.md.
 * Every function returns a new tensor (the caller releases it) or NULL with the error set:
 * TFW_EDTYPE / TFW_ESHAPE for the wrong kind of image, TFW_EVALUE for bad parameters. */
#ifndef TENFLOWER_TRANSFORMS_H
#define TENFLOWER_TRANSFORMS_H

#include <stdbool.h>
#include <stdint.h>
#include "data.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- functional image ops ----------------------------------------------------------------- */
/* u8 [H, W, C] -> f32 [C, H, W] / 255 (torchvision ToTensor). */
TFW_API tfw_tensor *tfw_image_to_tensor(const tfw_tensor *img);
/* Fused ToTensor + Normalize: u8 [H, W, C] -> f32 [C, H, W], ((x / 255) - mean[c]) / std[c],
 * bit-identical to the two steps (AVX-512 / AVX2 kernels chosen at run time, scalar else).
 * mean/std have C entries. */
TFW_API tfw_tensor *tfw_image_to_tensor_normalize(const tfw_tensor *img, const float *mean,
                                                  const float *std);
/* f32 [C, H, W]: (x - mean[c]) / std[c]. */
TFW_API tfw_tensor *tfw_image_normalize(const tfw_tensor *img, const float *mean, const float *std);

typedef enum tfw_resize_mode {
  TFW_RESIZE_BILINEAR = 0, /* F.interpolate(mode="bilinear", align_corners=False, antialias=False) */
  TFW_RESIZE_AREA = 1,     /* F.interpolate(mode="area") (= adaptive average pooling) */
  TFW_RESIZE_NEAREST = 2,  /* F.interpolate(mode="nearest") */
} tfw_resize_mode;
/* f32 [C, H, W] -> [C, h, w]. */
TFW_API tfw_tensor *tfw_image_resize(const tfw_tensor *img, int64_t h, int64_t w,
                                     tfw_resize_mode mode);
/* Rows [top, top + h), columns [left, left + w) of any image (u8 HWC or CHW); parts outside
 * the image read as 0 (so negative top/left pad, as torchvision's crop does). */
TFW_API tfw_tensor *tfw_image_crop(const tfw_tensor *img, int64_t top, int64_t left, int64_t h,
                                   int64_t w);
/* torchvision center_crop: top = round((H - h) / 2) (half to even), left likewise. */
TFW_API tfw_tensor *tfw_image_center_crop(const tfw_tensor *img, int64_t h, int64_t w);
/* Mirror left-right (horizontal) or top-bottom; any image. */
TFW_API tfw_tensor *tfw_image_flip(const tfw_tensor *img, bool horizontal);
/* Rotation by degrees counter-clockwise about the image centre, same size, bilinear,
 * outside -> fill (torchvision.transforms.functional.rotate on tensors: grid_sample with
 * align_corners=False, zeros padding). f32 [C, H, W]. */
TFW_API tfw_tensor *tfw_image_rotate(const tfw_tensor *img, double degrees, float fill);
/* Separable Gaussian blur with a ksize (odd) kernel of std sigma, reflect padding
 * (torchvision gaussian_blur). f32 [C, H, W]. */
TFW_API tfw_tensor *tfw_image_gaussian_blur(const tfw_tensor *img, int ksize, double sigma);
/* torchvision adjust_*: brightness x * f; contrast blend with the mean of the grayscale image;
 * saturation blend with the grayscale image; results clamped to [0, 1]. f32 [3, H, W] (for
 * brightness any C). */
TFW_API tfw_tensor *tfw_image_adjust_brightness(const tfw_tensor *img, double factor);
TFW_API tfw_tensor *tfw_image_adjust_contrast(const tfw_tensor *img, double factor);
TFW_API tfw_tensor *tfw_image_adjust_saturation(const tfw_tensor *img, double factor);
/* Colour conversion, f32 [3, H, W] in [0, 1] (AVX-512 / AVX2 / scalar):
 * gray = 0.2989 R + 0.587 G + 0.114 B (torchvision rgb_to_grayscale) -> [1, H, W];
 * HSV as torchvision's _rgb2hsv / _hsv2rgb (h, s, v in [0, 1]). */
TFW_API tfw_tensor *tfw_image_rgb_to_gray(const tfw_tensor *img);
TFW_API tfw_tensor *tfw_image_rgb_to_hsv(const tfw_tensor *img);
TFW_API tfw_tensor *tfw_image_hsv_to_rgb(const tfw_tensor *img);

/* ---- functional label / text ops ---------------------------------------------------------- */
/* Integer labels (any integer dtype, any shape) -> f32 [..., num_classes] one-hot. Labels
 * outside [0, num_classes) are TFW_EINDEX. */
TFW_API tfw_tensor *tfw_one_hot_f32(const tfw_tensor *labels, int64_t num_classes);
typedef enum tfw_text_mode {
  TFW_TEXT_BYTES = 0, /* id = byte value (0..255) */
  TFW_TEXT_CHARS = 1, /* UTF-8 decoded: id = code point, or its position in vocab */
} tfw_text_mode;
/* u8 [n] UTF-8 text -> i64 [m] ids. CHARS with vocab (a UTF-8 string of distinct characters):
 * id = the character's index in vocab, unk_id for others; without vocab: the code point.
 * Invalid UTF-8 is TFW_EFORMAT (in CHARS mode). max_len > 0 truncates to max_len ids. */
TFW_API tfw_tensor *tfw_text_to_ids(const tfw_tensor *text, tfw_text_mode mode, const char *vocab,
                                    int64_t unk_id, int64_t max_len);

/* ---- the pipeline ------------------------------------------------------------------------------
 * A list of steps, each acting on one named field of a sample. Random steps draw their
 * parameters from a generator seeded by (seed, epoch, sample index) only, so an augmentation
 * is reproducible and independent of the number of loader workers. A pipeline is immutable
 * once used and may be applied from many threads at once. */
typedef struct tfw_transform tfw_transform;
TFW_API tfw_transform *tfw_transform_new(uint64_t seed);
TFW_API void tfw_transform_free(tfw_transform *tr); /* NULL is a no-op */

/* Steps (appended; TFW_EVALUE for bad parameters, checked here): */
TFW_API tfw_status tfw_transform_to_tensor(tfw_transform *tr, const char *field);
TFW_API tfw_status tfw_transform_normalize(tfw_transform *tr, const char *field, int channels,
                                           const float *mean, const float *std);
TFW_API tfw_status tfw_transform_resize(tfw_transform *tr, const char *field, int64_t h,
                                        int64_t w, tfw_resize_mode mode);
TFW_API tfw_status tfw_transform_center_crop(tfw_transform *tr, const char *field, int64_t h,
                                             int64_t w);
/* torchvision RandomCrop: zero padding on every side, then a uniform position. */
TFW_API tfw_status tfw_transform_random_crop(tfw_transform *tr, const char *field, int64_t h,
                                             int64_t w, int64_t padding);
/* Flip left-right with probability p_horizontal, top-bottom with p_vertical. */
TFW_API tfw_status tfw_transform_random_flip(tfw_transform *tr, const char *field,
                                             double p_horizontal, double p_vertical);
/* Rotation by an angle uniform in [min_degrees, max_degrees] (equal: fixed). */
TFW_API tfw_status tfw_transform_rotate(tfw_transform *tr, const char *field, double min_degrees,
                                        double max_degrees, float fill);
/* torchvision ColorJitter without hue: factors uniform in [max(0, 1 - x), 1 + x], applied
 * in the order brightness, contrast, saturation (0 disables one). */
TFW_API tfw_status tfw_transform_color_jitter(tfw_transform *tr, const char *field,
                                              double brightness, double contrast,
                                              double saturation);
/* sigma uniform in [sigma_min, sigma_max]. */
TFW_API tfw_status tfw_transform_gaussian_blur(tfw_transform *tr, const char *field, int ksize,
                                               double sigma_min, double sigma_max);
/* x + N(0, std^2) per element. */
TFW_API tfw_status tfw_transform_gaussian_noise(tfw_transform *tr, const char *field, double std);
TFW_API tfw_status tfw_transform_one_hot(tfw_transform *tr, const char *field,
                                         int64_t num_classes);
/* vocab copied. */
TFW_API tfw_status tfw_transform_text_to_ids(tfw_transform *tr, const char *field,
                                             tfw_text_mode mode, const char *vocab,
                                             int64_t unk_id, int64_t max_len);

/* Runs the steps on sample (fields replaced in place) for (index, epoch). A missing field is
 * TFW_EVALUE naming it; on error the sample keeps the fields done so far. */
TFW_API tfw_status tfw_transform_apply(const tfw_transform *tr, tfw_sample *sample, int64_t index,
                                       int64_t epoch);
/* A tfw_sample_map_fn (ctx = the tfw_transform *) for one sample. Index and epoch come from the
 * loader building the batch (the first index of the batch), else 0: prefer
 * tfw_dataset_transform, which knows each sample's index. */
TFW_API tfw_status tfw_transform_sample_fn(void *tr, tfw_sample *sample);
/* A tfw_sample_map_fn for the loader's batch_map: item k of each field's dim 0 is one sample,
 * transformed with the dataset index the loader took it from (k outside a loader) and the
 * loader's epoch, and the results are stacked again (they must agree in shape). */
TFW_API tfw_status tfw_transform_batch_fn(void *tr, tfw_sample *batch);
/* Map-style dataset whose sample i is tr applied to ds's sample i, with index i and the epoch
 * of the loader that asks (0 outside one). tr must outlive the dataset. */
TFW_API tfw_dataset *tfw_dataset_transform(tfw_dataset *ds, const tfw_transform *tr);

#ifdef __cplusplus
}
#endif
#endif
