"""The fused Triton gated long convolution against the float64 reference: forward and
gradients, odd lengths, batches, strided views, every dtype. On the CPU the kernels run in
Triton's interpreter (TRITON_INTERPRET=1, set by conftest); on a GPU the same tests run
the compiled kernels, with outputs poisoned before each run."""

from __future__ import annotations

import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.ops import fftconv_ref
from hyenadna.ops.fftconv import gated_fftconv, triton_supported
from hyenadna.ops.triton.gated_conv import MAX_LENGTH, gated_fftconv_triton, transform_shape

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 1e-2, torch.float16: 1e-2}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def reference(x0, x1, v, h, d, dy):
    """float64 forward and gradients of x0 * (h * (x1 v) + D x1 v) through fftconv_ref."""
    leaves = [t.detach().double().requires_grad_() for t in (x0, x1, v, h, d)]
    y = leaves[0] * fftconv_ref(leaves[1] * leaves[2], leaves[3], leaves[4])
    return y.detach(), torch.autograd.grad(y, leaves, dy.double())


@pytest.mark.parametrize("length", [1, 2, 37, 128, 129, 700, MAX_LENGTH])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gated_conv_forward_and_gradients_match_the_reference(length, dtype):
    torch.manual_seed(length)
    batch, channels = (1, 2) if length == MAX_LENGTH else (3, 4)
    # x0, x1, v as strided views of one in-projection output, as the operator passes them
    projected = torch.randn(batch, 3 * channels, length, device=DEVICE).to(dtype).requires_grad_()
    x0, x1, v = projected.split(channels, dim=1)
    h = (torch.randn(channels, length, device=DEVICE) / length**0.5).requires_grad_()
    d = torch.randn(channels, device=DEVICE, requires_grad=True)
    y = gated_fftconv_triton(x0, x1, v, h, d)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, [projected, h, d], dy)
    expected, (g0, g1, gv, gh, gd) = reference(x0, x1, v, h, d, dy)
    tol = TOLERANCE[dtype]
    assert y.dtype == dtype and not y.isnan().any()
    assert rel_err(y, expected) <= tol
    assert rel_err(grads[0], torch.cat([g0, g1, gv], dim=1)) <= tol
    assert rel_err(grads[1], gh) <= tol and rel_err(grads[2], gd) <= tol
    assert all(not g.isnan().any() for g in grads)


def test_transform_sizes_cover_twice_the_length():
    for length in (1, 100, 128, 129, 1000, MAX_LENGTH):
        n1, n2 = transform_shape(length)
        assert n1 * n2 >= 2 * length - 1 and min(n1, n2) >= 16 and n1 * n2 <= 4096


def test_dispatch_falls_back_to_torch_beyond_the_kernel_length():
    x0, x1, v = torch.randn(3, 1, 2, MAX_LENGTH + 3, device=DEVICE)
    h, d = torch.randn(2, MAX_LENGTH + 3, device=DEVICE), torch.randn(2, device=DEVICE)
    assert not triton_supported(x1, "triton") and triton_supported(x1[..., :MAX_LENGTH], "triton")
    expected, _ = reference(x0, x1, v, h, d, torch.ones(1, 2, MAX_LENGTH + 3, device=DEVICE))
    assert rel_err(gated_fftconv(x0, x1, v, h, d, impl="triton"), expected) <= 1e-5


def test_triton_on_cpu_without_the_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(HyenaDNAError, match="TRITON_INTERPRET"):
        triton_supported(torch.randn(1, 2, 8), "triton")
    assert not triton_supported(torch.randn(1, 2, 8), "auto")  # auto never picks it on the CPU


@pytest.mark.parametrize("order", [2, 3])
def test_model_with_triton_kernels_equals_the_torch_model(order):
    torch.manual_seed(0)
    config = HyenaConfig(d_model=16, n_layer=2, l_max=300, filter_order=16, order=order, embed_dropout=0.0)
    fast = HyenaDNA(HyenaConfig(**{**config.to_dict(), "fftconv_impl": "triton"})).to(DEVICE)
    plain = HyenaDNA(config).to(DEVICE)
    plain.load_state_dict(fast.state_dict())
    ids = torch.randint(0, 12, (2, 257), device=DEVICE)
    losses = []
    for model in (fast, plain):
        logits = model(ids)
        loss = logits.float().logsumexp(-1).mean()
        loss.backward()
        losses.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    (a, grads_a), (b, grads_b) = losses
    assert rel_err(a, b) <= 1e-5
    assert all(rel_err(x, y) <= 1e-4 for x, y in zip(grads_a, grads_b) if y.norm() > 0)
    with torch.no_grad():  # inference takes the kernels too
        assert rel_err(fast.eval()(ids), plain.eval()(ids)) <= 1e-5
