"""tenflower.nn against torch.nn: every layer with the same weights (torch's state_dict loaded
into the tenflower module), same input: forward output, input gradient and parameter
gradients; Module registration semantics; state_dict keys; hooks; functional losses."""
import numpy as np
import pytest
import torch

import tenflower as tf
import tenflower.nn as nn
import tenflower.nn.functional as F

TF = torch.nn.functional


def arr(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def close(a, b, tol=1e-4, what=""):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)


def check_layer(mk_tf, mk_torch, inputs, tol=1e-4, train=False, out_index=None, extra=None):
    """inputs: list of numpy arrays (float ones get gradients) or (array, 'int')."""
    torch.manual_seed(0)
    rm = mk_torch()
    m = mk_tf()
    sd = rm.state_dict()
    assert list(m.state_dict().keys()) == list(sd.keys())
    m.load_state_dict(sd)
    m.train(train)
    rm.train(train)
    xs, rxs = [], []
    for a in inputs:
        if isinstance(a, tuple):
            xs.append(tf.tensor(a[0]))
            rxs.append(torch.tensor(a[0]))
        else:
            xs.append(tf.tensor(a, requires_grad=True))
            rxs.append(torch.tensor(a, requires_grad=True))
    y = m(*xs, **(extra or {}))
    ry = rm(*rxs, **(extra or {}))
    if out_index is not None:
        y, ry = y[out_index], ry[out_index]
    close(y, ry, tol, "forward")
    g = arr(tuple(ry.shape), 99)
    (y * tf.tensor(g)).sum().backward()
    (ry * torch.tensor(g)).sum().backward()
    for x, rx in zip(xs, rxs):
        if rx.requires_grad and x.grad is None:  # no path (MHA weights vs value)
            assert rx.grad is None or np.allclose(rx.grad.numpy(), 0)
        elif rx.requires_grad:
            close(x.grad, rx.grad, tol, "input grad")
    rparams = dict(rm.named_parameters())
    for name, p in m.named_parameters():
        if rparams[name].grad is None:
            assert p.grad is None or np.allclose(p.grad.numpy(), 0), name
        elif p.grad is None:  # no path from the output: torch may still give zeros
            assert np.allclose(rparams[name].grad.numpy(), 0), name
        else:
            close(p.grad, rparams[name].grad, tol, name)
    if train:  # buffers (running statistics) updated alike
        rb = dict(rm.named_buffers())
        for name, b in m.named_buffers():
            close(b, rb[name], tol, name)
    return m, rm


LAYERS = [
    ("linear", lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), [arr((4, 5))]),
    ("linear3d_nobias", lambda: nn.Linear(5, 3, bias=False),
     lambda: torch.nn.Linear(5, 3, bias=False), [arr((2, 4, 5))]),
    ("conv1d", lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1),
     lambda: torch.nn.Conv1d(3, 4, 3, stride=2, padding=1), [arr((2, 3, 9))]),
    ("conv1d_same", lambda: nn.Conv1d(3, 4, 3, padding="same", dilation=2),
     lambda: torch.nn.Conv1d(3, 4, 3, padding="same", dilation=2), [arr((2, 3, 9))]),
    ("conv2d", lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=1, groups=1),
     lambda: torch.nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=1), [arr((2, 3, 7, 6))]),
    ("conv2d_groups", lambda: nn.Conv2d(4, 6, 3, groups=2, dilation=2, bias=False),
     lambda: torch.nn.Conv2d(4, 6, 3, groups=2, dilation=2, bias=False), [arr((1, 4, 8, 8))]),
    ("convtranspose2d", lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                   output_padding=1),
     lambda: torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
     [arr((2, 3, 4, 5))]),
    ("maxpool1d", lambda: nn.MaxPool1d(3, 2, 1), lambda: torch.nn.MaxPool1d(3, 2, 1),
     [arr((2, 3, 10))]),
    ("maxpool2d", lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), [arr((2, 3, 6, 6))]),
    ("maxpool2d_ceil", lambda: nn.MaxPool2d(3, 2, ceil_mode=True),
     lambda: torch.nn.MaxPool2d(3, 2, ceil_mode=True), [arr((1, 2, 8, 7))]),
    ("avgpool1d", lambda: nn.AvgPool1d(3, 2, 1), lambda: torch.nn.AvgPool1d(3, 2, 1),
     [arr((2, 3, 10))]),
    ("avgpool2d", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False), [arr((2, 3, 7, 7))]),
    ("adaptiveavgpool2d", lambda: nn.AdaptiveAvgPool2d((3, 2)),
     lambda: torch.nn.AdaptiveAvgPool2d((3, 2)), [arr((2, 3, 7, 5))]),
    ("layernorm", lambda: nn.LayerNorm(6), lambda: torch.nn.LayerNorm(6), [arr((3, 4, 6))]),
    ("layernorm2", lambda: nn.LayerNorm((4, 6), eps=1e-3),
     lambda: torch.nn.LayerNorm((4, 6), eps=1e-3), [arr((3, 4, 6))]),
    ("groupnorm", lambda: nn.GroupNorm(2, 4), lambda: torch.nn.GroupNorm(2, 4),
     [arr((3, 4, 5))]),
    ("batchnorm1d_train", lambda: nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4),
     [arr((8, 4))], True),
    ("batchnorm2d_train", lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3),
     [arr((4, 3, 5, 5))], True),
    ("batchnorm2d_eval", lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3),
     [arr((4, 3, 5, 5))], False),
    ("embedding", lambda: nn.Embedding(10, 4, padding_idx=1),
     lambda: torch.nn.Embedding(10, 4, padding_idx=1),
     [(np.array([[1, 2, 3], [4, 1, 9]], dtype=np.int64), "int")]),
    ("flatten", lambda: nn.Flatten(), lambda: torch.nn.Flatten(), [arr((2, 3, 4))]),
    ("sequential", lambda: nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.3),
                                         nn.Linear(8, 2), nn.Tanh()),
     lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Dropout(0.3),
                                 torch.nn.Linear(8, 2), torch.nn.Tanh()), [arr((3, 4))]),
    ("mha", lambda: nn.MultiheadAttention(8, 2), lambda: torch.nn.MultiheadAttention(8, 2),
     [arr((5, 2, 8)), arr((4, 2, 8), 1), arr((4, 2, 8), 2)], False, 0),
    ("mha_weights", lambda: nn.MultiheadAttention(8, 2, batch_first=True),
     lambda: torch.nn.MultiheadAttention(8, 2, batch_first=True),
     [arr((2, 5, 8)), arr((2, 4, 8), 1), arr((2, 4, 8), 2)], False, 1),
    ("encoder_layer", lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
     lambda: torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [arr((5, 2, 8))]),
    ("encoder_layer_nf", lambda: nn.TransformerEncoderLayer(8, 2, 16, 0.0, "gelu",
                                                            batch_first=True, norm_first=True),
     lambda: torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, "gelu", batch_first=True,
                                              norm_first=True), [arr((2, 5, 8))]),
    ("decoder_layer", lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0),
     lambda: torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0),
     [arr((5, 2, 8)), arr((3, 2, 8), 1)]),
    ("lstm", lambda: nn.LSTM(3, 4, 2), lambda: torch.nn.LSTM(3, 4, 2), [arr((6, 2, 3))],
     False, 0),
    ("lstm_bidir_bf", lambda: nn.LSTM(3, 4, batch_first=True, bidirectional=True),
     lambda: torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True), [arr((2, 6, 3))],
     False, 0),
    ("gru", lambda: nn.GRU(3, 5, 2), lambda: torch.nn.GRU(3, 5, 2), [arr((6, 2, 3))], False, 0),
    ("gru_h", lambda: nn.GRU(3, 5), lambda: torch.nn.GRU(3, 5), [arr((6, 2, 3))], False, 1),
]


@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_matches_torch(case):
    name, mk, rmk, inputs, *rest = case
    train = rest[0] if rest else False
    out_index = rest[1] if len(rest) > 1 else None
    check_layer(mk, rmk, inputs, train=train, out_index=out_index)


def test_rmsnorm_matches_formula():
    # torch 1.13 has no RMSNorm: compare with the formula computed by torch
    m = nn.RMSNorm(6, eps=1e-6)
    with tf.no_grad():
        m.weight.copy_(tf.tensor(arr((6,), 3)))
    x = arr((3, 6))
    rx = torch.tensor(x, requires_grad=True)
    rw = torch.tensor(m.weight.detach().numpy(), requires_grad=True)
    ry = rx / torch.sqrt((rx * rx).mean(-1, keepdim=True) + 1e-6) * rw
    xt = tf.tensor(x, requires_grad=True)
    y = m(xt)
    close(y, ry)
    y.sum().backward()
    ry.sum().backward()
    close(xt.grad, rx.grad)
    close(m.weight.grad, rw.grad)


ACTS = [
    ("ReLU", (), ()), ("GELU", (), ()), ("GELU", ("tanh",), ("tanh",)), ("Tanh", (), ()),
    ("Sigmoid", (), ()), ("LeakyReLU", (0.2,), (0.2,)), ("ELU", (0.7,), (0.7,)),
    ("SELU", (), ()), ("CELU", (1.3,), (1.3,)), ("SiLU", (), ()), ("Mish", (), ()),
    ("Hardswish", (), ()), ("Hardsigmoid", (), ()), ("Softplus", (2.0, 5.0), (2.0, 5.0)),
    ("Softsign", (), ()), ("GLU", (), ()), ("Softmax", (1,), (1,)),
    ("LogSoftmax", (-1,), (-1,)), ("LogSigmoid", (), ()), ("Hardtanh", (), ()),
]


@pytest.mark.parametrize("name,args,rargs", ACTS, ids=[a[0] + str(a[1]) for a in ACTS])
def test_activation_modules(name, args, rargs):
    check_layer(lambda: getattr(nn, name)(*args), lambda: getattr(torch.nn, name)(*rargs),
                [arr((3, 6), 5, 3.0)])


def test_losses_match_torch():
    x, t = arr((4, 5)), arr((4, 5), 1)
    cls = np.array([0, 3, 4, 1], dtype=np.int64)
    prob = np.abs(arr((4, 5), 2)) % 1.0
    cases = [
        (lambda a: F.cross_entropy(a, tf.tensor(cls), label_smoothing=0.1),
         lambda a: TF.cross_entropy(a, torch.tensor(cls), label_smoothing=0.1)),
        (lambda a: F.nll_loss(F.log_softmax(a, 1), tf.tensor(cls), reduction="sum"),
         lambda a: TF.nll_loss(TF.log_softmax(a, 1), torch.tensor(cls), reduction="sum")),
        (lambda a: F.mse_loss(a, tf.tensor(t)), lambda a: TF.mse_loss(a, torch.tensor(t))),
        (lambda a: F.l1_loss(a, tf.tensor(t), reduction="none"),
         lambda a: TF.l1_loss(a, torch.tensor(t), reduction="none")),
        (lambda a: F.smooth_l1_loss(a, tf.tensor(t), beta=0.5),
         lambda a: TF.smooth_l1_loss(a, torch.tensor(t), beta=0.5)),
        (lambda a: F.huber_loss(a, tf.tensor(t), delta=0.7),
         lambda a: TF.huber_loss(a, torch.tensor(t), delta=0.7)),
        (lambda a: F.binary_cross_entropy(a.sigmoid(), tf.tensor(prob)),
         lambda a: TF.binary_cross_entropy(a.sigmoid(), torch.tensor(prob))),
        (lambda a: F.binary_cross_entropy_with_logits(a, tf.tensor(prob)),
         lambda a: TF.binary_cross_entropy_with_logits(a, torch.tensor(prob))),
        (lambda a: F.kl_div(F.log_softmax(a, 1), tf.tensor(prob), reduction="batchmean"),
         lambda a: TF.kl_div(TF.log_softmax(a, 1), torch.tensor(prob), reduction="batchmean")),
        (lambda a: nn.CrossEntropyLoss()(a, tf.tensor(cls)),
         lambda a: torch.nn.CrossEntropyLoss()(a, torch.tensor(cls))),
    ]
    for k, (f, rf) in enumerate(cases):
        a = tf.tensor(x, requires_grad=True)
        ra = torch.tensor(x, requires_grad=True)
        y, ry = f(a), rf(ra)
        close(y, ry, 1e-4, f"loss {k}")
        y.sum().backward()
        ry.sum().backward()
        close(a.grad, ra.grad, 1e-4, f"loss grad {k}")


def test_functional_misc():
    q, k, v = arr((2, 2, 5, 4)), arr((2, 2, 6, 4), 1), arr((2, 2, 6, 3), 2)
    close(F.scaled_dot_product_attention(tf.tensor(q), tf.tensor(k), tf.tensor(v)),
          torch.softmax(torch.tensor(q) @ torch.tensor(k).transpose(-1, -2) / 2.0, -1)
          @ torch.tensor(v))
    idx = np.array([0, 2, 1, 2])
    assert F.one_hot(tf.tensor(idx), 4).tolist() == TF.one_hot(torch.tensor(idx), 4).tolist()
    x = arr((2, 3, 8))
    close(F.conv1d(tf.tensor(x), tf.tensor(arr((4, 3, 3), 1)), padding=1),
          TF.conv1d(torch.tensor(x), torch.tensor(arr((4, 3, 3), 1)), padding=1))
    y, i = F.max_pool2d(tf.tensor(arr((1, 2, 4, 4))), 2, return_indices=True)
    ry, ri = TF.max_pool2d(torch.tensor(arr((1, 2, 4, 4))), 2, return_indices=True)
    close(y, ry)
    assert i.tolist() == ri.tolist()
    d = F.dropout(tf.ones(1000), 0.25, training=True)
    kept = (d.numpy() != 0).mean()
    assert 0.65 < kept < 0.85 and set(np.unique(d.numpy())) <= {0.0, np.float32(1 / 0.75)}
    assert F.dropout(tf.ones(3), 0.5, training=False).tolist() == [1.0, 1.0, 1.0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.block = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(3, 2), nn.Linear(3, 1)])
        self.scale = nn.Parameter(tf.ones(1))
        self.register_buffer("count", tf.zeros(1))
        self.register_buffer("tmp", tf.zeros(1), persistent=False)
        self.plain = 3

    def forward(self, x):
        h = self.block(self.fc1(x)) * self.scale
        return self.heads[0](h), self.heads[1](h)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3)
        self.block = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
        self.heads = torch.nn.ModuleList([torch.nn.Linear(3, 2), torch.nn.Linear(3, 1)])
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.register_buffer("count", torch.zeros(1))
        self.register_buffer("tmp", torch.zeros(1), persistent=False)


def test_module_registration_like_torch():
    m, r = Net(), TorchNet()
    assert [k for k, _ in m.named_parameters()] == [k for k, _ in r.named_parameters()]
    assert list(m.state_dict()) == list(r.state_dict())
    assert [k for k, _ in m.named_buffers()] == [k for k, _ in r.named_buffers()]
    assert [k for k, _ in m.named_modules()] == [k for k, _ in r.named_modules()]
    assert [k for k, _ in m.named_children()] == [k for k, _ in r.named_children()]
    assert len(list(m.parameters())) == 9 and m.plain == 3
    assert isinstance(m.scale, nn.Parameter) and m.scale.requires_grad
    m.eval()
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    # strict loading reports missing/unexpected keys and shape mismatches, changes nothing
    sd = r.state_dict()
    m.load_state_dict(sd)
    close(m.fc1.weight, r.fc1.weight)
    bad = dict(sd)
    del bad["fc1.bias"]
    bad["extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match=r'(?s)Missing key\(s\).*"fc1.bias".*Unexpected.*"extra"'):
        m.load_state_dict(bad)
    res = m.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["extra"]
    bad2 = dict(sd)
    bad2["fc1.weight"] = torch.zeros(2, 2)
    with pytest.raises(RuntimeError, match="size mismatch for fc1.weight"):
        m.load_state_dict(bad2)
    # assigning a non-parameter to a parameter slot is refused, None is allowed
    with pytest.raises(TypeError):
        m.scale = tf.ones(1)
    del m.heads[1]._parameters["bias"]
    assert "heads.1.bias" not in m.state_dict()


def test_module_grad_dtype_hooks():
    m = Net()
    x = tf.tensor(arr((5, 4)))
    a, b = m(x)
    (a.sum() + b.sum()).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    seen = []
    h = m.fc1.register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape)))
    hp = m.fc1.register_forward_pre_hook(lambda mod, inp: (inp[0] * 0,))
    a, _ = m(x)
    assert seen == [(5, 3)]
    close(m.fc1(tf.zeros(5, 4)), m.fc1.bias.expand(5, 3))
    h.remove()
    hp.remove()
    m(x)
    assert seen == [(5, 3), (5, 3)]
    w = m.fc1.weight
    m.double()
    assert m.fc1.weight is w and w.dtype == tf.float64 and w.requires_grad
    assert m.count.dtype == tf.float64
    a, b = m(x.double())
    assert a.dtype == tf.float64
    m.to(tf.float32)
    assert m.fc1.weight.dtype == tf.float32
    with pytest.raises(tf.DeviceError):
        m.to("cuda")


def test_parameter_repr_and_copy():
    import copy
    p = nn.Parameter(tf.ones(2))
    assert repr(p).startswith("Parameter containing:")
    q = copy.deepcopy(nn.Sequential(nn.Linear(2, 2)))
    assert isinstance(q[0].weight, nn.Parameter)
    assert not tf._C._same(q[0].weight, nn.Sequential(nn.Linear(2, 2))[0].weight)


def test_init_functions():
    w = tf.empty(200, 100)
    nn.init.kaiming_uniform_(w, a=5 ** 0.5)
    bound = 1 / 100 ** 0.5
    assert abs(w.numpy()).max() <= bound and abs(w.numpy()).max() > 0.9 * bound
    nn.init.xavier_normal_(w)
    assert abs(w.numpy().std() - (2 / 300) ** 0.5) < 0.01
    assert nn.init.calculate_gain("relu") == pytest.approx(2 ** 0.5)
    with pytest.raises(ValueError):
        nn.init.calculate_gain("nope")
