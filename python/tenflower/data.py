"""tenflower.data: the C library's data API — IDX files, the MNIST files, u8 image
normalisation — and the C loader (DataLoader, TensorDataset from tenflower.utils.data)."""
import os

from . import _C
from .utils.data import DataLoader, TensorDataset  # noqa: F401


def idx_read(path):
    """Reads an IDX file (optionally .gz) into a tensor of its dtype and shape."""
    return _C._idx_read(os.fspath(path))


def mnist_load(root=None, train=True):
    """(images u8 [N, 28, 28], labels u8 [N]) from the four MNIST IDX files in root
    (None: $TFW_MNIST_DIR)."""
    return _C._mnist_load(None if root is None else os.fspath(root), train)


def normalize_u8(x, mean, std):
    """(x / 255 - mean[c]) / std[c] in float32, as torchvision's ToTensor + Normalize."""
    mean = [mean] if isinstance(mean, (int, float)) else list(mean)
    std = [std] if isinstance(std, (int, float)) else list(std)
    return _C._normalize_u8(x, mean, std)


class MNIST:
    """torchvision.datasets.MNIST-like: .data (u8 [N, 28, 28]), .targets (int64 [N]), and
    tensors() -> (normalised float32 [N, 1, 28, 28], int64 labels) for a TensorDataset."""

    def __init__(self, root=None, train=True, mean=0.1307, std=0.3081):
        self.data, labels = mnist_load(root, train)
        self.targets = labels.to(_C.int64)
        self.mean, self.std = mean, std

    def __len__(self):
        return self.data.shape[0]

    def tensors(self):
        x = normalize_u8(self.data, self.mean, self.std).unsqueeze(1)
        return x, self.targets

    def dataset(self):
        return TensorDataset(*self.tensors())
