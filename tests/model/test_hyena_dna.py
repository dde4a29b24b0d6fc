from __future__ import annotations

import pytest
import torch

from hyenadna import PRESETS, HyenaConfig, HyenaDNA, HyenaDNAError, load


def small_config(**overrides) -> HyenaConfig:
    return HyenaConfig(**{"d_model": 32, "n_layer": 2, "l_max": 300, "filter_order": 16, **overrides})


def random_ids(batch: int, length: int) -> torch.Tensor:
    return torch.randint(0, 12, (batch, length))


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("impl", ["torch", "ref"])
def test_causality(order, impl):
    torch.manual_seed(0)
    model = HyenaDNA(small_config(order=order, fftconv_impl=impl)).eval()
    ids = random_ids(2, 257)
    t = 131
    changed = ids.clone()
    changed[:, t:] = random_ids(2, 257 - t)
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.equal(a[:, :t], b[:, :t]) or (a[:, :t] - b[:, :t]).abs().max() < 1e-5
    assert (a[:, t:] - b[:, t:]).abs().max() > 1e-3  # the change is seen from t on


def test_output_shapes_and_hidden_state_layers():
    model = HyenaDNA(small_config(n_layer=3)).eval()
    ids = random_ids(2, 50)
    with torch.no_grad():
        logits = model(ids)
        states = model.all_hidden_states(ids)
        assert logits.shape == (2, 50, 16)
        assert len(states) == 4 and all(s.shape == (2, 50, 32) for s in states)
        assert torch.equal(model.hidden_states(ids), states[-1])
        assert torch.equal(model.hidden_states(ids, layer=0), states[0])
        assert torch.allclose(model.hidden_states(ids, layer=2), states[2])
        assert torch.allclose(model.hidden_states(ids, layer=-2), states[2])
        # the LM head is tied to the embedding
        assert torch.allclose(logits, states[-1] @ model.token_embedding.weight.T, atol=1e-5)
    with pytest.raises(HyenaDNAError, match="layer 4 out of range"):
        model.hidden_states(ids, layer=4)


def test_fast_and_reference_fftconv_give_the_same_model_output():
    torch.manual_seed(1)
    fast = HyenaDNA(small_config(fftconv_impl="torch")).eval()
    ref = HyenaDNA(small_config(fftconv_impl="ref")).eval()
    ref.load_state_dict(fast.state_dict())
    ids = random_ids(3, 299)
    with torch.no_grad():
        a, b = fast.all_hidden_states(ids), ref.all_hidden_states(ids)
    for x, y in zip(a, b):
        assert float((x - y).abs().max() / y.abs().max()) < 1e-5


def test_input_errors_are_clear():
    model = HyenaDNA(small_config(l_max=40))
    with pytest.raises(HyenaDNAError, match="length 41 is longer than the model's l_max 40"):
        model(random_ids(1, 41))
    with pytest.raises(HyenaDNAError, match=r"token ids must lie in \[0, 16\)"):
        model(torch.full((1, 5), 16))
    with pytest.raises(HyenaDNAError, match="integer tensor"):
        model(torch.zeros(1, 5))
    with pytest.raises(HyenaDNAError, match="unknown model preset 'huge-10m'"):
        HyenaConfig.from_preset("huge-10m")
    with pytest.raises(HyenaDNAError, match="unknown model .no-such-model.: neither a preset"):
        load("no-such-model")
    with pytest.raises(HyenaDNAError, match="order must be at least 2"):
        small_config(order=1)


@pytest.mark.parametrize("checkpoint_mixer,checkpoint_mlp", [(True, False), (False, True), (True, True)])
def test_activation_checkpointing_gives_identical_gradients(checkpoint_mixer, checkpoint_mlp):
    torch.manual_seed(2)
    plain = HyenaDNA(small_config(embed_dropout=0.0))
    ckpt = HyenaDNA(small_config(embed_dropout=0.0, checkpoint_mixer=checkpoint_mixer, checkpoint_mlp=checkpoint_mlp))
    ckpt.load_state_dict(plain.state_dict())
    ids = random_ids(2, 64)
    for m in (plain, ckpt):
        m.train()
        m(ids).logsumexp(-1).mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-8), name


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_forward_and_backward_at_short_length(preset):
    torch.manual_seed(3)
    config = HyenaConfig.from_preset(preset)
    model = HyenaDNA(config)
    assert model.token_embedding.weight.shape == (16, config.d_model)
    assert len(model.blocks) == config.n_layer
    mixer = model.blocks[0].mixer
    assert mixer.in_proj.weight.shape == (3 * config.d_model, config.d_model)
    assert mixer.filter.freq.shape == (1, 64) and torch.all(mixer.filter.freq == 10)
    assert mixer.filter.z.shape == (config.l_max, 5)
    assert model.blocks[0].mlp.fc1.weight.shape == (4 * config.d_model, config.d_model)
    ids = random_ids(2, 48)
    logits = model(ids)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 16), ids[:, 1:].reshape(-1))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_tiny_1k_parameter_count_matches_the_release():
    # HyenaDNA reports 0.44M parameters for tiny-1k
    assert HyenaDNA(HyenaConfig.from_preset("tiny-1k")).num_parameters() == 436_096


def test_bfloat16_autocast_keeps_residual_in_float32():
    model = HyenaDNA(small_config()).eval()
    ids = random_ids(2, 100)
    with torch.no_grad():
        expected = model.hidden_states(ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model.all_hidden_states(ids)
    assert got[1].dtype == torch.float32  # the residual stream
    assert float((got[-1].float() - expected).abs().max() / expected.abs().max()) < 0.1
