"""The bounded-memory inference path (Block.forward_chunked_) against the plain forward pass."""

from __future__ import annotations

import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.modules.filter import ImplicitFilter
from hyenadna.modules.filter_bank import FilterBank
from hyenadna.ops import fftconv_ref, short_conv_ref
from hyenadna.ops.fftconv import fftconv_, filter_spectrum
from hyenadna.ops.short_conv import short_conv


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def model_of(**overrides) -> HyenaDNA:
    torch.manual_seed(0)
    config = HyenaConfig(**{"d_model": 24, "n_layer": 3, "l_max": 700, "filter_order": 16, **overrides})
    model = HyenaDNA(config).eval()
    with torch.no_grad():  # non-trivial norms and skip terms, so that every term shows
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    return model


def plain_and_chunked(model: HyenaDNA, ids: torch.Tensor, layer: int, chunk: int):
    model.config.inference_chunk = 0
    with torch.no_grad():
        plain = model.hidden_states(ids, layer=layer)
    model.config.inference_chunk = chunk
    with torch.inference_mode():
        fast = model.hidden_states(ids, layer=layer)
    return plain, fast


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("chunk", [1, 2, 97, 256])
@pytest.mark.parametrize("layer", [-1, 0, 1, 2])
def test_chunked_equals_plain(order, chunk, layer):
    model = model_of(order=order)
    ids = torch.randint(0, 12, (2, 641))
    plain, fast = plain_and_chunked(model, ids, layer, chunk)
    assert fast.shape == plain.shape and fast.dtype == plain.dtype
    assert rel_err(fast, plain) <= 1e-5


def test_chunked_equals_plain_in_float64_with_spectrum_cache_off(monkeypatch):
    model = model_of(residual_in_fp32=False, filter_cache_mb=0).double()  # a float64 stream in both paths
    monkeypatch.setattr(FilterBank, "conv_group_bytes", 1)  # groups of a few channels
    ids = torch.randint(0, 12, (3, 600))
    plain, fast = plain_and_chunked(model, ids, -1, 128)
    assert rel_err(fast, plain) <= 1e-12


def test_chunked_path_keeps_the_spectra_only_and_gives_the_numbers_of_recomputing_them():
    ids = torch.randint(0, 12, (2, 600))
    results = {}
    for budget in (0, 1):
        model = model_of(filter_cache_mb=budget)
        model.config.inference_chunk = 128
        with torch.inference_mode():
            results[budget] = [model.hidden_states(ids) for _ in range(2)]
        held = [tensor for block in model.blocks for tensor in block.mixer.filter.held_tensors()]
        if budget:  # one tensor a layer: no filters, the spectra of 600 bases (FFT size 1200)
            assert len(held) == 3 and all(t.shape == (1, 24, 601) and t.is_complex() for t in held)
        else:
            assert not held
    assert torch.equal(results[1][0], results[1][1])
    assert rel_err(results[1][0], results[0][0]) <= 1e-6


def test_chunked_keeps_a_wider_stream_than_the_plain_path_for_float64_with_fp32_residual():
    """The plain path rounds a float64 model's stream to float32 between layers
    (``residual_in_fp32``); the chunked path keeps it in float64: equal to float32 rounding."""
    model = model_of().double()
    ids = torch.randint(0, 12, (2, 500))
    for layer in (1, -1):
        plain, fast = plain_and_chunked(model, ids, layer, 64)
        assert fast.dtype == plain.dtype == torch.float64
        assert 0 < rel_err(fast, plain) <= 1e-6


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_chunked_equals_plain_in_half_precision(dtype):
    model = model_of().to(dtype)
    ids = torch.randint(0, 12, (2, 300))
    plain, fast = plain_and_chunked(model, ids, -1, 64)
    assert fast.dtype == plain.dtype == dtype and not fast.isnan().any()
    assert rel_err(fast, plain) <= 2e-2


@pytest.mark.parametrize("modulate", [True, False])
def test_filter_channels_first_is_the_transposed_filter(modulate):
    torch.manual_seed(0)
    filt = ImplicitFilter(12, 300, modulate=modulate, modulation_shift=0.25).double().requires_grad_(False)
    features = filt.features(257)
    for index in (None, torch.tensor([1, 5, 7])):
        rows = filt.channels(features, 257, index, channels_first=True)
        assert rows.shape == (12 if index is None else 3, 257) and rows.is_contiguous()
        assert rel_err(rows, filt.channels(features, 257, index).t()) <= 1e-13


def test_chunked_path_is_taken_only_for_grad_free_eval_inputs_longer_than_the_chunk(monkeypatch):
    model = model_of(inference_chunk=100)
    calls = []
    real = HyenaDNA._chunked_hidden_states
    monkeypatch.setattr(HyenaDNA, "_chunked_hidden_states", lambda self, ids, i: calls.append(i) or real(self, ids, i))
    with torch.no_grad():
        model.hidden_states(torch.randint(0, 12, (1, 100)))  # not longer than the chunk
        model.train()
        model.hidden_states(torch.randint(0, 12, (1, 300)))  # dropout active
        model.eval()
    model.hidden_states(torch.randint(0, 12, (1, 300)))  # gradients on
    assert calls == []
    with torch.no_grad():
        logits = model(torch.randint(0, 12, (1, 300)))
    assert calls == [-1 + model.config.n_layer + 1] and logits.shape == (1, 300, 16)


def test_chunked_path_checks_its_input():
    model = model_of(inference_chunk=8)
    with torch.no_grad(), pytest.raises(HyenaDNAError, match="token ids"):
        model.hidden_states(torch.full((1, 20), 99))


def test_embed_of_a_long_sequence_is_the_same_chunked_or_not():
    model = model_of()
    seq = "".join("ACGTN"[i] for i in torch.randint(0, 5, (650,)).tolist())
    model.config.inference_chunk = 0
    plain = model.embed([seq, seq[:300]], pooling="mean")
    model.config.inference_chunk = 64
    fast = model.embed([seq, seq[:300]], pooling="mean")
    assert rel_err(torch.from_numpy(fast), torch.from_numpy(plain)) <= 1e-5


@pytest.mark.parametrize("length", [1, 2, 33, 255])
@pytest.mark.parametrize("with_skip", [True, False])
def test_in_place_fftconv_on_a_row_slice_matches_the_reference(length, with_skip):
    """The chunked path's call: a group of channel rows of a wider (B, C, L) buffer."""
    wide = torch.randn(2, 11, length, dtype=torch.float64)
    k = torch.randn(4, length, dtype=torch.float64)
    d = torch.randn(4, dtype=torch.float64) if with_skip else None
    expected = fftconv_ref(wide[:, 3:7], k, d)
    untouched = wide.clone()
    workspace: dict = {}
    out = fftconv_(wide[:, 3:7], filter_spectrum(k, length), d, workspace)
    assert out.data_ptr() == wide[:, 3:7].data_ptr()
    assert rel_err(wide[:, 3:7], expected) <= 1e-12
    assert torch.equal(wide[:, :3], untouched[:, :3]) and torch.equal(wide[:, 7:], untouched[:, 7:])
    again = untouched[:, 3:7].clone()  # the workspace's padded rows reused: the zeros past L kept
    fftconv_(again, filter_spectrum(k, length, workspace=workspace), d, workspace)
    assert rel_err(again, expected) <= 1e-12
    single = torch.randn(1, 4, length)  # float32 against a float64 reference
    expected32 = fftconv_ref(single.double(), k, d)
    fftconv_(single, filter_spectrum(k.float(), length), None if d is None else d.float())
    assert rel_err(single, expected32) <= 1e-5


def test_in_place_fftconv_refuses_wrong_shapes_and_autograd():
    u = torch.randn(1, 4, 16)
    with pytest.raises(HyenaDNAError, match="k_f"):
        fftconv_(u, filter_spectrum(torch.randn(4, 8), 8))
    with pytest.raises(HyenaDNAError, match="autograd"):
        fftconv_(u.requires_grad_(), filter_spectrum(torch.randn(4, 16), 16))


@pytest.mark.parametrize("taps", [1, 3, 4])
@pytest.mark.parametrize("cut", [1, 2, 5, 13])
def test_short_conv_continues_a_sequence_from_previous_inputs(taps, cut):
    x = torch.randn(2, 20, 6, dtype=torch.float64)
    weight = torch.randn(6, 1, taps, dtype=torch.float64)
    bias = torch.randn(6, dtype=torch.float64)
    whole = short_conv_ref(x, weight, bias)
    pieces, previous = [], torch.zeros(2, taps - 1, 6, dtype=torch.float64)
    for start in range(0, 20, cut):
        part = x[:, start : start + cut]
        pieces.append(short_conv(part, weight, bias, previous))
        previous = torch.cat([previous, part], dim=1)[:, previous.shape[1] + part.shape[1] - (taps - 1) :]
    assert rel_err(torch.cat(pieces, dim=1), whole) <= 1e-12
    with torch.enable_grad():  # the training fallback takes the same argument
        grad_x = x.clone().requires_grad_()
        out = short_conv(grad_x[:, 5:], weight, bias, x[:, 5 - (taps - 1) : 5])
    assert rel_err(out.detach(), whole[:, 5:]) <= 1e-12


def test_implicit_filter_channels_subset_equals_the_whole_filter():
    torch.manual_seed(1)
    filt = ImplicitFilter(12, 500, filter_order=16)
    whole = filt(321)
    index = torch.tensor([0, 5, 11, 3])
    part = filt.channels(filt.features(321), 321, index)
    assert rel_err(part, whole[:, index]) <= 1e-6


def test_inference_chunk_must_be_a_non_negative_integer():
    with pytest.raises(HyenaDNAError, match="inference_chunk"):
        HyenaConfig(inference_chunk=-1)


def test_a_model_built_under_inference_mode_runs_and_caches_no_spectra():
    """Weights made under torch.inference_mode are inference tensors, whose writes no version
    counter tracks: reading that counter raised ("Inference tensors do not track version
    counter", benchmarks/core_throughput.py), and a cache keyed on it could go stale."""
    ids = torch.randint(7, 11, (2, 64))
    torch.manual_seed(0)
    plain = HyenaDNA(HyenaConfig.from_preset("tiny-1k", n_layer=1, d_model=16)).eval()
    with torch.inference_mode():
        torch.manual_seed(0)
        built = HyenaDNA(HyenaConfig.from_preset("tiny-1k", n_layer=1, d_model=16)).eval()
        first = built(ids)
        for p in built.parameters():  # written in place, as no version counter sees
            p.mul_(1.5)
        second = built(ids)
    with torch.inference_mode():
        for p in plain.parameters():
            p.data.mul_(1.5)
        expected = plain(ids)
    assert not torch.equal(first, second)
    torch.testing.assert_close(second, expected, rtol=1e-5, atol=1e-6)
