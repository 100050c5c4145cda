"""tenflower.autograd.functional: vjp, jvp (forward mode: tangents propagate through each op's
JVP rule in C), hvp and vhp (double backward), jacobian, hessian — PyTorch's signatures."""
from . import _C

_Tensor = _C.Tensor


def _tup(x):
    return (x, False) if isinstance(x, (tuple, list)) else ((x,), True)


def _untup(x, single):
    return x[0] if single else tuple(x)


def _prep(inputs, create_graph):
    out = []
    for t in inputs:
        d = t.detach() if not create_graph else t
        if not d.requires_grad:
            d = d.detach().requires_grad_(True)
        out.append(d)
    return out


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J)"""
    inputs, single_in = _tup(inputs)
    xs = _prep(inputs, create_graph)
    with _C_grad(True):
        outs = func(*xs)
    outs_t, single_out = _tup(outs)
    vs = None if v is None else _tup(v)[0]
    grads = _C._autograd_grad(list(outs_t), xs, vs, create_graph, create_graph, True)
    grads = [g if g is not None else _C.zeros(x.shape, dtype=x.dtype)
             for g, x in zip(grads, xs)]
    outs_d = tuple(o if create_graph else o.detach() for o in outs_t)
    return _untup(outs_d, single_out), _untup(grads, single_in)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v) in forward mode: the inputs carry v as tangents."""
    inputs, single_in = _tup(inputs)
    if v is None:
        if any(t.numel() != 1 for t in inputs):
            raise ValueError("jvp: v can only be None if the inputs have one element each")
        v = tuple(_C.ones(t.shape, dtype=t.dtype) for t in inputs)
    vs = _tup(v)[0]
    if len(vs) != len(inputs):
        raise ValueError("jvp: v must have one entry per input")
    xs = []
    for t, tv in zip(inputs, vs):
        if tuple(tv.shape) != tuple(t.shape):
            raise ValueError(f"jvp: v has shape {tuple(tv.shape)}, input {tuple(t.shape)}")
        x = t.detach().clone()
        _C._set_tangent(x, tv)
        xs.append(x)
    with _C_grad(create_graph):
        outs = func(*xs)
    outs_t, single_out = _tup(outs)
    tans = []
    for o in outs_t:
        g = _C._tangent(o)
        tans.append(g if g is not None else _C.zeros(o.shape, dtype=o.dtype))
    res = []
    for o in outs_t:
        d = o.detach()
        _C._set_tangent(d, None) if _C._tangent(d) is not None else None
        res.append(d)
    for x in xs:
        _C._set_tangent(x, None)
    return _untup(tuple(res), single_out), _untup(tuple(tans), single_out)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a scalar function (double backward)."""
    inputs, single_in = _tup(inputs)
    xs = _prep(inputs, False)
    with _C_grad(True):
        out = func(*xs)
        if out.numel() != 1:
            raise ValueError("vhp/hvp: the function must return a single-element tensor")
        grads = _C._autograd_grad([out], xs, None, True, True, True)
        vs = _tup(v)[0] if v is not None else tuple(_C.ones(x.shape, dtype=x.dtype)
                                                   for x in xs)
        dot = None
        for g, vv in zip(grads, vs):
            if g is None:
                continue
            term = (g * vv).sum()
            dot = term if dot is None else dot + term
        hv = _C._autograd_grad([dot], xs, None, create_graph, create_graph, True)
    hv = [h if h is not None else _C.zeros(x.shape, dtype=x.dtype) for h, x in zip(hv, xs)]
    return out.detach(), _untup(tuple(hv), single_in)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v); the Hessian of a scalar function is symmetric, so H v = v^T H."""
    return vhp(func, inputs, v, create_graph, strict)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of func at inputs, one reverse pass per output element."""
    inputs, single_in = _tup(inputs)
    xs = _prep(inputs, create_graph)
    with _C_grad(True):
        out = func(*xs)
    if not isinstance(out, _Tensor):
        raise NotImplementedError("jacobian: functions with several outputs are not supported")
    flat = out.reshape(-1)
    rows = [[] for _ in xs]
    for k in range(flat.numel()):
        gs = _C._autograd_grad([flat[k]], xs, None, True, create_graph, True)
        for i, (g, x) in enumerate(zip(gs, xs)):
            rows[i].append(g if g is not None else _C.zeros(x.shape, dtype=x.dtype))
    jac = [(_C.stack(r, 0) if r else _C.zeros((0,) + tuple(x.shape))).reshape(
        tuple(out.shape) + tuple(x.shape)) for r, x in zip(rows, xs)]
    return _untup(tuple(jac), single_in)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False):
    inputs, single_in = _tup(inputs)
    if not single_in:
        raise NotImplementedError("hessian: one input tensor only")

    def grad_fn(x):
        with _C_grad(True):
            y = func(x)
            (g,) = _C._autograd_grad([y], [x], None, True, True, True)
        return g
    return jacobian(grad_fn, inputs[0], create_graph)


class _C_grad:
    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.prev = _C._set_grad_enabled(self.mode)

    def __exit__(self, *a):
        _C._set_grad_enabled(self.prev)
