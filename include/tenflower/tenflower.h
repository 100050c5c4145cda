/* tenflower — a deep-learning framework in C. Include this header only. */
#ifndef TENFLOWER_H
#define TENFLOWER_H
#include "status.h"
#include "dtype.h"
#include "tensor.h"
#include "ops.h"
#include "autograd.h"
#include "nn.h"
#include "nn_functional_norm.h"
#include "io.h"
#include "data.h"
#include "data_media.h"
#include "transforms.h"
#include "data_formats.h"
#include "logging.h"
#include "nn_functional_conv.h"
#include "nn_functional_activation.h"
#include "nn_functional_loss.h"
#include "nn_recurrent.h"
#include "nn_functional_attention.h"
#include "nn_attention.h"
#include "nn_gpt.h"
#include "amp.h"
#include "optim.h"
#include "train.h"

#endif
