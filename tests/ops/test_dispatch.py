"""The CUDA side of the dispatcher on a faked device: which path each (length, grad mode) takes,
that the chunked path runs only when asked, and that a Triton plan whose kernels need more
shared memory than the device has is never launched (torch.fft runs, with one warning).

The device is faked by its answers: :func:`hyenadna.ops.triton.fit.shared_memory_limit` and
:func:`~hyenadna.ops.triton.fit.kernel_shared_bytes` (on a real GPU, the opt-in limit and the
compiled kernel's ``metadata.shared``); the specialisations themselves are the launchers' own,
recorded on ``meta`` tensors."""

from __future__ import annotations

import warnings

import pytest
import torch

from hyenadna.ops import dispatch
from hyenadna.ops.triton import fit
from hyenadna.ops.triton.compile_check import every_length_class, gated_conv_specialisations, record_launches
from hyenadna.ops.triton.long_conv import max_length

CUDA = torch.device("cuda", 0)
TORCH_PATHS = {"channels_last", "autograd", "fused", "reference"}


@pytest.fixture
def fake_gpu(monkeypatch):
    """A GPU with ``limit`` bytes of shared memory whose kernels need ``sizes(spec)`` bytes."""
    device = {"limit": 232_448, "sizes": lambda spec: 1_000, "asked": []}

    def shared_bytes(spec, where):
        device["asked"].append(spec)
        return device["sizes"](spec)

    monkeypatch.setattr(fit, "shared_memory_limit", lambda where: device["limit"] if where.type == "cuda" else None)
    monkeypatch.setattr(fit, "kernel_shared_bytes", shared_bytes)
    fit.clear_cache()
    yield device
    fit.clear_cache()


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("impl", ["auto", "torch", "triton"])
def test_no_cuda_route_is_chunked_unless_asked(fake_gpu, impl, grad):
    """Every length from 1 to 8M bases, both grad modes, every implementation: the chunked
    path (built for a CPU's caches, 2.5-7x slower than the reference on an H200) is never
    taken; with ``cuda_inference_chunk`` set it is, for grad-free eval inputs past it."""
    for length in every_length_class(1 << 23):
        path = dispatch.cuda_operator_path(CUDA, torch.bfloat16, (1, 8, length), impl, grad)
        assert path != "chunked"
        if impl == "torch" or length > max_length():
            assert path in TORCH_PATHS, (impl, length, path)
        if impl == "triton" and length <= max_length():
            assert path == "triton"
    asked = dispatch.cuda_operator_path(CUDA, torch.bfloat16, (1, 8, 5000), impl, grad, cuda_inference_chunk=4096)
    assert (asked == "chunked") == (not grad and impl != "triton")  # the kernels asked by name come first


def test_cuda_routes_follow_the_measured_table(fake_gpu):
    """auto takes the table's fastest path: the kernels to 64k bases, torch.fft for long
    grad-free inputs, the kernels again for 1M-base training (the torch path runs out of
    memory there)."""

    def path(grad, length):
        return dispatch.cuda_operator_path(CUDA, torch.bfloat16, (1, 256, length), "auto", grad)

    assert [path(False, n) for n in (1024, 65_536, 65_537, 1 << 20)] == ["triton", "triton", "channels_last"] * 1 + [
        "channels_last"
    ]
    assert [path(True, n) for n in (1024, 65_536, 262_144, 1 << 20)] == ["triton", "triton", "autograd", "triton"]
    # the hand-written float32 backward where it applies (float32 without autocast), else autograd
    for impl, length in (("torch", 1024), ("auto", 200_000)):
        for fused_ok, expected in ((False, "autograd"), (True, "fused")):
            assert dispatch.cuda_operator_path(CUDA, torch.float32, (1, 8, length), impl, True, fused_ok=fused_ok) == (
                expected
            )
    assert dispatch.Path("triton", print) == "triton" and dispatch.Path("fused", print) != "triton"


def test_a_plan_that_does_not_fit_is_never_launched(fake_gpu):
    """A device with 50,000 bytes of shared memory, kernels of a (64, 32) tile needing 65,536:
    the one-program plan at 700 bases does not fit, so the dispatcher sends that length to
    torch.fft with one warning, and no kernel is launched; 300 bases (a (32, 16) tile) fit and
    take the kernels. The answer is kept: the device is asked once per plan."""
    fake_gpu["limit"] = 50_000
    fake_gpu["sizes"] = lambda spec: (
        65_536 if dict(spec.constexprs).get("N1", 0) * dict(spec.constexprs).get("N2", 0) >= 2048 else 8_192
    )

    with record_launches() as launched, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dispatch.cuda_operator_path(CUDA, torch.bfloat16, (2, 4, 700), "auto", True) == "autograd"
        assert dispatch.cuda_operator_path(CUDA, torch.bfloat16, (2, 4, 700), "auto", True) == "autograd"
        assert dispatch.cuda_operator_path(CUDA, torch.bfloat16, (2, 4, 700), "triton", False) == "channels_last"
        assert dispatch.cuda_operator_path(CUDA, torch.bfloat16, (2, 4, 300), "auto", True) == "triton"
    assert not launched  # asking compiles (on a GPU), it never launches
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 2 and all("65,536 bytes of shared memory" in m and "50,000" in m for m in messages)
    assert "length 700" in messages[0]
    kernels = {spec.kernel for spec in fake_gpu["asked"]}
    assert {"_gated_conv_fwd", "_gated_conv_bwd", "_short_conv_fwd", "_short_conv_bwd"} <= kernels


def test_the_fit_check_asks_about_every_kernel_of_the_plan():
    """Forward and backward of the one-program, persistent four-step and separate four-step
    plans: the specialisations recorded are those the launchers run."""

    def kernels(length, grad):
        return {s.kernel for s in gated_conv_specialisations([length], [torch.bfloat16], grad=grad)}

    assert kernels(700, False) == {"_short_conv_fwd", "_gated_conv_fwd"}
    assert kernels(3000, True) == {"_short_conv_fwd", "_short_conv_bwd", "_fused_fwd", "_fused_bwd"}
    assert kernels(200_000, True) == {"_short_conv_fwd", "_short_conv_bwd", "_outer_fwd", "_inner_conv",
                                      "_inner_bwd", "_outer_inv"}  # fmt: skip
    modes = {dict(s.constexprs)["MODE"] for s in gated_conv_specialisations([200_000], [torch.float16])
             if s.kernel == "_outer_inv"}  # fmt: skip
    assert modes == {0, 1, 2, 3}


def test_kernel_dtype_under_autocast_is_the_autocast_dtype():
    x = torch.randn(1, 4, 8)
    assert dispatch.kernel_dtype(x) == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert dispatch.kernel_dtype(x) == torch.bfloat16


def test_recording_never_swallows_another_threads_launches():
    """While one thread records the kernels a plan would launch (the fit check, inside the
    dispatcher), another thread's launches run for real: its result is the reference's."""
    import threading

    from hyenadna.ops import fftconv_ref
    from hyenadna.ops.triton.gated_conv import gated_fftconv_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"  # the interpreter on a CPU (conftest)
    torch.manual_seed(0)
    x0, x1, v = torch.randn(3, 1, 2, 40, device=device).unbind(0)
    h, d = torch.randn(2, 40, device=device) / 6, torch.randn(2, device=device)
    result = {}
    with record_launches() as found:
        worker = threading.Thread(target=lambda: result.update(y=gated_fftconv_triton(x0, x1, v, h, d)))
        worker.start()
        worker.join()
    assert not found
    want = x0.double() * fftconv_ref(x1.double() * v.double(), h.double(), d.double())
    assert float((result["y"].double() - want).norm() / want.norm()) < 1e-4
