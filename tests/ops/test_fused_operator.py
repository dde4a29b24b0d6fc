"""The fused training operator (:mod:`hyenadna.ops.fused_operator`, a hand-written backward pass)
against plain autograd through the package's reference
(:func:`hyenadna.ops.reference.hyena_operator_ref`), alone and as the model's training path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.errors import HyenaDNAError
from hyenadna.ops import fused_operator as mixer_module
from hyenadna.ops.fused_operator import fused_operator
from hyenadna.ops.reference import hyena_operator_ref as plain_mixer


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@pytest.mark.parametrize(
    "order,batch,length,skip,bias,recompute,taps",
    [
        (2, 1, 37, True, True, False, 3),
        (2, 2, 64, True, True, True, 3),
        (3, 2, 50, True, False, False, 3),
        (4, 1, 129, True, True, True, 3),
        (2, 3, 1, True, True, False, 3),
        (2, 2, 2, False, True, False, 3),
        (2, 2, 40, True, True, False, 1),
        (2, 1, 3, True, True, True, 5),
    ],
)
def test_fused_operator_matches_autograd_in_float64(order, batch, length, skip, bias, recompute, taps):
    torch.manual_seed(order * 100 + length)
    d = 6
    width = (order + 1) * d

    def param(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    x, k = param(batch, length, d), param(order - 1, d, length)
    in_proj = (param(width, d), param(width) if bias else None)
    conv = (param(width, 1, taps), param(width) if bias else None)
    out_proj = (param(d, d), param(d) if bias else None)
    d_skip = param(order - 1, d) if skip else None
    inputs = [t for t in (x, *in_proj, *conv, k, d_skip, *out_proj) if t is not None]

    fused = fused_operator(x, in_proj, conv, k, d_skip, out_proj, order, recompute=recompute)
    plain = plain_mixer(x, in_proj, conv, k, d_skip, out_proj, order)
    assert rel(fused, plain) < 1e-12
    grad = torch.randn_like(plain)
    for a, b in zip(torch.autograd.grad(fused, inputs, grad), torch.autograd.grad(plain, inputs, grad), strict=True):
        assert rel(a, b) < 1e-12


def test_fused_operator_float32_and_frozen_inputs():
    """float32 within 1e-5 of a float64 reference; inputs without grad get none and cost nothing."""
    torch.manual_seed(7)
    d, length = 16, 300
    x = torch.randn(2, length, d, requires_grad=True)
    in_proj = (torch.randn(3 * d, d) / 4, torch.randn(3 * d))
    conv = (torch.randn(3 * d, 1, 3), torch.randn(3 * d))
    k = torch.randn(1, d, length) / length**0.5
    out_proj = (torch.randn(d, d) / 4, torch.randn(d))
    d_skip = torch.randn(1, d)
    fused = fused_operator(x, in_proj, conv, k, d_skip, out_proj, 2)
    (grad_x,) = torch.autograd.grad(fused.square().sum(), [x])

    def wide(t):
        return None if t is None else t.double()

    x64 = x.detach().double().requires_grad_()
    plain = plain_mixer(x64, tuple(map(wide, in_proj)), tuple(map(wide, conv)), wide(k), wide(d_skip),
                        tuple(map(wide, out_proj)), 2)  # fmt: skip
    (grad_x64,) = torch.autograd.grad(plain.square().sum(), [x64])
    assert rel(fused.double(), plain) < 1e-5
    assert rel(grad_x.double(), grad_x64) < 1e-5


def test_fused_operator_rejects_bad_shapes_and_dtypes():
    x = torch.randn(1, 10, 4)
    good = {
        "in_proj": (torch.randn(12, 4), None),
        "short_conv": (torch.randn(12, 1, 3), None),
        "k": torch.randn(1, 4, 10),
        "d_skip": torch.randn(1, 4),
        "out_proj": (torch.randn(4, 4), None),
        "order": 2,
    }
    assert fused_operator(x, **good).shape == (1, 10, 4)
    with pytest.raises(HyenaDNAError, match=r"k \(1, 4, 10\)|shapes do not fit"):
        fused_operator(x, **{**good, "k": torch.randn(1, 4, 9)})
    with pytest.raises(HyenaDNAError, match="float32/float64"):
        fused_operator(x.half(), **good)
    with pytest.raises(HyenaDNAError, match="dtype"):
        fused_operator(x.double(), **good)


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_model_training_path_equals_plain_autograd(order, checkpointing, monkeypatch):
    """A whole model's loss gradients through the fused functions equal those of the plain
    path (``fftconv_impl="ref"``: autograd through the reference), every parameter, float64."""
    calls = []
    original = mixer_module._HyenaMixer.apply
    monkeypatch.setattr(mixer_module._HyenaMixer, "apply", lambda *a: calls.append(1) or original(*a))
    config = dict(d_model=16, n_layer=2, l_max=200, filter_order=8, order=order, embed_dropout=0.0,
                  checkpoint_mixer=checkpointing, checkpoint_mlp=checkpointing)  # fmt: skip
    torch.manual_seed(5)
    fused = HyenaDNA(HyenaConfig(**config)).double().train()
    plain = HyenaDNA(HyenaConfig(**config, fftconv_impl="ref")).double().train()
    plain.load_state_dict(fused.state_dict())
    ids = torch.randint(0, 12, (2, 150))
    for model in (fused, plain):
        F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten()).backward()
    assert len(calls) == 2  # one fused call per layer, none for the plain model
    for (name, a), b in zip(fused.named_parameters(), plain.parameters(), strict=True):
        assert rel(a.grad, b.grad) < 1e-10, name
