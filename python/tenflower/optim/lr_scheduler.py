"""optim.lr_scheduler: PyTorch's schedulers over the C library's closed-form schedulers.
Each sets the lr of every param group of its optimizer at creation (epoch 0) and at each
step(); the values land in the group dicts (group['lr']) and in the C optimizer."""
import math

from .. import _C

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "LinearLR", "OneCycleLR", "PolynomialLR",
           "ReduceLROnPlateau", "WarmupLR", "warmup"]


class LRScheduler:
    def __init__(self, optimizer, kind, *args):
        if not hasattr(optimizer, "_c"):
            if kind in _PY_SCHEDULES:  # Python optimizers (Adadelta): closed form in Python
                self._py_init(optimizer, kind, args)
                return
            raise TypeError(f"{type(optimizer).__name__} is not a tenflower Optimizer")
        optimizer._sync()
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.optimizer = optimizer
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self._s = _C._LRScheduler(optimizer._c, kind, *args)
        optimizer._pull()
        self._last_lr = self._read_lrs()

    def _py_init(self, optimizer, kind, args):
        self.optimizer, self._s = optimizer, None
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self._py = (_PY_SCHEDULES[kind], args)
        self._epoch = 0
        self._py_apply()

    def _py_apply(self):
        fn, args = self._py
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = fn(base, self._epoch, *args)
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _read_lrs(self):
        return [self._s.last_lr(i) for i in range(len(self.optimizer.param_groups))]

    @property
    def last_epoch(self):
        return self._epoch if self._s is None else self._s.last_epoch()

    def get_last_lr(self):
        return list(self._last_lr)

    def step(self, epoch=None):
        if epoch is not None:
            raise NotImplementedError("step(epoch) is deprecated in PyTorch and not supported")
        if self._s is None:
            self._epoch += 1
            self._py_apply()
            return
        self.optimizer._sync()
        self._s.step()
        self.optimizer._pull()
        self._last_lr = self._read_lrs()

    def state_dict(self):
        return {k: v for k, v in self._s.state_dict()}

    def load_state_dict(self, state_dict):
        self._s.load_state_dict(list(state_dict.items()))
        self._last_lr = self._read_lrs()


_LRScheduler = LRScheduler

# closed forms for optimizers implemented in Python (no C optimizer to drive)
_PY_SCHEDULES = {
    "StepLR": lambda base, e, step_size, gamma: base * gamma ** (e // step_size),
    "ExponentialLR": lambda base, e, gamma: base * gamma ** e,
}


class StepLR(LRScheduler):
    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1, verbose=False):
        super().__init__(optimizer, "StepLR", step_size, gamma)


class MultiStepLR(LRScheduler):
    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1, verbose=False):
        super().__init__(optimizer, "MultiStepLR", sorted(milestones), gamma)


class ExponentialLR(LRScheduler):
    def __init__(self, optimizer, gamma, last_epoch=-1, verbose=False):
        super().__init__(optimizer, "ExponentialLR", gamma)


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, T_max, eta_min=0, last_epoch=-1, verbose=False):
        super().__init__(optimizer, "CosineAnnealingLR", T_max, eta_min)


class CosineAnnealingWarmRestarts(LRScheduler):
    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0, last_epoch=-1, verbose=False):
        super().__init__(optimizer, "CosineAnnealingWarmRestarts", T_0, T_mult, eta_min)


class LinearLR(LRScheduler):
    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1, verbose=False):
        super().__init__(optimizer, "LinearLR", start_factor, end_factor, total_iters)


class PolynomialLR(LRScheduler):
    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1, verbose=False):
        super().__init__(optimizer, "PolynomialLR", total_iters, power)


class OneCycleLR(LRScheduler):
    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1, verbose=False):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("You must define either total_steps OR (epochs AND "
                                 "steps_per_epoch)")
            total_steps = epochs * steps_per_epoch
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        super().__init__(optimizer, "OneCycleLR", max_lr, total_steps, pct_start,
                         anneal_strategy, cycle_momentum, base_momentum, max_momentum,
                         div_factor, final_div_factor, three_phase)


class ReduceLROnPlateau(LRScheduler):
    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8, verbose=False):
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        super().__init__(optimizer, "ReduceLROnPlateau", mode, factor, patience, threshold,
                         threshold_mode, cooldown, min_lr, eps)

    def step(self, metrics, epoch=None):
        self.optimizer._sync()
        self._s.step(float(metrics))
        self.optimizer._pull()
        self._last_lr = self._read_lrs()


class WarmupLR(LRScheduler):
    """Linear warmup over warmup_steps, then after_scheduler (None: constant lr): the same
    as SequentialLR([LinearLR(opt, start_factor, 1.0, warmup_steps), after_scheduler],
    milestones=[warmup_steps]). after_scheduler is consumed (moved into this one)."""

    def __init__(self, optimizer, warmup_steps, after_scheduler=None, start_factor=1.0 / 3):
        inner = None
        if after_scheduler is not None:
            if after_scheduler.optimizer is not optimizer:
                raise ValueError("after_scheduler must belong to the same optimizer")
            inner = after_scheduler._s
            # the inner scheduler set epoch 0's lr; the warmup starts from the base lrs
            for g, lr in zip(optimizer.param_groups, after_scheduler.base_lrs):
                g["lr"] = lr
        super().__init__(optimizer, "Warmup", inner, warmup_steps, start_factor)


def warmup(optimizer, warmup_steps, after_scheduler=None, start_factor=1.0 / 3):
    """A WarmupLR (linear warmup in front of another scheduler)."""
    return WarmupLR(optimizer, warmup_steps, after_scheduler, start_factor)
