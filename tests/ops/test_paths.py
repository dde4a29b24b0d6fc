"""Every path of the Hyena layer against the one plain reference.

:func:`hyenadna.ops.dispatch.choose_path` picks a path; this module runs each path (forward, and
backward where it trains) on fresh random inputs at lengths on both sides of every threshold,
checks that the dispatcher took the path the case names, and holds the result to the same model
run through :func:`hyenadna.ops.reference.hyena_operator_ref` (``fftconv_impl="ref"``) in
float64. The Triton paths run in Triton's interpreter on a CPU (conftest sets TRITON_INTERPRET)
and compiled on a GPU.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F

import hyenadna.model.hyena_dna as model_module
import hyenadna.modules.operator as operator_module
from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.ops import choose_path, hyena_operator_ref
from hyenadna.ops.fused_operator import fused_operator
from hyenadna.ops.triton import triton_available
from hyenadna.ops.triton.gated_conv import MAX_LENGTH

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CHUNK = 64  # the inference_chunk of the test models
LENGTHS = (1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 203)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm().clamp_min(1e-300))


def model_of(order: int, length: int, **overrides) -> HyenaDNA:
    """A float64 model with a float64 stream (``residual_in_fp32`` would round it to float32)."""
    torch.manual_seed(order * 1000 + length)
    config = HyenaConfig(
        d_model=8, n_layer=2, l_max=max(length, 8), filter_order=16, order=order,
        embed_dropout=0.0, resid_dropout=0.0, residual_in_fp32=False, **overrides,
    )  # fmt: skip
    model = HyenaDNA(config).double()
    with torch.no_grad():  # non-trivial norms, biases and skip terms, so that every term shows
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    return model


def reference_of(model: HyenaDNA) -> HyenaDNA:
    """The same weights, every layer through the plain reference, in float64."""
    ref = copy.deepcopy(model).double()
    ref.config.fftconv_impl = "ref"
    for module in ref.modules():
        if hasattr(module, "fftconv_impl"):
            module.fftconv_impl = "ref"
        if hasattr(module, "impl"):
            module.impl = "ref"
    return ref


def recorded_routes(monkeypatch) -> list[str]:
    """Operator paths chosen while the model runs, as the model and the operator ask for them."""
    routes: list[str] = []

    def spy(*args, **kwargs):
        route = choose_path(*args, **kwargs)
        routes.append(route.operator.name)
        return route

    monkeypatch.setattr(model_module, "choose_path", spy)
    monkeypatch.setattr(operator_module, "choose_path", spy)
    return routes


# path, dtype, gradients, tolerance against the float64 reference (forward, gradients)
CASES = [
    ("reference", torch.float64, True, (1e-12, 1e-12)),
    ("fused", torch.float64, True, (1e-10, 1e-9)),
    # half precision: every activation rounded, the filter MLP's Sin(10 x) in float16 too (its gradients 7%)
    ("autograd", torch.float16, True, (5e-3, 1e-1)),
    ("channels_last", torch.float64, False, (1e-10, None)),
    ("chunked", torch.float64, False, (1e-10, None)),
    ("triton", torch.float32, True, (1e-4, 1e-3)),
    ("triton", torch.float32, False, (1e-4, None)),
]


def expected_path(path: str, length: int) -> str:
    """The chunked path is taken only past the chunking threshold (``inference_chunk``); shorter
    inputs run whole, and the ``channels_last`` cases turn chunking off."""
    return "channels_last" if path == "chunked" and length <= CHUNK else path


def run_case(monkeypatch, path: str, dtype: torch.dtype, grad: bool, tolerance, order: int, length: int, batch=2):
    if path == "triton" and not triton_available():
        pytest.fail("triton is a test dependency on Linux x86-64: pip install -e '.[test]'")
    impl = {"triton": "triton", "reference": "ref"}.get(path, "auto")
    model = model_of(order, length, fftconv_impl=impl, inference_chunk=0 if path == "channels_last" else CHUNK)
    model = model.to(DEVICE, dtype)
    ref = reference_of(model)  # the weights as the path holds them, in float64
    ids = torch.randint(0, 12, (batch, length)).to(DEVICE)
    weights = torch.randn(batch, length, model.config.padded_vocab_size, dtype=torch.float64).to(DEVICE)

    expected = ref(ids)
    (expected * weights).sum().backward()

    model.eval()
    routes = recorded_routes(monkeypatch)
    with nullcontext() if grad else torch.no_grad():
        got = model(ids.to(DEVICE))
    want = expected_path(path, length)
    assert routes and set(routes) == {want}, f"dispatcher chose {sorted(set(routes))}, the case is {want}"
    assert got.dtype == dtype and not got.isnan().any()
    assert rel_err(got, expected) <= tolerance[0]
    if grad:
        (got.double() * weights.to(DEVICE)).sum().backward()
        for (name, p), p_ref in zip(model.named_parameters(), ref.parameters()):
            if p_ref.grad is not None and p_ref.grad.norm() > 0:
                assert rel_err(p.grad, p_ref.grad) <= tolerance[1], name


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize(("path", "dtype", "grad", "tolerance"), CASES, ids=lambda c: str(c))
def test_every_path_matches_the_reference(monkeypatch, path, dtype, grad, tolerance, order, length):
    run_case(monkeypatch, path, dtype, grad, tolerance, order, length)


@pytest.mark.parametrize("grad", [True, False])
def test_triton_four_step_kernels_match_the_reference_past_one_program(monkeypatch, grad):
    """Past :data:`MAX_LENGTH` the Triton path takes the four-step kernels."""
    run_case(monkeypatch, "triton", torch.float32, grad, (1e-4, 1e-3), 2, MAX_LENGTH + 52, batch=1)


def test_long_inference_with_triton_takes_the_kernels_not_the_chunked_torch_path(monkeypatch):
    """The routing bug: a grad-free eval input longer than ``inference_chunk`` went to the
    chunked torch path also when ``fftconv_impl="triton"``, so long inference never reached the
    kernels."""
    import hyenadna.ops.operator_paths as paths

    model = model_of(2, 300, fftconv_impl="triton", inference_chunk=CHUNK, cuda_inference_chunk=CHUNK)
    model = model.float().to(DEVICE).eval()
    kernel_calls = []
    real = paths.operator_channels_first
    monkeypatch.setattr(paths, "operator_channels_first",
                        lambda *a, **k: kernel_calls.append(k["triton"]) or real(*a, **k))  # fmt: skip
    with torch.no_grad():
        got = model(torch.randint(0, 12, (1, 300), device=DEVICE))
    assert kernel_calls == [True, True]  # both layers, with the Triton kernels
    assert got.shape == (1, 300, model.config.padded_vocab_size)


def test_the_reference_runs_in_float64_and_is_hyenadnas_arithmetic():
    """The reference's long convolution is a causal sum: checked here against an explicit
    Toeplitz product, the definition, on a small case."""
    torch.manual_seed(0)
    batch, length, d, order = 2, 23, 4, 3
    x = torch.randn(batch, length, d, dtype=torch.float64)
    width = (order + 1) * d
    in_proj = (torch.randn(width, d, dtype=torch.float64), torch.randn(width, dtype=torch.float64))
    conv = (torch.randn(width, 1, 3, dtype=torch.float64), torch.randn(width, dtype=torch.float64))
    out_proj = (torch.randn(d, d, dtype=torch.float64), torch.randn(d, dtype=torch.float64))
    k = torch.randn(order - 1, d, length, dtype=torch.float64)
    skip = torch.randn(order - 1, d, dtype=torch.float64)
    got = hyena_operator_ref(x, in_proj, conv, k, skip, out_proj, order)

    z = F.linear(x, *in_proj)  # (B, L, W)
    padded = F.pad(z, (0, 0, 2, 0))
    u = sum(conv[0][:, 0, j] * padded[:, j : j + length] for j in range(3)) + conv[1]
    *gates, v = u.split(d, dim=-1)
    lag = torch.arange(length)[:, None] - torch.arange(length)[None, :]
    for step in range(order - 1):
        w = v * gates[order - 1 - step]
        toeplitz = k[step][:, lag.clamp(min=0)] * (lag >= 0)  # (C, t, s)
        v = torch.einsum("bsc,cts->btc", w, toeplitz) + skip[step] * w
    expected = F.linear(v * gates[0], *out_proj)
    assert rel_err(got, expected) <= 1e-12


def test_fused_training_function_is_the_reference_with_checkpointing():
    """:func:`fused_operator` with ``recompute`` (activation checkpointing) against the reference."""
    torch.manual_seed(3)
    d, order, length = 6, 2, 50
    width = (order + 1) * d

    def param(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    x, k, skip = param(2, length, d), param(order - 1, d, length), param(order - 1, d)
    in_proj, conv = (param(width, d), param(width)), (param(width, 1, 3), param(width))
    out_proj = (param(d, d), param(d))
    leaves = [x, *in_proj, *conv, k, skip, *out_proj]
    fused = fused_operator(x, in_proj, conv, k, skip, out_proj, order, recompute=True)
    ref = hyena_operator_ref(x, in_proj, conv, k, skip, out_proj, order)
    assert rel_err(fused, ref) <= 1e-12
    upstream = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(fused, leaves, upstream), torch.autograd.grad(ref, leaves, upstream)):
        assert rel_err(a, b) <= 1e-10
