"""The eval-mode context (:mod:`hyenadna.modules.modes`) and the inference services built on it:
inference on a model in training hands it back training, and equals inference in eval mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.modules.modes import eval_mode


def test_eval_mode_restores_the_callers_mode_also_after_an_error():
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2))
    for training in (True, False):
        model.train(training)
        with eval_mode(model) as inside:
            assert inside is model and not model.training and not model[0].training
        assert model.training is training and model[0].training is training
    model.train()
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model):
        raise RuntimeError("inside")
    assert model.training and model[0].training


def test_inference_services_hand_a_training_model_back_training():
    torch.manual_seed(0)
    model = HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=64, filter_order=8, resid_dropout=0.5))
    seqs = ["ACGTTGCAAC", "GGA"]
    model.eval()
    expected = (model.embed(seqs), model.score(seqs), model.generate(seqs, 5, seed=1))
    model.train()
    got = (model.embed(seqs), model.score(seqs), model.generate(seqs, 5, seed=1))
    assert model.training and all(m.training for m in model.modules())
    assert (got[0] == expected[0]).all() and (got[1] == expected[1]).all() and got[2] == expected[2]
