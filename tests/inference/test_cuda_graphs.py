""":class:`hyenadna.inference.cuda_graphs.GraphedModel` where no graph is captured: the same numbers as the
model, whatever the call. (Replayed graphs are checked on a GPU by benchmarks/gpu_vs_attention.py,
row ``graphed``: its relative error against the eager forward, same weights and input.)"""

from __future__ import annotations

import torch

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.inference.cuda_graphs import GraphedModel


def tiny_model() -> HyenaDNA:
    torch.manual_seed(0)
    return HyenaDNA(HyenaConfig(d_model=8, n_layer=2, l_max=64, filter_order=8, embed_dropout=0.0)).eval()


def test_calls_that_cannot_be_graphed_run_the_method_as_it_is():
    """The CPU, calls with gradients, keyword arguments and other methods: the model's own output."""
    model = tiny_model()
    ids = torch.randint(0, 12, (2, 40))
    graphed = GraphedModel(model)
    with torch.no_grad():
        assert torch.equal(graphed(ids), model(ids))
        mask = torch.ones(2, 40, dtype=torch.bool)
        assert torch.equal(graphed(ids, attention_mask=mask), model(ids, attention_mask=mask))
        states = GraphedModel(model, method="hidden_states")
        assert torch.equal(states(ids), model.hidden_states(ids))
    logits = graphed(ids)  # with gradients: autograd as usual
    logits.sum().backward()
    assert model.token_embedding.weight.grad is not None
