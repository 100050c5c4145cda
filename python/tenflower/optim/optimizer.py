"""Optimizers: Python objects with PyTorch's interface (param_groups as dicts, state_dict in
PyTorch's layout) over one C optimizer each. step() runs the C library's fused update with the
GIL released; changes to a group's dict (group['lr'] = ...) reach the C optimizer at the next
step()."""
from .. import _C

_Tensor = _C.Tensor


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class. Subclasses set _kind (the C optimizer's name) and _keys (hyperparameter
    names as PyTorch spells them)."""

    _kind = None
    _keys = ()

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self._c = _C._Optimizer(self._kind, self._c_options(self.defaults))
        self.param_groups = []
        self._snap = []
        if isinstance(params, _Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def _c_options(self, g):
        out = {}
        for k in self._keys:
            if k in g and g[k] is not required:
                out[k] = g[k]
        if "betas" in out:
            out["betas"] = tuple(float(b) for b in out["betas"])
        return out

    def _snapshot(self, g):
        return tuple((k, tuple(g[k]) if k == "betas" else g[k]) for k in self._keys)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError("param_group must be a dict")
        params = param_group["params"]
        params = [params] if isinstance(params, _Tensor) else list(params)
        for p in params:
            if not isinstance(p, _Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + type(p).__name__)
        g = dict(param_group)
        g["params"] = params
        for k, v in self.defaults.items():
            if v is required and k not in g:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {k}")
            g.setdefault(k, v)
        self._c.add_param_group(params, self._c_options(g))
        self.param_groups.append(g)
        self._snap.append(self._snapshot(g))

    def _sync(self):
        """Pushes hyperparameters changed in the group dicts to the C optimizer."""
        for i, g in enumerate(self.param_groups):
            s = self._snapshot(g)
            if s != self._snap[i]:
                self._c.set_options(i, self._c_options(g))
                self._snap[i] = s

    def _pull(self):
        """Reads hyperparameters set on the C side (by a scheduler) into the group dicts."""
        for i, g in enumerate(self.param_groups):
            o = self._c.get_options(i)
            for k in self._keys:
                if k in g:
                    g[k] = tuple(o[k]) if k == "betas" else o[k]
            self._snap[i] = self._snapshot(g)

    def zero_grad(self, set_to_none=True):
        self._c.zero_grad(set_to_none)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            prev = _C._set_grad_enabled(True)
            try:
                loss = closure()
            finally:
                _C._set_grad_enabled(prev)
        self._sync()
        self._c.step()
        return loss

    # ---- state ---------------------------------------------------------------------------
    @property
    def state(self):
        """{param: {name: tensor}} for parameters that have state (copies)."""
        params = [p for g in self.param_groups for p in g["params"]]
        out = {}
        for i, st in self._state_by_index().items():
            out[params[i]] = st
        return out

    _step_in_state = True  # PyTorch's SGD keeps no step count

    def _state_by_index(self):
        st = {}
        for name, t in self._c.state_dict():
            if name.startswith("state."):
                _, idx, key = name.split(".", 2)
                if key == "step" and not self._step_in_state:
                    continue
                st.setdefault(int(idx), {})[key] = t
        return st

    def state_dict(self):
        """PyTorch's layout: {'state': {index: {'step': tensor, 'exp_avg': ...}},
        'param_groups': [{hyperparameters..., 'params': [indices]}]}."""
        self._sync()
        groups, k = [], 0
        for g in self.param_groups:
            d = {key: v for key, v in g.items() if key != "params"}
            d["params"] = list(range(k, k + len(g["params"])))
            k += len(g["params"])
            groups.append(d)
        return {"state": self._state_by_index(), "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
        # the C optimizer's own key list says which group hyperparameters it stores
        entries = []
        for name, _ in self._c.state_dict():
            if not name.startswith("param_groups."):
                continue
            _, gi, key = name.split(".", 2)
            g = groups[int(gi)]
            if key == "num_params":
                v = len(g["params"])
            elif key in ("beta1", "beta2"):
                v = g["betas"][0 if key == "beta1" else 1]
            else:
                v = g[key]
            entries.append((name, _C.tensor(float(v), dtype=_C.float64)))
        # state keys: PyTorch's index of the parameter in the groups' order
        order = {}
        k = 0
        for g in groups:
            for j, idx in enumerate(g["params"]):
                order[idx] = k + j
            k += len(g["params"])
        for idx, st in state_dict["state"].items():
            if "step" not in st and st:  # SGD: the C optimizer counts steps too
                st = dict(st, step=1.0)
            for key, v in st.items():
                if not isinstance(v, _Tensor):
                    if hasattr(v, "detach"):  # a torch tensor
                        v = _C.tensor(v.detach().cpu().numpy())
                    else:
                        v = _C.tensor(float(v), dtype=_C.float64)
                if key == "step":
                    v = v.to(_C.float64).reshape(())
                entries.append((f"state.{order[idx]}.{key}", v))
        self._c.load_state_dict(entries)
        for mine, theirs in zip(self.param_groups, groups):
            for key, v in theirs.items():
                if key != "params":
                    mine[key] = tuple(v) if key == "betas" else v
        self._pull()

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(g):
                if k != "params":
                    s += f"\n    {k}: {g[k]}"
        return s + "\n)"


def _check(lr, eps=0.0, wd=0.0):
    if lr is not required and lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if wd < 0.0:
        raise ValueError(f"Invalid weight_decay value: {wd}")


class SGD(Optimizer):
    _kind = "SGD"
    _step_in_state = False
    _keys = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def __init__(self, params, lr=required, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False):
        _check(lr, 0.0, weight_decay)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))


class Adam(Optimizer):
    _kind = "Adam"
    _keys = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None):
        _check(lr, eps, weight_decay)
        for b in betas:
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter: {b}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))


class AdamW(Adam):
    _kind = "AdamW"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    _kind = "RMSprop"
    _keys = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, foreach=None, maximize=False, differentiable=False):
        _check(lr, eps, weight_decay)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))


class Adagrad(Optimizer):
    _kind = "Adagrad"
    _keys = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False):
        _check(lr, eps, weight_decay)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))


class AdaBelief(Optimizer):
    """AdaBelief (Zhuang et al. 2020) as adabelief-pytorch without rectification."""
    _kind = "AdaBelief"
    _keys = ("lr", "betas", "eps", "weight_decay", "amsgrad", "decoupled_weight_decay",
             "maximize")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0,
                 amsgrad=False, decoupled_weight_decay=True, maximize=False):
        _check(lr, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))


class Lion(Optimizer):
    """Lion (Chen et al. 2023) as lion-pytorch (decoupled weight decay)."""
    _kind = "Lion"
    _keys = ("lr", "betas", "weight_decay", "maximize")

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):
        _check(lr, 0.0, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                                      maximize=maximize))


class Adadelta:
    """torch.optim.Adadelta (PyTorch's MNIST example uses it). The C library has no Adadelta:
    this one updates in Python with tensor ops under no-grad (a handful of ops per parameter)."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False,
                 foreach=None, differentiable=False):
        if lr < 0 or not 0.0 <= rho <= 1.0 or eps < 0 or weight_decay < 0:
            raise ValueError("Adadelta: invalid hyperparameter")
        self.defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                             maximize=maximize)
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups = []
        for g in groups:
            g = dict(g)
            g["params"] = [g["params"]] if isinstance(g["params"], _Tensor) else list(g["params"])
            for k, v in self.defaults.items():
                g.setdefault(k, v)
            self.param_groups.append(g)
        self.state = {}

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    def step(self, closure=None):
        loss = None
        if closure is not None:
            prev = _C._set_grad_enabled(True)
            try:
                loss = closure()
            finally:
                _C._set_grad_enabled(prev)
        prev = _C._set_grad_enabled(False)
        try:
            for g in self.param_groups:
                lr, rho, eps, wd = g["lr"], g["rho"], g["eps"], g["weight_decay"]
                for p in g["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    if g["maximize"]:
                        grad = -grad
                    if wd:
                        grad = grad + wd * p
                    st = self.state.get(id(p))
                    if st is None:
                        st = self.state[id(p)] = {"step": 0, "square_avg": _C.zeros(p.shape, dtype=p.dtype),
                                                   "acc_delta": _C.zeros(p.shape, dtype=p.dtype)}
                    st["step"] += 1
                    sq = st["square_avg"].mul_(rho)
                    sq += (1 - rho) * grad * grad
                    delta = ((st["acc_delta"] + eps).sqrt() / (sq + eps).sqrt()) * grad
                    acc = st["acc_delta"].mul_(rho)
                    acc += (1 - rho) * delta * delta
                    p -= lr * delta
        finally:
            _C._set_grad_enabled(prev)
        return loss
