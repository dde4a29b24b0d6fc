from __future__ import annotations

import pytest
import torch

from hyenadna import HyenaDNAError
from hyenadna.ops import conv_fft_size, fftconv, fftconv_ref, next_fast_fft_size
from hyenadna.ops.fftconv import smallest_7_smooth


def direct_causal_conv(u: torch.Tensor, k: torch.Tensor, d: torch.Tensor | None) -> torch.Tensor:
    """float64 O(L^2) reference: y[t] = sum_{s<=t} k[t-s] u[s] + D u[t]."""
    u, k = u.double(), k.double()
    length = u.shape[-1]
    y = torch.zeros_like(u)
    for t in range(length):
        y[..., t] = (u[..., : t + 1] * k[:, : t + 1].flip(-1)).sum(-1)
    if d is not None:
        y = y + d.double()[:, None] * u
    return y


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@pytest.mark.parametrize("length", [1, 2, 7, 64, 101, 257, 509])
@pytest.mark.parametrize("impl", ["torch", "ref"])
def test_fftconv_matches_direct_convolution(length, impl):
    u = torch.randn(3, 5, length)
    k = torch.randn(5, length)
    d = torch.randn(5)
    expected = direct_causal_conv(u, k, d)
    assert rel_err(fftconv(u, k, d, impl=impl), expected) < 1e-5
    assert rel_err(fftconv(u.double(), k.double(), d.double(), impl=impl), expected) < 1e-12
    assert rel_err(fftconv(u, k, None, impl=impl), direct_causal_conv(u, k, None)) < 1e-5


def test_fftconv_extra_batch_dims_and_dtype():
    u = torch.randn(2, 3, 4, 33)
    k = torch.randn(4, 33)
    y = fftconv(u, k, torch.randn(4))
    assert y.shape == u.shape and y.dtype == torch.float32
    y16 = fftconv(u.bfloat16(), k)
    assert y16.dtype == torch.bfloat16
    assert rel_err(y16, direct_causal_conv(u.bfloat16().float(), k, None)) < 1e-2


def test_fftconv_under_autocast_runs_fft_in_float32():
    u, k = torch.randn(2, 4, 100), torch.randn(4, 100)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fftconv(u, k, torch.randn(4))
    assert y.dtype == torch.float32  # input dtype kept; no half-precision FFT


def test_fftconv_gradients_match_reference_and_gradcheck():
    u = torch.randn(2, 3, 45, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 45, dtype=torch.float64, requires_grad=True)
    d = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: fftconv(a, b, c), (u, k, d))
    grad_out = torch.randn(2, 3, 45, dtype=torch.float64)
    fast = torch.autograd.grad(fftconv(u, k, d), (u, k, d), grad_out)
    slow = torch.autograd.grad(direct_causal_conv(u, k, d), (u, k, d), grad_out)
    for a, b in zip(fast, slow):
        assert rel_err(a, b) < 1e-10


def test_fft_sizes_are_smallest_7_smooth_or_a_cheaper_power_of_two():
    def smooth(n):
        for p in (2, 3, 5, 7):
            while n % p == 0:
                n //= p
        return n == 1

    for n in range(1, 3000):
        m = smallest_7_smooth(n)
        assert m >= n and smooth(m)
        assert not any(smooth(j) for j in range(n, m))
        assert next_fast_fft_size(n) == m  # small sizes: no allowance for powers of two
    assert smallest_7_smooth(2 * 1_000_002 - 1) == 2_000_376  # 2L = 2^2 * 500001: no fast factors
    assert next_fast_fft_size(2 * 160_000 - 1) == 320_000  # 2^9 * 5^4: as fast per point as 2^19
    assert next_fast_fft_size(2 * 60_000 - 1) == 120_000
    assert next_fast_fft_size(2 * 480_000 - 1) == 2**20  # 9% larger than 960,000 but faster
    assert next_fast_fft_size(2 * 1_000_000 - 1) == 2**21  # 5% larger than 2,000,000, 20% faster
    assert next_fast_fft_size(2 * 750_000 - 1) == 1_500_000  # 2^21 would be 40% larger


def test_conv_fft_size_fits_a_linear_convolution():
    """Every fast path's FFT size for L points: at least 2L-1 (no wrap-around), the fast size."""
    for length in (1, 2, 3, 1000, 160_000, 1_000_000):
        n = conv_fft_size(length)
        assert n >= 2 * length - 1 and n == next_fast_fft_size(2 * length - 1)


def test_fftconv_rejects_bad_shapes():
    with pytest.raises(HyenaDNAError, match="same C and L"):
        fftconv(torch.randn(2, 3, 10), torch.randn(3, 9))
    with pytest.raises(HyenaDNAError, match="D of shape"):
        fftconv(torch.randn(2, 3, 10), torch.randn(3, 10), torch.randn(4))
    with pytest.raises(HyenaDNAError, match="unknown fftconv implementation"):
        fftconv(torch.randn(2, 3, 10), torch.randn(3, 10), impl="cuda-magic")


def test_precomputed_spectrum_gives_the_same_convolution():
    from hyenadna.ops.fftconv import filter_spectrum

    u, k, d = torch.randn(2, 8, 301, dtype=torch.float64), torch.randn(8, 301, dtype=torch.float64), torch.randn(8)
    expected = fftconv_ref(u, k, d.double())
    got = fftconv(u, k, d.double(), k_f=filter_spectrum(k))
    assert (got - expected).abs().max() <= 1e-12 * expected.abs().max()
    with pytest.raises(HyenaDNAError, match="k_f has"):
        fftconv(u, k, d.double(), k_f=filter_spectrum(k[:, :100]))


def test_operator_caches_filters_only_when_they_cannot_change():
    from hyenadna import HyenaConfig
    from hyenadna.modules.operator import HyenaOperator

    torch.manual_seed(0)
    op = HyenaOperator(HyenaConfig(d_model=16, n_layer=1, l_max=256, filter_order=8))
    bank = op.filter
    x = torch.randn(2, 200, 16)
    with torch.no_grad():
        first = op(x)
        assert len(bank._spectra) == 1
        assert torch.equal(op(x), first)
    bank._spectra.clear()
    trained = op(x)  # gradients on: no cache
    assert not bank._spectra and torch.allclose(trained, first, atol=1e-6)
    optimizer = torch.optim.SGD(op.parameters(), lr=0.1)
    trained.square().mean().backward()
    with torch.no_grad():
        before = op(x)
        optimizer.step()  # changes the filter in place: the cached spectrum must not be reused
        after = op(x)
    bank._spectra.clear()
    with torch.no_grad():
        assert torch.equal(op(x), after) and not torch.equal(after, before)


def test_filter_cache_keeps_the_most_recent_lengths_within_the_layers_share():
    from hyenadna import HyenaConfig
    from hyenadna.modules.operator import HyenaOperator

    torch.manual_seed(0)
    config = HyenaConfig(d_model=16, n_layer=2, l_max=4096, filter_order=8, filter_cache_mb=1)
    op = HyenaOperator(config)
    bank = op.filter
    assert bank.cache_bytes == 2**19  # half of 1 MiB for each of two layers
    # one length: filters 16 x L float32, spectra 16 x (n/2 + 1) complex64 (n = 2000 at 1000)
    entry_bytes = 16 * 1000 * 4 + 16 * 1001 * 8
    with torch.no_grad():
        for length in (1000, 1001, 1000, 1002):  # 1000 is used again, so 1001 is the oldest
            op(torch.randn(1, length, 16))
        assert [key[0] for key in bank._spectra] == [1000, 1002]
        oldest = next(iter(bank._spectra.values()))
        assert sum(t.numel() * t.element_size() for t in oldest[1:]) == entry_bytes
        first = op(torch.randn(1, 4000, 16))  # about 0.8 MB: larger than the share, not kept
        assert [key[0] for key in bank._spectra] == [1000, 1002]
        spectrum_only = bank.filters_for(1500, spectrum_only=True)  # what the chunked path asks for
        assert spectrum_only[0] is None and spectrum_only[1].shape == (1, 16, 1501)
        assert bank._spectra[next(reversed(bank._spectra))][1] is None
        op(torch.randn(1, 1500, 16))  # the plain path needs the filters too: computed again and kept
    assert bank._spectra[next(reversed(bank._spectra))][1] is not None
    assert first.shape == (1, 4000, 16)
    off = HyenaOperator(HyenaConfig(d_model=16, n_layer=2, l_max=4096, filter_order=8, filter_cache_mb=0))
    with torch.no_grad():
        off(torch.randn(1, 100, 16))
    assert not off.filter._spectra


@pytest.mark.parametrize("length", [1, 2, 97, 500])
def test_channels_last_fftconv_and_gradients_match_the_reference(length):
    from hyenadna.ops.fftconv import filter_spectrum

    u = torch.randn(2, length, 6, dtype=torch.float64, requires_grad=True)
    k = torch.randn(6, length, dtype=torch.float64, requires_grad=True)
    d = torch.randn(6, dtype=torch.float64, requires_grad=True)
    got = fftconv(u, k, d, channels_last=True)
    expected = fftconv_ref(u.transpose(1, 2), k, d).transpose(1, 2)
    assert (got - expected).abs().max() <= 1e-12 * expected.abs().max()
    weights = torch.randn_like(got)
    grads = torch.autograd.grad((got * weights).sum(), (u, k, d))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (u, k, d))
    for g, e in zip(grads, expected_grads):
        assert (g - e).abs().max() <= 1e-10 * e.abs().max()
    spectrum = filter_spectrum(k.detach())
    assert torch.allclose(fftconv(u, k, d, k_f=spectrum, channels_last=True), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("length", "taps"), [(1, 3), (2, 3), (50, 3), (50, 1), (9, 5)])
def test_short_conv_matches_conv1d_with_gradients(length, taps):
    from hyenadna.ops.reference import short_conv_ref
    from hyenadna.ops.short_conv import short_conv

    x = torch.randn(3, length, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 1, taps, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    got, expected = short_conv(x, w, b), short_conv_ref(x, w, b)
    assert (got - expected).abs().max() <= 1e-12 * expected.abs().max()
    weights = torch.randn_like(got)
    for g, e in zip(
        torch.autograd.grad((got * weights).sum(), (x, w, b)),
        torch.autograd.grad((expected * weights).sum(), (x, w, b)),
    ):
        assert (g - e).abs().max() <= 1e-12 * max(e.abs().max(), 1)
    with torch.no_grad():  # the in-place path used for inference
        assert (short_conv(x, w, b) - expected).abs().max() <= 1e-12 * expected.abs().max()
    with pytest.raises(HyenaDNAError, match="short_conv expects"):
        short_conv(x, w[:4], b)


def test_operator_training_and_inference_layouts_agree():
    from hyenadna import HyenaConfig
    from hyenadna.modules.operator import HyenaOperator

    torch.manual_seed(0)
    op = HyenaOperator(HyenaConfig(d_model=16, n_layer=1, l_max=512, filter_order=8, order=3)).double()
    x = torch.randn(2, 300, 16, dtype=torch.float64)
    trained = op(x)  # gradients on: channels-first path
    with torch.no_grad():
        inferred = op(x)  # channels-last path with cached spectra
    assert (trained - inferred).abs().max() <= 1e-10 * trained.abs().max()
