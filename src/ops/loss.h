/* Internal interface of the loss ops (loss.c, loss_coeff.c, loss_composite.c) shared with
 * their autograd rules. */
#ifndef TFW_LOSS_H
#define TFW_LOSS_H

#include "ops/registry.h"

enum { TFW__RED_NONE = 0, TFW__RED_MEAN = 1, TFW__RED_SUM = 2, TFW__RED_BATCHMEAN = 3 };

/* Parses "none" | "mean" | "sum" (and "batchmean" when allow_batchmean) into *red; otherwise
 * TFW_EVALUE naming op. */
tfw_status tfw__parse_reduction(const char *op, const char *s, bool allow_batchmean, int *red);
/* Applies a reduction to an elementwise loss (new reference). */
tfw_tensor *tfw__reduce_loss(const tfw_tensor *l, int red);

/* Checks integer class targets: every value is ignore_index or in [0, C). */
tfw_status tfw__check_class_targets(const char *op, const tfw_tensor *target, int64_t C,
                                    int64_t ignore_index);

/* The cross-entropy of input x against its target, written as
 *   loss_r = sum_c a[r, c] * (lse_r - x[r, c])   (per row r = every index but the class dim)
 * a: the coefficients (shape of x, x's dtype): for class indices
 *   valid_r * w_c * ((1 - eps) [c == t_r] + eps / C), for probabilities w_c ((1 - eps) p + eps / C);
 * wb: the weight shaped [1, C, 1...] for broadcasting (NULL = no weight);
 * D: the 'mean' divisor (0-d): sum of the target weights of the valid rows, or the row count
 * for probability targets; cd: the class dim. Built from registered ops (so the tensors are
 * differentiable in the target probabilities). */
typedef struct tfw__ce_parts {
  tfw_tensor *a, *wb, *D;
  int cd;
} tfw__ce_parts;
tfw_status tfw__ce_parts_make(const tfw_tensor *x, const tfw_tensor *target,
                              const tfw_tensor *weight, int64_t ignore_index, double eps,
                              tfw__ce_parts *p);
void tfw__ce_parts_free(tfw__ce_parts *p);

#endif
