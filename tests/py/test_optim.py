"""tenflower.optim against torch.optim: 20 training steps of a small MLP from the same init
(torch's state_dict loaded into the tenflower model) give the same parameters; param groups
as dicts; state_dict round trips; schedulers step for step; clip_grad_norm_."""
import math

import numpy as np
import pytest
import torch

import tenflower as tf
import tenflower.nn as nn


def arr(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


X, Y = arr((16, 4), 1), arr((16, 3), 2)


def models():
    torch.manual_seed(0)
    rm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    m.load_state_dict(rm.state_dict())
    return m, rm


def train(m, opt, steps, sched=None):
    x, y = tf.tensor(X), tf.tensor(Y)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return loss.item()


def rtrain(m, opt, steps, sched=None):
    x, y = torch.tensor(X), torch.tensor(Y)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return loss.item()


def same_params(m, rm, tol=2e-5):
    rp = dict(rm.named_parameters())
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), rp[name].detach().numpy(), rtol=tol,
                                   atol=tol, err_msg=name)


OPTS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,kw", OPTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTS)])
def test_20_steps_match_torch(name, kw):
    m, rm = models()
    opt = getattr(tf.optim, name)(m.parameters(), **kw)
    ropt = getattr(torch.optim, name)(rm.parameters(), **kw)
    loss, rloss = train(m, opt, 20), rtrain(rm, ropt, 20)
    assert loss == pytest.approx(rloss, rel=1e-4, abs=1e-6)
    same_params(m, rm)
    # state_dict in PyTorch's layout, with the same buffers
    sd, rsd = opt.state_dict(), ropt.state_dict()
    assert sd["param_groups"][0]["params"] == rsd["param_groups"][0]["params"]
    rstate = {i: {k: v for k, v in st.items() if v is not None}
              for i, st in rsd["state"].items()}  # torch's plain SGD keeps None buffers
    rstate = {i: st for i, st in rstate.items() if st}
    assert set(sd["state"]) == set(rstate)
    for i, st in rstate.items():
        assert set(sd["state"][i]) == set(st), (sd["state"][i].keys(), st.keys())
        for k, v in st.items():
            np.testing.assert_allclose(np.asarray(sd["state"][i][k].numpy(), np.float64),
                                       np.asarray(v.numpy() if torch.is_tensor(v) else v,
                                                  np.float64), rtol=1e-4, atol=1e-4)


def test_param_groups_as_dicts():
    m, rm = models()
    groups = lambda mod: [{"params": mod[0].parameters(), "lr": 0.05},  # noqa: E731
                          {"params": mod[2].parameters()}]
    opt = tf.optim.SGD(groups(m), lr=0.1, momentum=0.9)
    ropt = torch.optim.SGD(groups(rm), lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.1]
    train(m, opt, 5)
    rtrain(rm, ropt, 5)
    # changing a group's dict takes effect at the next step, as in PyTorch
    opt.param_groups[1]["lr"] = 0.01
    ropt.param_groups[1]["lr"] = 0.01
    opt.param_groups[0]["momentum"] = 0.5
    ropt.param_groups[0]["momentum"] = 0.5
    train(m, opt, 5)
    rtrain(rm, ropt, 5)
    same_params(m, rm)
    with pytest.raises(ValueError):
        tf.optim.SGD(m.parameters())  # lr is required
    with pytest.raises(ValueError):
        tf.optim.Adam(m.parameters(), lr=-1)
    with pytest.raises(tf.InvalidArgumentError):  # a parameter in two groups
        tf.optim.SGD([{"params": [m[0].weight]}, {"params": [m[0].weight]}], lr=0.1)


def test_state_dict_resume_and_torch_state():
    m, rm = models()
    opt = tf.optim.Adam(m.parameters(), lr=0.01)
    train(m, opt, 10)
    sd = opt.state_dict()
    m2, _ = models()
    m2.load_state_dict(m.state_dict())
    opt2 = tf.optim.Adam(m2.parameters(), lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.01
    train(m, opt, 10)
    train(m2, opt2, 10)
    for (n, p), (_, q) in zip(m.named_parameters(), m2.named_parameters()):
        assert p.tolist() == q.tolist(), n
    # torch's optimizer state loads too: continue a torch run in tenflower
    ropt = torch.optim.Adam(rm.parameters(), lr=0.01)
    rtrain(rm, ropt, 10)
    m3, _ = models()
    m3.load_state_dict(rm.state_dict())
    opt3 = tf.optim.Adam(m3.parameters(), lr=0.01)
    opt3.load_state_dict(ropt.state_dict())
    train(m3, opt3, 10)
    rtrain(rm, ropt, 10)
    same_params(m3, rm)


def np_ref(kind, steps, lr, b1, b2, wd, eps=1e-16):
    """AdaBelief / Lion reference loops in numpy on the same MLP (gradients from torch)."""
    torch.manual_seed(0)
    rm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    params = [p.detach().numpy().astype(np.float64) for p in rm.parameters()]
    m = [np.zeros_like(p) for p in params]
    s = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        tp = [torch.tensor(p.astype(np.float32), requires_grad=True) for p in params]
        h = torch.tanh(torch.tensor(X) @ tp[0].T + tp[1]) @ tp[2].T + tp[3]
        torch.nn.functional.mse_loss(h, torch.tensor(Y)).backward()
        for i, p in enumerate(params):
            g = tp[i].grad.numpy().astype(np.float64)
            if kind == "Lion":
                p *= 1 - lr * wd
                p -= lr * np.sign(b1 * m[i] + (1 - b1) * g)
                m[i] = b2 * m[i] + (1 - b2) * g
            else:
                p *= 1 - lr * wd
                m[i] = b1 * m[i] + (1 - b1) * g
                s[i] = b2 * s[i] + (1 - b2) * (g - m[i]) ** 2 + eps
                denom = np.sqrt(s[i]) / math.sqrt(1 - b2 ** t) + eps
                p -= lr / (1 - b1 ** t) * m[i] / denom
    return params


@pytest.mark.parametrize("kind", ["AdaBelief", "Lion"])
def test_adabelief_lion_match_reference(kind):
    m, _ = models()
    if kind == "Lion":
        opt = tf.optim.Lion(m.parameters(), lr=0.01, weight_decay=0.1)
        ref = np_ref(kind, 20, 0.01, 0.9, 0.99, 0.1)
    else:
        opt = tf.optim.AdaBelief(m.parameters(), lr=0.01, weight_decay=0.1)
        ref = np_ref(kind, 20, 0.01, 0.9, 0.999, 0.1)
    train(m, opt, 20)
    for p, r in zip(m.parameters(), ref):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=1e-4, atol=1e-4)


SCHEDS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.01)),
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=6)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=16)),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=16, anneal_strategy="linear",
                        three_phase=True)),
    ("PolynomialLR", dict(total_iters=8, power=2.0)),
]


@pytest.mark.parametrize("name,kw", SCHEDS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDS)])
def test_schedulers_step_for_step(name, kw):
    if not hasattr(torch.optim.lr_scheduler, name):
        pytest.skip(f"torch {torch.__version__} lacks {name}")
    m, rm = models()
    opt = tf.optim.SGD([{"params": m[0].parameters()}, {"params": m[2].parameters(),
                                                        "lr": 0.05}], lr=0.1, momentum=0.9)
    ropt = torch.optim.SGD([{"params": rm[0].parameters()}, {"params": rm[2].parameters(),
                                                             "lr": 0.05}], lr=0.1, momentum=0.9)
    s = getattr(tf.optim.lr_scheduler, name)(opt, **kw)
    rs = getattr(torch.optim.lr_scheduler, name)(ropt, **kw)
    for step in range(15):
        for g, rg in zip(opt.param_groups, ropt.param_groups):
            assert g["lr"] == pytest.approx(rg["lr"], rel=1e-9, abs=1e-12), (step, g, rg)
            assert g["momentum"] == pytest.approx(rg["momentum"], rel=1e-9), step
        assert s.get_last_lr() == pytest.approx(rs.get_last_lr(), rel=1e-9, abs=1e-12)
        train(m, opt, 1)
        rtrain(rm, ropt, 1)
        s.step()
        rs.step()
    same_params(m, rm)


def test_plateau_and_warmup():
    m, rm = models()
    opt = tf.optim.SGD(m.parameters(), lr=0.1)
    ropt = torch.optim.SGD(rm.parameters(), lr=0.1)
    s = tf.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5, cooldown=1)
    rs = torch.optim.lr_scheduler.ReduceLROnPlateau(ropt, patience=2, factor=0.5, cooldown=1)
    for metric in [1.0, 0.9, 0.95, 0.97, 0.99, 0.8, 0.85, 0.86, 0.87, 0.88, 0.9, 0.91]:
        s.step(metric)
        rs.step(metric)
        assert opt.param_groups[0]["lr"] == pytest.approx(ropt.param_groups[0]["lr"])
    # warmup + cosine = SequentialLR([LinearLR, CosineAnnealingLR], [4])
    m, rm = models()
    opt = tf.optim.SGD(m.parameters(), lr=0.1)
    ropt = torch.optim.SGD(rm.parameters(), lr=0.1)
    s = tf.optim.lr_scheduler.warmup(opt, 4, tf.optim.lr_scheduler.CosineAnnealingLR(opt, 6),
                                     start_factor=0.25)
    rs = torch.optim.lr_scheduler.SequentialLR(
        ropt, [torch.optim.lr_scheduler.LinearLR(ropt, 0.25, 1.0, 4),
               torch.optim.lr_scheduler.CosineAnnealingLR(ropt, 6)], milestones=[4])
    for step in range(12):
        assert opt.param_groups[0]["lr"] == pytest.approx(ropt.param_groups[0]["lr"],
                                                          abs=1e-12), step
        s.step()
        rs.step()
    sd = s.state_dict()
    assert "last_epoch" in sd


def test_clip_grad_norm_matches_torch():
    m, rm = models()
    nn.functional.mse_loss(m(tf.tensor(X)), tf.tensor(Y)).mul(100).backward()
    torch.nn.functional.mse_loss(rm(torch.tensor(X)), torch.tensor(Y)).mul(100).backward()
    for norm_type in (2.0, 1.0, float("inf")):
        n = nn.utils.clip_grad_norm_(m.parameters(), 0.5, norm_type)
        rn = torch.nn.utils.clip_grad_norm_(rm.parameters(), 0.5, norm_type)
        assert n.item() == pytest.approx(rn.item(), rel=1e-5)
        rp = dict(rm.named_parameters())
        for name, p in m.named_parameters():
            np.testing.assert_allclose(p.grad.numpy(), rp[name].grad.numpy(), rtol=1e-5,
                                       atol=1e-7)
    nn.utils.clip_grad_value_(m.parameters(), 0.01)
    assert max(abs(p.grad.numpy()).max() for p in m.parameters()) <= 0.01
