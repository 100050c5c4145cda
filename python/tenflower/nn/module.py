"""nn.Module: PyTorch's Module semantics in Python. Assigning a Parameter, a Module or (through
register_buffer) a buffer to an attribute registers it; parameters(), named_parameters(),
children(), modules(), train()/eval(), zero_grad(), state_dict()/load_state_dict() (PyTorch's
key names), to(dtype), hooks. Parameters are tensors of the C library, so optimizers of
tenflower.optim update them in place."""
from collections import OrderedDict, namedtuple
import itertools

from .. import _C
from .parameter import Parameter

_Tensor = _C.Tensor

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    _ids = itertools.count()

    def __init__(self, hooks_dict):
        self._dict = hooks_dict
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self._dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _to_tensor(v):
    if isinstance(v, _Tensor):
        return v
    if hasattr(v, "detach") and hasattr(v, "numpy"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return _C.tensor(v)


class Module:
    """Base class of all layers. Subclasses call super().__init__() first, then assign
    Parameters and Modules as attributes, and define forward()."""

    _version = 1
    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()

    def forward(self, *input):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    # ---- registration --------------------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._remove_from(name)
            params[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if d.get("_modules") is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._remove_from(name)
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (nn.Module or None expected)")
            d["_modules"][name] = None
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, _Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _remove_from(self, name):
        d = self.__dict__
        d.pop(name, None)
        for k in ("_parameters", "_buffers", "_modules"):
            d[k].pop(name, None)
        d["_non_persistent_buffers_set"].discard(name)

    def __getattr__(self, name):
        d = self.__dict__
        for k in ("_parameters", "_buffers", "_modules"):
            store = d.get(k)
            if store is not None and name in store:
                return store[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        d = self.__dict__
        for k in ("_parameters", "_buffers", "_modules"):
            if name in d[k]:
                del d[k][name]
                d["_non_persistent_buffers_set"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def _check_name(self, name, what):
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string. Got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f'{what} name can\'t contain "." and can\'t be empty')
        if hasattr(self, name) and name not in getattr(self, "_" + what + "s", {}) and \
                name not in self._parameters and name not in self._buffers and \
                name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name, param):
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (nn.Parameter or None required)")
        self._remove_from(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, _Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (Tensor or None required)")
        self._remove_from(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError('module name can\'t contain "." and can\'t be empty')
        self._remove_from(name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        mod = self
        if target == "":
            return mod
        for item in target.split("."):
            if item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}`")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return mod._parameters[name]

    # ---- iteration ---------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if self in memo and remove_duplicate:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name,
                                       remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and m not in seen:
                seen.add(m)
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, getter, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mp, m in mods:
            for k, v in getter(m):
                if v is None:
                    continue
                if remove_duplicate:
                    if id(v) in seen:
                        continue
                    seen.add(id(v))
                yield mp + ("." if mp else "") + k, v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                   remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                   remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ---- modes and gradients -----------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = _C.zeros(p.shape, dtype=p.dtype)

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- state dict --------------------------------------------------------------------------
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        if args:  # PyTorch's deprecated positional form (destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".",
                             keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix, missing, unexpected, errors, todo):
        local = [(k, v) for k, v in self._parameters.items() if v is not None]
        local += [(k, v) for k, v in self._buffers.items()
                  if v is not None and k not in self._non_persistent_buffers_set]
        for name, param in local:
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            v = _to_tensor(state_dict[key])
            if tuple(v.shape) != tuple(param.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{list(v.shape)} from checkpoint, the shape in current model is "
                              f"{list(param.shape)}.")
                continue
            todo.append((param, v))

    def load_state_dict(self, state_dict, strict=True):
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing, errors, todo = [], [], []
        expected = set()
        for mp, m in self.named_modules():
            prefix = mp + "." if mp else ""
            m._load_from_state_dict(state_dict, prefix, missing, None, errors, todo)
            expected.update(prefix + k for k, v in m._parameters.items() if v is not None)
            expected.update(prefix + k for k, v in m._buffers.items()
                            if v is not None and k not in m._non_persistent_buffers_set)
        unexpected = [k for k in state_dict.keys() if k not in expected]
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        prev = _C._set_grad_enabled(False)
        try:
            for dst, src in todo:
                dst.copy_(src)
        finally:
            _C._set_grad_enabled(prev)
        return _IncompatibleKeys(missing, unexpected)

    # ---- dtype conversion ----------------------------------------------------------------------
    def _apply_dtype(self, dtype, floating_only=True):
        for m in self.modules():
            for store in (m._parameters, m._buffers):
                for k, t in store.items():
                    if t is None or (floating_only and not t.dtype.is_floating_point):
                        continue
                    if t.dtype == dtype:
                        continue
                    if isinstance(t, Parameter):
                        _C._set_data(t, t.detach().to(dtype))
                        if t.grad is not None:
                            t.grad = t.grad.to(dtype)
                    else:
                        store[k] = t.to(dtype)
        return self

    def to(self, *args, **kwargs):
        dtype = kwargs.get("dtype")
        device = kwargs.get("device")
        for a in args:
            if isinstance(a, _C.dtype):
                dtype = a
            elif isinstance(a, _Tensor):
                dtype = a.dtype
            else:
                device = a
        if device is not None and str(device).split(":")[0] != "cpu":
            raise _C.DeviceError(f"Module.to: device {device!r} is not available (cpu only)")
        if dtype is not None:
            if not dtype.is_floating_point:
                raise TypeError("nn.Module.to only accepts floating point dtypes, but got "
                                f"desired dtype={dtype}")
            self._apply_dtype(dtype)
        return self

    def float(self):
        return self._apply_dtype(_C.float32)

    def double(self):
        return self._apply_dtype(_C.float64)

    def half(self):
        return self._apply_dtype(_C.float16)

    def bfloat16(self):
        return self._apply_dtype(_C.bfloat16)

    def cpu(self):
        return self

    def type(self, dst_type):
        return self._apply_dtype(dst_type)

    # ---- calling and hooks ---------------------------------------------------------------------
    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False):
        h = RemovableHandle(self._forward_hooks)
        self._forward_hooks[h.id] = (hook, with_kwargs)
        if prepend:
            self._forward_hooks.move_to_end(h.id, last=False)
        return h

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        h = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[h.id] = (hook, with_kwargs)
        if prepend:
            self._forward_pre_hooks.move_to_end(h.id, last=False)
        return h

    def __call__(self, *args, **kwargs):
        if not (self._forward_hooks or self._forward_pre_hooks):
            return self.forward(*args, **kwargs)
        for hook, wk in list(self._forward_pre_hooks.values()):
            if wk:
                r = hook(self, args, kwargs)
                if r is not None:
                    args, kwargs = r
            else:
                r = hook(self, args)
                if r is not None:
                    args = r if isinstance(r, tuple) else (r,)
        out = self.forward(*args, **kwargs)
        for hook, wk in list(self._forward_hooks.values()):
            r = hook(self, args, kwargs, out) if wk else hook(self, args, out)
            if r is not None:
                out = r
        return out

    # ---- printing -----------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            r = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {r}")
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)


class _CPart(Module):
    """A submodule of a C-backed module (its parameters are the C module's tensors)."""

    def __init__(self, type_name):
        super().__init__()
        object.__setattr__(self, "_type_name", type_name)

    def _get_name(self):
        return self._type_name

    def forward(self, *args):
        raise NotImplementedError(f"{self._type_name} is part of a C module; call its owner")


class _CModule(Module):
    """A module implemented by the C library (self._c, a _C._CModule). Its parameters appear
    under PyTorch's names, with the submodule structure their dotted names describe."""

    def _adopt(self, cmod, part_types=None):
        object.__setattr__(self, "_c", cmod)
        part_types = part_types or {}
        for full, t in cmod.named_parameters():
            path = full.split(".")
            owner = self
            for i, part in enumerate(path[:-1]):
                child = owner._modules.get(part)
                if child is None:
                    sub = ".".join(path[:i + 1])
                    child = _CPart(part_types.get(sub, "Module"))
                    owner._modules[part] = child
                owner = child
            p = _C._wrap_as(Parameter, t)
            owner._parameters[path[-1]] = p

    def train(self, mode=True):
        super().train(mode)
        self._c.train(mode)
        return self

    def _apply_dtype(self, dtype, floating_only=True):
        for p in self.parameters():
            if p.dtype != dtype:
                raise NotImplementedError(f"{type(self).__name__}: its parameters belong to a "
                                          "C module and keep their dtype")
        return self
