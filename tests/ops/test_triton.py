"""The fused Triton gated long convolution against the float64 reference: forward and
gradients, odd lengths, batches, strided views, every dtype. On the CPU the kernels run in
Triton's interpreter (TRITON_INTERPRET=1, set by conftest); on a GPU the same tests run
the compiled kernels, with outputs poisoned before each run."""

from __future__ import annotations

import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.ops import fftconv_ref
from hyenadna.ops.dispatch import triton_applies
from hyenadna.ops.triton.gated_conv import MAX_LENGTH, gated_fftconv_triton, transform_shape

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 1e-2, torch.float16: 1e-2}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).norm() / b.detach().double().norm())


def reference(x0, x1, v, h, d, dy):
    """float64 forward and gradients of x0 * (h * (x1 v) + D x1 v) through fftconv_ref."""
    leaves = [t.detach().double().requires_grad_() for t in (x0, x1, v, h, d)]
    y = leaves[0] * fftconv_ref(leaves[1] * leaves[2], leaves[3], leaves[4])
    return y.detach(), torch.autograd.grad(y, leaves, dy.double())


@pytest.mark.parametrize("length", [1, 2, 37, 128, 129, 700, MAX_LENGTH])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gated_conv_forward_and_gradients_match_the_reference(length, dtype):
    batch, channels = (1, 2) if length == MAX_LENGTH else (3, 4)
    got, want = gated_case(batch, channels, length, dtype, seed=length)
    assert got[0].dtype == dtype
    assert_close(got, want, TOLERANCE[dtype])


def test_transform_sizes_cover_twice_the_length():
    for length in (1, 100, 128, 129, 1000, MAX_LENGTH):
        n1, n2 = transform_shape(length)
        assert n1 * n2 >= 2 * length - 1 and min(n1, n2) >= 16 and n1 * n2 <= 4096


def gated_case(batch: int, channels: int, length: int, dtype: torch.dtype, seed: int):
    """Inputs as the operator passes them (x0, x1, v strided views of one in-projection
    output), the float64 reference's output and gradients, and the kernels' own."""
    torch.manual_seed(seed)
    projected = torch.randn(batch, 3 * channels, length, device=DEVICE).to(dtype).requires_grad_()
    x0, x1, v = projected.split(channels, dim=1)
    h = (torch.randn(channels, length, device=DEVICE) / length**0.5).requires_grad_()
    d = torch.randn(channels, device=DEVICE, requires_grad=True)
    y = gated_fftconv_triton(x0, x1, v, h, d)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, [projected, h, d], dy)
    expected, (g0, g1, gv, gh, gd) = reference(x0, x1, v, h, d, dy)
    return (y, *grads), (expected, torch.cat([g0, g1, gv], dim=1), gh, gd)


def assert_close(got, want, tolerance: float) -> None:
    for a, b in zip(got, want, strict=True):
        assert not a.isnan().any() and rel_err(a, b) <= tolerance, rel_err(a, b)


@pytest.mark.parametrize("length", [MAX_LENGTH + 1, 3001, 4096])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_four_step_kernels_beyond_one_program_match_the_reference(length, dtype, monkeypatch):
    """Past MAX_LENGTH the four-step kernels take over (outer column DFT, inner row
    convolution, outer inverse): lengths just past it, odd, a power of two, two batches. Both
    directions are the persistent kernels here, two programs for six rows and for three
    channels: slots are reused."""
    from hyenadna.ops.triton import long_conv

    fused = []
    for name in ("_fused_fwd", "_fused_bwd"):
        monkeypatch.setattr(long_conv, name, KernelSpy(getattr(long_conv, name), fused))
    got, want = gated_case(2, 3, length, dtype, seed=length)
    plan, device = long_conv.plan_for(length), torch.device(DEVICE)
    programs = [(min(6, long_conv.persistent_programs(device, plan)),),
                (min(3, long_conv.persistent_programs(device, plan, buffers=3)),)]  # fmt: skip
    assert got[0].dtype == dtype and fused == programs  # two programs each on the CPU: slots reused
    assert_close(got, want, TOLERANCE[dtype])


class KernelSpy:
    """A kernel wrapped to record its launches (grid indexing, then the call)."""

    def __init__(self, kernel, calls: list):
        self.kernel, self.calls = kernel, calls

    def __getitem__(self, grid):
        self.calls.append(grid)
        return self.kernel[grid]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_four_step_as_separate_kernels(dtype, monkeypatch):
    """Past FUSED_MAX_SIZE each direction runs its steps as separate kernels with the
    intermediates in a workspace; forced here at a small size."""
    from hyenadna.ops.triton import long_conv

    monkeypatch.setattr(long_conv, "FUSED_MAX_SIZE", 0)
    fused = []
    for name in ("_fused_fwd", "_fused_bwd"):
        monkeypatch.setattr(long_conv, name, KernelSpy(getattr(long_conv, name), fused))
    got, want = gated_case(2, 3, 3001, dtype, seed=4)
    assert not fused
    assert_close(got, want, TOLERANCE[dtype])


@pytest.mark.parametrize("fused_max", [0, 1 << 16])
def test_four_step_kernels_with_a_two_round_column_transform(fused_max, monkeypatch):
    """Transforms of 2^19 points and more need two rounds down the columns too (P = P1 P2);
    with the inner row held to 256 points that happens at 2^16, within the interpreter's
    reach (as separate kernels and as the persistent one)."""
    from hyenadna.ops.triton import long_conv

    monkeypatch.setattr(long_conv, "MAX_INNER", 256)
    monkeypatch.setattr(long_conv, "FUSED_MAX_SIZE", fused_max)
    plan = long_conv.plan_for(16_500)
    assert (plan.n, plan.p1, plan.p2, plan.q) == (65_536, 16, 16, 256)
    got, want = gated_case(1, 2, 16_500, torch.float32, seed=1)
    assert_close(got, want, TOLERANCE[torch.float32])


# (length, MAX_INNER): 2^19 points as planned, and with 1M bases' columns; on a card, 1M itself
FULL_LENGTHS = [(131_073, 1024), (131_073, 256)] + [(1_000_000, 1024)] * torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.parametrize(("length", "max_inner"), FULL_LENGTHS)
def test_four_step_kernels_at_full_length(monkeypatch, length, max_inner):
    """The plans the model meets at long context, one row, forward and gradients. At 2^19
    points (131,073 bases): as planned, 16 x 32 down the columns and rows of 32 x 32; and with
    the rows held to 16 x 16, the columns of 1M bases' plan, 32 x 64. 1M itself (2^21 points,
    32 x 64 and 32 x 32) runs on a card, where it takes milliseconds; in the interpreter it
    took two minutes, so there its plan is checked in the test below and its columns here."""
    from hyenadna.ops.triton import long_conv

    monkeypatch.setattr(long_conv, "MAX_INNER", max_inner)
    plan = long_conv.plan_for(length)
    expected = {(131_073, 1024): (16, 32, 1024), (131_073, 256): (32, 64, 256), (1_000_000, 1024): (32, 64, 1024)}
    assert (plan.p1, plan.p2, plan.q) == expected[length, max_inner]
    got, want = gated_case(1, 1, length, torch.float32, seed=3)
    assert_close(got, want, TOLERANCE[torch.float32])


def test_four_step_kernels_in_channel_groups(monkeypatch):
    """A small workspace splits the channels into groups (one at a time), each with its own
    slice of the filter spectrum; the result is the same."""
    from hyenadna.ops.triton import long_conv

    monkeypatch.setattr(long_conv, "WORKSPACE_BYTES", 1)
    monkeypatch.setattr(long_conv, "FUSED_MAX_SIZE", 0)  # both directions in groups
    assert long_conv.channel_group(2, 3, long_conv.plan_for(3001), buffers=2) == 1
    got, want = gated_case(2, 3, 3001, torch.float32, seed=2)
    assert_close(got, want, TOLERANCE[torch.float32])


def test_four_step_plans_cover_every_length_to_the_limit():
    from hyenadna.ops.triton.long_conv import max_length, plan_for

    for length in (1, 2048, 2049, 40_000, 131_072, 131_073, 1_000_000, max_length()):
        plan = plan_for(length)
        assert plan.p * plan.q == plan.n >= 2 * length and plan.n < max(8192, 4 * length)
        assert (plan.p1 == 1 and 16 <= plan.p <= 64) or 16 <= plan.p1 <= plan.p2 <= 64
        assert 16 <= plan.n2 <= plan.n1 <= 64 and plan.q % plan.block == 0
    assert (plan_for(1_000_000).p1, plan_for(1_000_000).p2, plan_for(1_000_000).q) == (32, 64, 1024)
    with pytest.raises(HyenaDNAError, match="beyond"):
        plan_for(max_length() + 1)


@pytest.mark.parametrize("length", [3001, 131_073])
def test_filter_spectrum_rows_gathered_from_a_real_fft_equal_the_full_fft(length):
    """The kernels' filter layout, gathered from an rfft with conjugates past n/2, against the
    definition: the full complex FFT, frequency k + P (k1 + N1 k2) at row k, tile (k1, k2)."""
    from hyenadna.ops.triton.long_conv import filter_rows, plan_for

    plan = plan_for(length)
    h = torch.randn(3, length, dtype=torch.float64, device=DEVICE)
    full = torch.fft.fft(h, n=plan.n)
    k, k1, k2 = torch.meshgrid(torch.arange(plan.rows), torch.arange(plan.n1), torch.arange(plan.n2), indexing="ij")
    want = full[:, (k + plan.p * (k1 + plan.n1 * k2)).flatten().to(full.device)].view(3, plan.rows, plan.q)
    got = filter_rows(h, plan)
    assert got.shape == (3, 2, plan.rows, plan.q) and got.dtype == torch.float32
    assert rel_err(got[:, 0], want.real) <= 1e-6 and rel_err(got[:, 1], want.imag) <= 1e-6


def test_dispatch_takes_the_kernels_to_their_limit_and_torch_beyond():
    from hyenadna.ops.triton.long_conv import max_length

    device = torch.device(DEVICE)
    assert triton_applies(device, torch.float32, max_length(), "triton")
    assert not triton_applies(device, torch.float32, max_length() + 1, "triton")


def test_float64_keeps_torch_under_auto_and_is_refused_by_triton():
    device = torch.device(DEVICE)
    assert not triton_applies(device, torch.float64, 8, "auto")
    with pytest.raises(HyenaDNAError, match="float64"):
        triton_applies(device, torch.float64, 8, "triton")


def test_triton_on_cpu_without_the_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(HyenaDNAError, match="TRITON_INTERPRET"):
        triton_applies(torch.device("cpu"), torch.float32, 8, "triton")
    assert not triton_applies(torch.device("cpu"), torch.float32, 8, "auto")  # auto never picks it on the CPU


@pytest.mark.parametrize(("order", "length", "width"), [(2, 257, 16), (3, 257, 16), (2, MAX_LENGTH + 100, 8)])
def test_model_with_triton_kernels_equals_the_torch_model(order, length, width):
    """The whole model with the Triton kernels against the torch model: logits and every
    parameter's gradient, within one program's length and past it (four-step kernels)."""
    torch.manual_seed(0)
    batch, layers = (2, 2) if length < MAX_LENGTH else (1, 1)
    config = HyenaConfig(d_model=width, n_layer=layers, l_max=length, filter_order=16, order=order, embed_dropout=0.0)
    fast = HyenaDNA(HyenaConfig(**{**config.to_dict(), "fftconv_impl": "triton"})).to(DEVICE)
    plain = HyenaDNA(config).to(DEVICE)
    plain.load_state_dict(fast.state_dict())
    ids = torch.randint(0, 12, (batch, length), device=DEVICE)
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


@pytest.mark.parametrize("length", [1, 2, 3, 37, 130])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_bias", [True, False])
def test_short_conv_split_matches_conv1d(length, dtype, with_bias):
    """The fused short convolution + transpose + split against Conv1d in float64: outputs and
    gradients, tiles cut by the length and channel edges, a part without gradient."""
    from hyenadna.ops.reference import short_conv_ref
    from hyenadna.ops.triton.short_conv import short_conv_split_triton

    torch.manual_seed(length)
    part, batch = 13, 2
    channels = 3 * part  # 39: one full channel tile and a partial one
    z = torch.randn(batch, length, channels, device=DEVICE).to(dtype).requires_grad_()
    taps = 4 if length == 37 else 3  # released models use 3; the kernel takes any
    weight = torch.randn(channels, 1, taps, device=DEVICE, requires_grad=True)
    bias = torch.randn(channels, device=DEVICE, requires_grad=True) if with_bias else None
    parts = short_conv_split_triton(z, weight, bias, part)
    assert len(parts) == 3 and all(p.shape == (batch, part, length) and p.dtype == dtype for p in parts)
    upstream = [torch.randn(batch, part, length, device=DEVICE), None, torch.randn(batch, part, length, device=DEVICE)]
    loss = sum((p.float() * g).sum() for p, g in zip(parts, upstream, strict=True) if g is not None)
    inputs = [t for t in (z, weight, bias) if t is not None]
    grads = torch.autograd.grad(loss, inputs)

    leaves = [t.detach().double().requires_grad_() for t in inputs]
    expected = short_conv_ref(leaves[0], leaves[1], leaves[2] if with_bias else None).transpose(1, 2).split(part, 1)
    loss64 = sum((p * g.double()).sum() for p, g in zip(expected, upstream, strict=True) if g is not None)
    expected_grads = torch.autograd.grad(loss64, leaves)
    for got, want in zip(parts, expected, strict=True):
        assert not got.isnan().any() and rel_err(got, want) < TOLERANCE[dtype]
    for got, want in zip(grads, expected_grads, strict=True):
        assert not got.isnan().any() and rel_err(got, want) < TOLERANCE[dtype]


@pytest.mark.slow
def test_gpu_benchmark_script_runs_tiny_in_the_interpreter(tmp_path):
    """benchmarks/triton_fftconv.py is meant for a GPU; --smoke runs its whole flow at tiny
    sizes (the interpreter on a CPU), so a lent GPU session does not find it broken."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "triton_fftconv.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", "--end-to-end", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(next(tmp_path.glob("triton_fftconv_*.json")).read_text())
    lengths = (64, 300, MAX_LENGTH + 52)  # the last takes the four-step kernels
    assert {(r["impl"], r["mode"], r["length"]) for r in result["rows"]} == {
        (impl, mode, length) for impl in ("torch", "triton") for mode in ("fwd", "fwd+bwd") for length in lengths
    }
    assert all(r["seconds"] > 0 for r in result["rows"])
    assert [r["mode"] for r in result["end_to_end"]] == ["forward", "train step"]
    assert "speed-up" in proc.stdout
