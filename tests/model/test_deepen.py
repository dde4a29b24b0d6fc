"""Deepening a model keeps its predictions exactly and leaves the new blocks trainable."""

from __future__ import annotations

import pytest
import torch

import hyenadna
from hyenadna import HyenaDNAError
from hyenadna.model.deepen import deepen, kept_positions


def random_model(dtype: torch.dtype = torch.float32, **overrides) -> hyenadna.HyenaDNA:
    torch.manual_seed(0)
    model = hyenadna.load("tiny-1k", dtype=dtype, **overrides)
    with torch.no_grad():  # fresh weights, but not GPT-2's near-zero residual projections
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def test_kept_positions_spread_the_old_blocks_first_block_first():
    assert kept_positions(2, 4) == [0, 2]
    assert kept_positions(2, 3) == [0, 1]
    assert kept_positions(2, 5) == [0, 2]
    assert kept_positions(3, 8) == [0, 2, 5]


@pytest.mark.parametrize("n_layer", [3, 4, 5])
def test_deepened_model_gives_the_same_logits_to_the_bit(n_layer):
    model = random_model()
    ids = torch.randint(7, 11, (3, 300))
    grown = deepen(model, n_layer)
    assert grown.config.n_layer == n_layer and len(grown.blocks) == n_layer
    assert not grown.training  # the mode it was given (load gives eval)
    with torch.no_grad():
        assert torch.equal(grown(ids), model(ids))
        assert torch.equal(grown.hidden_states(ids), model.hidden_states(ids))


def test_deepened_model_agrees_on_the_chunked_path_and_in_decoding():
    model = random_model(inference_chunk=64)  # 300 bases run chunk by chunk
    grown = deepen(model, 4)
    ids = torch.randint(7, 11, (2, 300))
    with torch.no_grad():
        assert model._chunked(ids) and grown._chunked(ids)
        assert torch.equal(grown.hidden_states(ids), model.hidden_states(ids))
        caches = [m.allocate_inference_cache(2, 64) for m in (model, grown)]
        first = [m.step(ids[:, :40], c) for m, c in zip((model, grown), caches)]
        assert torch.equal(*first)
        after = [m.step(ids[:, 40:41], c) for m, c in zip((model, grown), caches)]
        assert torch.equal(*after)
    prompt = "ACGTTGCAACGGTAGATTACA"
    assert grown.generate(prompt, 30, seed=5) == model.generate(prompt, 30, seed=5)


def test_deepened_float64_model_agrees_where_its_stream_keeps_float64():
    model = random_model(torch.float64, residual_in_fp32=False)
    ids = torch.randint(7, 11, (2, 200))
    grown = deepen(model, 4)
    assert grown.dtype == torch.float64
    with torch.no_grad():
        assert torch.equal(grown(ids), model(ids))


def test_new_blocks_learn_after_the_first_step(tmp_path):
    model = random_model().train()
    grown = deepen(model, 4)
    assert grown.training
    new = grown.blocks[1]
    optimizer = torch.optim.SGD(grown.parameters(), lr=0.1)
    ids = torch.randint(7, 11, (2, 128))
    for step in range(2):
        logits = grown(ids[:, :-1])
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()).backward()
        inner = new.mixer.in_proj.weight.grad.abs().max().item()
        assert (inner == 0) == (step == 0)  # zero output projection: no gradient inside, once
        assert new.mixer.out_proj.weight.grad.abs().max() > 0
        optimizer.step()
        optimizer.zero_grad()
    grown.save_pretrained(tmp_path / "grown")
    again = hyenadna.load(tmp_path / "grown")
    assert again.config.n_layer == 4
    for (name, x), y in zip(grown.state_dict().items(), again.state_dict().values()):
        assert torch.equal(x, y), name


def test_deepen_refuses_a_depth_that_is_not_larger():
    with pytest.raises(HyenaDNAError, match="n_layer=2"):
        deepen(random_model(), 2)
