/* Internal helpers shared by the built-in layers. */
#ifndef TFW_NN_INTERNAL_H
#define TFW_NN_INTERNAL_H

#include "core/core.h"
#include "tenflower/nn.h"

/* A new module whose implementation is a zeroed, malloc'd block of impl_size bytes, stored in
 * *impl; vt->destroy must free it (tfw__module_free_impl does). NULL with TFW_ENOMEM set
 * naming the type on failure. */
tfw_module *tfw__module_new_impl(const tfw_module_vtable *vt, size_t impl_size, void **impl);
/* The destroy function for such blocks. */
void tfw__module_free_impl(void *impl);

#endif
