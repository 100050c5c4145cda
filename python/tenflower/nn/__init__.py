"""tenflower.nn: Module (automatic registration of parameters and submodules), the layers,
losses, nn.functional, nn.init and nn.utils. See docs/python.md."""
from .parameter import Parameter  # noqa: F401
from .module import Module  # noqa: F401
from .layers import *  # noqa: F401,F403
from .layers import (  # noqa: F401
    Sequential, ModuleList, ModuleDict, ParameterList, Identity, Flatten, Unflatten, Linear,
    Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, MaxPool1d, MaxPool2d, AvgPool1d,
    AvgPool2d, AdaptiveAvgPool2d, Dropout, Dropout1d, Dropout2d, Embedding, LayerNorm, RMSNorm,
    GroupNorm, BatchNorm1d, BatchNorm2d, MultiheadAttention, TransformerEncoderLayer,
    TransformerDecoderLayer, LSTM, GRU, ReLU, ReLU6, GELU, Tanh, Sigmoid, LeakyReLU, ELU, SELU,
    CELU, SiLU, Mish, Hardswish, Hardsigmoid, Hardtanh, Softplus, Softsign, LogSigmoid, GLU,
    Softmax, LogSoftmax, Softmin, CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss,
    HuberLoss, KLDivLoss, BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, MarginRankingLoss,
    TripletMarginLoss,
)
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
