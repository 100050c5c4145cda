"""tenflower.utils.data: a DataLoader-like iterator over the C library's loader
(include/tenflower/data.h): batches of rows of tensors, shuffled per epoch from a seed,
gathered in C (optionally by worker threads) with the GIL released."""
from .. import _C

_Tensor = _C.Tensor


class TensorDataset:
    """Rows of tensors that agree on dim 0 (torch.utils.data.TensorDataset)."""

    def __init__(self, *tensors):
        if not tensors or any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError("Size mismatch between tensors")
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)


class DataLoader:
    """DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, num_workers=0,
    seed=None): iterating gives one epoch of batches (tuples of tensors); each new iteration
    is the next epoch (a fresh permutation when shuffle). dataset: a TensorDataset."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, num_workers=0,
                 seed=None, **kwargs):
        if not isinstance(dataset, TensorDataset):
            raise TypeError("DataLoader: only TensorDataset datasets are supported")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        if seed is None:
            seed = _C.initial_seed()
        self._loader = _C._TensorLoader(list(dataset.tensors), batch_size, shuffle, seed,
                                        drop_last, num_workers)

    def __len__(self):
        return len(self._loader)

    def __iter__(self):
        return iter(self._loader)
