/* Internal layout of tfw_optimizer, shared by optimizer.c (groups, state dict), update.c (the
 * fused update) and the loss scaler. */
#ifndef TFW_OPTIMIZER_INTERNAL_H
#define TFW_OPTIMIZER_INTERNAL_H

#include "optim/optim_internal.h"

#define TFW__OPT_SLOTS 3

typedef struct tfw__opt_param {
  tfw_tensor *p;                      /* retained */
  int group;
  int64_t step;                       /* updates applied; 0 = no state yet */
  tfw_tensor *slot[TFW__OPT_SLOTS];   /* state buffers (contiguous, param dtype), NULL = absent */
} tfw__opt_param;

typedef struct tfw__opt_group {
  tfw_optim_options o;
  int first, n; /* params[first .. first + n) */
} tfw__opt_group;

struct tfw_optimizer {
  tfw_optim_kind kind;
  tfw_optim_options defaults;
  tfw__opt_param *params;
  tfw_tensor **ptrs; /* params[i].p, for tfw_optimizer_group_params */
  int n_params, cap_params;
  tfw__opt_group *groups;
  int n_groups, cap_groups;
};

/* Slot names of a kind (NULL where the kind has fewer slots). */
extern const char *const tfw__opt_slot_names[][TFW__OPT_SLOTS];
/* Whether slot k of kind is in use with options o. */
bool tfw__opt_slot_used(tfw_optim_kind kind, int k, const tfw_optim_options *o);

#endif
