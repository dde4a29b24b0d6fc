"""Bfloat16 matrix products inside the fused CPU training functions
(:mod:`hyenadna.ops.precision`): when they apply, and that the results stay within bfloat16's
precision of a float64 reference, no worse than plain autograd under the same autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.ops import fused_operator as mixer_module
from hyenadna.ops import mlp as mlp_module
from hyenadna.ops.dispatch import choose_path
from hyenadna.ops.fused_operator import fused_operator
from hyenadna.ops.mlp import gelu_mlp
from hyenadna.ops.precision import fused_applies, matmul_dtype
from hyenadna.ops.reference import hyena_operator_ref
from hyenadna.ops.rows import rows_product, summed_products

BF16 = torch.bfloat16


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-300)).item()


def test_bfloat16_products_apply_under_the_cpus_autocast_only():
    x, w = torch.randn(2, 8, 4), torch.randn(12, 4)
    assert matmul_dtype(x, w) is None and fused_applies(x, w)
    assert not fused_applies(x.half(), w.half()) and not fused_applies(x, w.double())
    with torch.autocast("cpu", dtype=torch.float16):  # no loss scaling on a CPU: plain autograd
        assert matmul_dtype(x, w) is None and not fused_applies(x, w)
    with torch.autocast("cpu", dtype=BF16):
        assert matmul_dtype(x, w) == BF16 and fused_applies(x, w)
        assert matmul_dtype(x.double(), w.double()) is None and not fused_applies(x.double(), w.double())
        route = choose_path(x, w)
        assert route.operator == "fused" and route.mlp == "fused"
        with torch.no_grad():
            assert choose_path(x, w).operator == "channels_last"


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("shared", ["left", "right"])
def test_rows_product_in_bfloat16_rounds_once(bias, shared):
    """Each entry is the float32 sum of exact products of the bfloat16-rounded operands, rounded
    once to bfloat16 (a bfloat16 value) and the bias added in float32: within 2^-8 of the
    float64 product of those operands. Transposed operands, 2-D and 3-D, are read as stored."""
    torch.manual_seed(0)
    if shared == "left":
        a, b = torch.randn(24, 40).t(), torch.randn(3, 30, 24).transpose(1, 2)  # (40, 24) @ (3, 24, 30)
    else:
        a, b = torch.randn(3, 24, 40).transpose(1, 2), torch.randn(30, 24).t()  # (3, 40, 24) @ (24, 30)
    add = torch.randn(30) if bias else None
    out = torch.empty(3, 40, 30)
    rows_product(a, b, out, add, BF16)
    product = a.to(BF16).double() @ b.to(BF16).double()
    rounded = out - (0 if add is None else add)
    assert out.dtype == torch.float32
    if add is None:
        assert torch.equal(rounded.to(BF16).float(), rounded)  # rounded to bfloat16, once
        assert not torch.equal(rounded.double(), product)  # not float32's sum itself
    assert (rounded.double() - product).abs().le(product.abs() * 2**-8 + 1e-5).all()


def test_summed_products_in_bfloat16_match_float64():
    torch.manual_seed(1)
    a, b = torch.randn(4, 300, 16).transpose(1, 2), torch.randn(4, 300, 8)
    exact = (a.double() @ b.double()).sum(0)
    low = summed_products(a, b, BF16)
    assert low.dtype == torch.float32 and low.shape == (16, 8)
    assert 1e-5 < rel(low, exact) < 1e-2  # bfloat16's precision, not float32's
    assert rel(summed_products(a, b), exact) < 1e-6


def _operator_inputs(d=16, length=300, order=2, seed=7):
    torch.manual_seed(seed)
    width = (order + 1) * d

    def param(*shape, scale=1.0):
        return (torch.randn(*shape) * scale).requires_grad_()

    return (param(2, length, d), (param(width, d, scale=0.25), param(width)), (param(width, 1, 3), param(width)),
            param(order - 1, d, length, scale=length**-0.5), param(order - 1, d),
            (param(d, d, scale=0.25), param(d)), order)  # fmt: skip


def _flat(x, in_proj, conv, k, skip, out_proj, order):
    return [x, *in_proj, *conv, k, skip, *out_proj]


def _wide(t):
    return tuple(map(_wide, t)) if isinstance(t, tuple) else t if isinstance(t, int) else t.detach().double()


@pytest.mark.parametrize("recompute", [False, True])
def test_fused_operator_in_bfloat16_is_as_close_as_autocast_autograd(recompute):
    """Output and every gradient within bfloat16's precision of float64, and no further from it
    than plain autograd through the reference under the same autocast."""
    args = _operator_inputs()
    leaves = _flat(*args)
    wide = [t.requires_grad_() for t in _flat(*_wide(args))]
    x64, in64, conv64, k64, skip64, out64 = (
        wide[0],
        tuple(wide[1:3]),
        tuple(wide[3:5]),
        wide[5],
        wide[6],
        tuple(wide[7:9]),
    )
    exact = hyena_operator_ref(x64, in64, conv64, k64, skip64, out64, args[-1])
    grad = torch.randn_like(exact)
    exact_grads = torch.autograd.grad(exact, wide, grad)
    with torch.autocast("cpu", dtype=BF16):
        fused = fused_operator(*args, recompute=recompute, matmul_dtype=BF16)
        plain = hyena_operator_ref(*args)
    assert fused.dtype == torch.float32
    fused_grads = torch.autograd.grad(fused, leaves, grad.float())
    plain_grads = torch.autograd.grad(plain.float(), leaves, grad.float())
    assert 1e-5 < rel(fused, exact) < 2e-2 and rel(fused, exact) < 1.5 * rel(plain, exact)
    for a, b, e in zip(fused_grads, plain_grads, exact_grads, strict=True):
        assert rel(a, e) < 3e-2 and rel(a, e) < 1.5 * rel(b, e) + 1e-3


@pytest.mark.parametrize("recompute", [False, True])
def test_gelu_mlp_in_bfloat16_is_as_close_as_autocast_autograd(recompute):
    torch.manual_seed(11)
    x = torch.randn(2, 64, 16, requires_grad=True)
    fc1 = (torch.randn(64, 16).div(4).requires_grad_(), torch.randn(64).requires_grad_())
    fc2 = (torch.randn(16, 64).div(8).requires_grad_(), torch.randn(16).requires_grad_())
    leaves = [x, *fc1, *fc2]
    wide = [t.detach().double().requires_grad_() for t in leaves]
    exact = F.linear(F.gelu(F.linear(wide[0], *wide[1:3]), approximate="tanh"), *wide[3:])
    grad = torch.randn_like(exact)
    exact_grads = torch.autograd.grad(exact, wide, grad)
    with torch.autocast("cpu", dtype=BF16):
        fused = gelu_mlp(x, fc1, fc2, recompute, BF16)
        plain = F.linear(F.gelu(F.linear(x, *fc1), approximate="tanh"), *fc2)
    assert fused.dtype == torch.float32 and plain.dtype == BF16
    fused_grads = torch.autograd.grad(fused, leaves, grad.float())
    plain_grads = torch.autograd.grad(plain.float(), leaves, grad.float())
    assert 1e-5 < rel(fused, exact) < 2e-2 and rel(fused, exact) < 1.5 * rel(plain, exact)
    for a, b, e in zip(fused_grads, plain_grads, exact_grads, strict=True):
        assert a.dtype == torch.float32
        assert rel(a, e) < 3e-2 and rel(a, e) < 1.5 * rel(b, e) + 1e-3


def test_model_trains_through_the_fused_functions_under_cpu_autocast(monkeypatch):
    """A training step under ``torch.autocast("cpu", bfloat16)`` (Lightning's ``bf16-mixed``)
    runs each layer's fused operator and MLP once, their products in bfloat16, and every
    parameter's gradient is as close to the float64 model's as 1.5 times plain autograd's
    error under the same autocast (or 1%)."""
    calls = []
    for module, name in ((mixer_module, "_HyenaMixer"), (mlp_module, "_GeluMlp")):
        cls = getattr(module, name)
        original = cls.apply
        monkeypatch.setattr(cls, "apply", lambda *a, _o=original, _n=name: calls.append((_n, a[-1])) or _o(*a))
    config = dict(d_model=32, n_layer=2, l_max=256, filter_order=16, embed_dropout=0.0)
    torch.manual_seed(3)
    fused = HyenaDNA(HyenaConfig(**config)).train()
    plain = HyenaDNA(HyenaConfig(**config, fftconv_impl="ref")).train()
    exact = HyenaDNA(HyenaConfig(**config)).double().train()
    plain.load_state_dict(fused.state_dict())
    exact.load_state_dict(fused.state_dict())
    ids = torch.randint(0, 12, (2, 200))

    def step(model, autocast):
        with torch.autocast("cpu", dtype=BF16, enabled=autocast):
            logits = model(ids[:, :-1])
        F.cross_entropy(logits.double().flatten(0, 1), ids[:, 1:].flatten()).backward()

    step(fused, True)
    assert sorted(calls) == [("_GeluMlp", BF16)] * 2 + [("_HyenaMixer", BF16)] * 2  # products in bfloat16
    step(plain, True)
    step(exact, False)
    for (name, a), b, e in zip(fused.named_parameters(), plain.parameters(), exact.parameters(), strict=True):
        assert rel(a.grad, e.grad) < max(1.5 * rel(b.grad, e.grad), 1e-2), name
