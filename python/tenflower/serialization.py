"""tenflower.save / tenflower.load on safetensors (a dict of named tensors plus string
metadata), written atomically by the C library."""
import os

from . import _C

_Tensor = _C.Tensor


def save(obj, f, metadata=None):
    """Saves a dict {name: Tensor} (a state_dict; Parameters are saved as their data) to the
    safetensors file f. metadata: {str: str} stored in the header's "__metadata__"."""
    if not isinstance(obj, dict):
        raise TypeError("tenflower.save stores a dict of tensors (safetensors); got "
                        f"{type(obj).__name__}")
    names, tensors = [], []
    for k, v in obj.items():
        if not isinstance(k, str):
            raise TypeError(f"tensor names must be str, got {k!r}")
        if not isinstance(v, _Tensor):
            raise TypeError(f"value of {k!r} is a {type(v).__name__}, not a Tensor")
        names.append(k)
        tensors.append(v.detach())
    _C._st_save(os.fspath(f), names, tensors, dict(metadata or {}))


def load(f, *, with_metadata=False, map_location=None, weights_only=True):
    """Loads a safetensors file as a dict {name: Tensor} in file order (zero-copy when
    aligned: the tensors share the file's mapping). with_metadata: returns (dict, metadata)."""
    items, meta = _C._st_load(os.fspath(f))
    d = dict(items)
    return (d, meta) if with_metadata else d
