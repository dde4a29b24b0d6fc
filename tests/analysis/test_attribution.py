"""Attribution: ISM against brute force, gradients against finite differences, IG completeness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.analysis.attribution import (
    baseline_values,
    gradient_x_input,
    input_gradients,
    integrated_gradients,
    ism,
    mutants,
    output_values,
)
from hyenadna.data.tokenizer import A_ID, CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.cnn import ConvClassifier, ConvConfig
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel

BASES = "ACGT"


def random_seqs(n: int, lo: int, hi: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(BASES), int(rng.integers(lo, hi + 1)))) for _ in range(n)]


def hyena_head(
    rc: bool = False,
    pooling: str = "mean",
    task: str = "multiclass",
    seed: int = 0,
    kind: str = "linear",
    bidirectional: bool = False,
    hidden: int = 0,
) -> SequenceModel:
    torch.manual_seed(seed)
    backbone = HyenaDNA(HyenaConfig(d_model=16, n_layer=2, l_max=80, residual_in_fp32=False))
    labels = ["a", "b", "c"] if task != "regression" else ["y"]
    head = HeadConfig(
        task,
        labels,
        pooling=pooling,
        rc_conjoin=rc,
        kind=kind,
        train_length=48,
        bidirectional=bidirectional,
        hidden=hidden,
    )
    model = SequenceModel(backbone, head)
    # outputs that move with the input
    torch.nn.init.normal_(model.head.delta if kind == "likelihood" else model.head.weight, std=1.0)
    return model.double().eval()


def cnn_head(rc: bool = False) -> ConvClassifier:
    torch.manual_seed(1)
    model = ConvClassifier(ConvConfig(length=48, channels=[8, 8]), HeadConfig("multiclass", ["a", "b"], rc_conjoin=rc))
    for layer in model.head:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=1.0)  # outputs that move with the input
    return model.double().eval()


def lm() -> HyenaDNA:
    torch.manual_seed(2)
    return HyenaDNA(HyenaConfig(d_model=16, n_layer=2, l_max=80, residual_in_fp32=False)).double().eval()


def model_outputs(model, seq: str, output: str = "logit") -> np.ndarray:
    return output_values(model, [seq], output)[0]


MODELS = {
    "hyena": lambda: hyena_head(),
    "hyena-rc-max": lambda: hyena_head(rc=True, pooling="max"),
    "hyena-regression": lambda: hyena_head(task="regression", pooling="last"),
    "hyena-likelihood-rc": lambda: hyena_head(rc=True, kind="likelihood"),
    "hyena-positional-rc": lambda: hyena_head(rc=True, kind="positional"),
    "hyena-positional-bidirectional": lambda: hyena_head(kind="positional", bidirectional=True, hidden=8),
    "hyena-conv-bidirectional": lambda: hyena_head(kind="conv", bidirectional=True, hidden=8),
    "cnn-rc": lambda: cnn_head(rc=True),
    "language-model": lm,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_ism_equals_two_forward_passes(name):
    model = MODELS[name]()
    seqs = random_seqs(3, 20, 40, seed=3)
    seqs[1] = seqs[1][:5] + "N" + seqs[1][6:]
    output = "probability" if name in ("hyena", "cnn-rc") else "logit"
    results = ism(model, seqs, output=output, batch_size=7)
    rng = np.random.default_rng(0)
    for seq, deltas in zip(seqs, results):
        assert deltas.shape == (len(seq), 4, len(model_outputs(model, seq)))
        reference = model_outputs(model, seq, output)
        for pos in rng.choice(len(seq), 6, replace=False):
            for b, base in enumerate(BASES):
                if seq[pos] == base:
                    assert np.all(deltas[pos, b] == 0)
                    continue
                mutant = seq[:pos] + base + seq[pos + 1 :]
                expected = model_outputs(model, mutant, output) - reference
                np.testing.assert_allclose(deltas[pos, b], expected, atol=1e-5, rtol=0)
        assert np.abs(deltas).max() > 1e-4  # the mutants do move the outputs


def test_ism_of_a_language_model_is_the_score_llr():
    model = lm()
    seq = random_seqs(1, 50, 50, seed=4)[0]
    deltas = ism(model, seq)[0][:, :, 0]
    mutant = seq[:20] + ("A" if seq[20] != "A" else "C") + seq[21:]
    llr = model.score([mutant, seq]).astype(np.float64)
    assert deltas[20, BASES.index(mutant[20])] == pytest.approx(llr[0] - llr[1], abs=1e-6)


def test_mutants_cover_every_substitution_once():
    row = CharacterTokenizer().encode_bases("ACNT")
    rows, positions, bases = mutants(row)
    assert len(rows) == 3 + 3 + 4 + 3
    assert {(p, b) for p, b in zip(positions, bases)} == {(p, b) for p in range(4) for b in range(4)} - {
        (0, 0), (1, 1), (3, 3)}  # fmt: skip
    for r, p, b in zip(rows, positions, bases):
        assert r[p] == b + A_ID and np.sum(r != row) == 1


def finite_difference(model, seq: str, pos: int, base: int, output: str, eps: float = 1e-6) -> np.ndarray:
    """d output / d onehot[pos, base] by central differences on the one-hot path (float64)."""
    from hyenadna.analysis.attribution import Explained, _onehot

    explained = Explained(model, output)
    ids = torch.as_tensor(CharacterTokenizer().encode_bases(seq))[None]
    mask = torch.ones_like(ids, dtype=torch.bool)
    onehot = _onehot(ids, mask, torch.float64)
    step = torch.zeros_like(onehot)
    step[0, pos, base] = eps
    with torch.no_grad():
        up = explained.values_onehot(onehot + step, ids, mask)[0]
        down = explained.values_onehot(onehot - step, ids, mask)[0]
    return ((up - down) / (2 * eps)).numpy()


@pytest.mark.parametrize(
    "name",
    [
        "hyena",
        "hyena-rc-max",
        "hyena-likelihood-rc",
        "hyena-positional-rc",
        "hyena-positional-bidirectional",
        "hyena-conv-bidirectional",
        "cnn-rc",
        "language-model",
    ],
)
def test_gradients_equal_finite_differences(name):
    model = MODELS[name]()
    seqs = random_seqs(3, 15, 30, seed=5)
    grads = input_gradients(model, seqs, batch_size=2)
    gxi = gradient_x_input(model, seqs, batch_size=3)
    rng = np.random.default_rng(1)
    for seq, g, x in zip(seqs, grads, gxi):
        for pos in rng.choice(len(seq), 4, replace=False):
            for b in range(4):
                np.testing.assert_allclose(g[pos, b], finite_difference(model, seq, pos, b, "logit"), rtol=1e-5,
                                           atol=1e-7)  # fmt: skip
        own = np.array([BASES.index(c) for c in seq])
        np.testing.assert_array_equal(x[np.arange(len(seq)), own], g[np.arange(len(seq)), own])
        x[np.arange(len(seq)), own] = 0
        assert not x.any()


def test_onehot_path_matches_the_token_path_and_a_batch():
    """The one-hot path gives the model's own logits, and a row's gradients do not depend on
    the batch it is in (right padding, eval mode)."""
    model = hyena_head(rc=True)
    seqs = random_seqs(4, 10, 30, seed=6)
    alone = [input_gradients(model, [s])[0] for s in seqs]
    together = input_gradients(model, seqs, batch_size=4)
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("baseline", ["uniform", "zero"])
@pytest.mark.parametrize("name", ["hyena", "cnn-rc", "language-model"])
def test_integrated_gradients_complete(name, baseline):
    """Attributions sum to output(x) - output(baseline), within the trapezoidal rule's error."""
    model = MODELS[name]()
    seqs = random_seqs(2, 20, 30, seed=7)
    coarse = integrated_gradients(model, seqs, steps=4, baseline=baseline)
    fine = integrated_gradients(model, seqs, steps=64, baseline=baseline)
    gap = output_values(model, seqs) - baseline_values(model, seqs, baseline=baseline)
    for i in range(len(seqs)):
        err_fine = np.abs(fine[i].sum((0, 1)) - gap[i])
        err_coarse = np.abs(coarse[i].sum((0, 1)) - gap[i])
        assert np.all(err_fine <= 0.02 * np.abs(gap[i]).max() + 1e-6)  # ReLU kinks: the CNN converges slower
        assert err_fine.max() <= err_coarse.max() + 1e-9
    if baseline == "zero":
        own = np.array([BASES.index(c) for c in seqs[0]])
        others = fine[0].copy()
        others[np.arange(len(seqs[0])), own] = 0
        assert not others.any()


def test_bad_requests_are_named():
    with pytest.raises(HyenaDNAError, match="sequence 1 has 81 bases"):
        ism(hyena_head(), ["ACGT", "A" * 81])
    with pytest.raises(HyenaDNAError, match="output must be"):
        ism(hyena_head(), "ACGT", output="odds")
    with pytest.raises(HyenaDNAError, match="regression head"):
        ism(hyena_head(task="regression"), "ACGT", output="probability")
    with pytest.raises(HyenaDNAError, match="baseline"):
        integrated_gradients(hyena_head(), "ACGT", baseline="shuffled")
    with pytest.raises(HyenaDNAError, match="cannot explain"):
        ism(torch.nn.Linear(2, 2), "ACGT")
