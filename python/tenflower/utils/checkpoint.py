"""Activation checkpointing over the C library's tfw_checkpoint: the forward runs without
saving activations; backward re-runs the function (with the RNG state of the forward, so
dropout masks repeat) and backpropagates through it. Gradients are bit-identical to running
the function directly."""
from .. import _C

_Tensor = _C.Tensor


def _module_of(function):
    from ..nn import Module
    if isinstance(function, Module):
        return function
    owner = getattr(function, "__self__", None)
    return owner if isinstance(owner, Module) else None


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, params=None,
               **kwargs):
    """checkpoint(function, *tensors) -> function(*tensors). The function must return a
    Tensor or a tuple of 1-2 Tensors. Tensors it reads that need gradients must be among
    its arguments, or be the parameters of `function` when it is a Module (or a Module's
    method), or be listed in params=[...]; at most 8 tensors in all (non-tensor arguments
    are passed through). During the recomputation those parameters temporarily refer to
    the recomputation's leaves, so their gradients flow as without checkpointing."""
    if kwargs:
        raise ValueError("checkpoint: keyword arguments to the function are not supported")
    if params is None:
        mod = _module_of(function)
        params = [] if mod is None else [p for p in mod.parameters() if p.requires_grad]
    params = list(params)
    tensor_pos = [i for i, a in enumerate(args) if isinstance(a, _Tensor)]
    if not tensor_pos and not params:
        return function(*args)
    consts = list(args)
    n_args = len(tensor_pos)

    def run(*tensors):
        full = list(consts)
        for i, t in zip(tensor_pos, tensors[:n_args]):
            full[i] = t
        swapped = list(zip(params, tensors[n_args:]))
        for p, t in swapped:
            _C._swap(p, t)
        try:
            return function(*full)
        finally:
            for p, t in swapped:
                _C._swap(p, t)

    # the number of outputs is learnt from a first call only when needed: try one, then two
    tensors = [args[i] for i in tensor_pos] + params
    try:
        (out,) = _C._checkpoint(run, 1, *tensors)
        return out
    except _C.InvalidArgumentError as e:
        if "must return 1 tensor" not in str(e):
            raise
    return _C._checkpoint(run, 2, *tensors)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Runs a Sequential (or list of modules) in `segments` checkpointed chunks."""
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    size = (len(fns) + segments - 1) // segments
    for start in range(0, len(fns), size):
        chunk = fns[start:start + size]

        def run(x, chunk=chunk):
            for f in chunk:
                x = f(x)
            return x
        ps = [p for f in chunk if hasattr(f, "parameters") for p in f.parameters()
              if p.requires_grad]
        input = checkpoint(run, input, params=ps)
    return input
