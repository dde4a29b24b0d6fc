"""The class-likelihood head: logits against a float64 reference loop and ``model.score``, its
generative loss, padding, saving, refusals, and a short fine-tune on the real bacterial task."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.data.tokenizer import A_ID, CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.cnn import ConvClassifier, ConvConfig
from hyenadna.heads.config import HeadConfig, HeadOptions
from hyenadna.heads.loading import load_task_model, predict_sequences
from hyenadna.heads.task_model import SequenceModel
from hyenadna.pipelines.finetune import run_finetune
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions

REPO = Path(__file__).resolve().parents[2]
LABELS = ["a", "b", "c"]
SEQS = ["ACGTTGCAAGGT", "TTGACCANGTACGATCGA", "GCGCAT", "ATATATCGCGNNAT"]


def likelihood_model(rc: bool = False, randomise: bool = True) -> SequenceModel:
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig(d_model=16, n_layer=2, l_max=64, residual_in_fp32=False))
    model = SequenceModel(backbone, HeadConfig("multiclass", LABELS, kind="likelihood", rc_conjoin=rc, dropout=0.0))
    if randomise:  # classes that differ from the LM head and from each other
        torch.nn.init.normal_(model.head.delta, std=0.5)
        torch.nn.init.normal_(model.head.bias, std=0.5)
    return model.double().eval()


def reference_log_likelihoods(model: SequenceModel, seq: str) -> np.ndarray:
    """(C,) sum over scored bases of log p_c(x_{t+1} | x_<=t), one position at a time in float64,
    from the unpadded sequence's hidden states."""
    ids = torch.as_tensor(CharacterTokenizer().encode_bases(seq))[None]
    with torch.no_grad():
        hidden = model.backbone.hidden_states(ids)[0].double()
    head = model.head
    totals = np.zeros(len(LABELS))
    torch.set_grad_enabled(False)
    for c in range(len(LABELS)):
        weight = (head.shared + head.delta[c]).double()
        for t in range(len(seq) - 1):
            if seq[t + 1] not in "ACGT":
                continue
            logp = torch.log_softmax(weight @ hidden[t] + head.bias[c].double(), dim=0)
            totals[c] += float(logp["ACGT".index(seq[t + 1])])
    torch.set_grad_enabled(True)
    return totals


@pytest.mark.parametrize("side", ["right", "left"])
def test_logits_are_each_class_log_likelihood_plus_its_prior(side):
    model = likelihood_model()
    batch = CharacterTokenizer(padding_side=side)(SEQS)
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"]).numpy()
    prior = model.head.log_prior.double().numpy()
    for seq, row in zip(SEQS, logits):
        expected = reference_log_likelihoods(model, seq) + prior
        np.testing.assert_allclose(row, expected, rtol=1e-10, atol=1e-10)
    assert np.ptp(logits - logits.mean(axis=1, keepdims=True)) > 0.1  # the classes do differ


def test_before_training_every_class_is_the_language_models_own_score():
    model = likelihood_model(randomise=False)
    batch = CharacterTokenizer()(SEQS)
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"]).numpy()
    scores = model.backbone.score(SEQS, reduce="sum")
    np.testing.assert_allclose(model.head.log_prior.numpy(), -math.log(len(LABELS)), rtol=1e-7)
    for c in range(len(LABELS)):
        np.testing.assert_allclose(logits[:, c] - model.head.log_prior.numpy()[c], scores, rtol=1e-9)


def test_conjoined_logits_average_the_two_strands():
    model = likelihood_model(rc=True)
    single = likelihood_model(rc=False)
    from hyenadna.data.tokenizer import reverse_complement

    batch = CharacterTokenizer()(SEQS)
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"]).numpy()
    prior = model.head.log_prior.double().numpy()
    for seq, row in zip(SEQS, logits):
        both = reference_log_likelihoods(single, seq) + reference_log_likelihoods(single, reverse_complement(seq))
        np.testing.assert_allclose(row, both / 2 + prior, rtol=1e-10)


def test_training_loss_is_the_own_class_per_base_negative_log_likelihood():
    model = likelihood_model()  # eval: no backbone dropout, so the reference sees the same states
    batch = CharacterTokenizer()(SEQS)
    target = torch.tensor([0, 2, 1, 2])
    logits = model(batch["input_ids"], batch["attention_mask"])
    loss = model.training_loss(logits, target, batch["attention_mask"])
    expected = np.mean([-reference_log_likelihoods(model, s)[int(y)] / (len(s) - 1) for s, y in zip(SEQS, target)])
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    loss.backward()
    assert model.head.delta.grad[0].abs().sum() > 0 and model.head.delta.grad[2].abs().sum() > 0
    assert next(model.backbone.parameters()).grad is not None


def test_priors_come_from_counts_and_survive_saving(tmp_path):
    model = likelihood_model()
    model.head.start_from(model.head.shared.detach().clone(), torch.tensor([3, 1, 0]))
    np.testing.assert_allclose(model.head.log_prior.numpy(), np.log(np.array([3, 1, 0.5]) / 4.5), rtol=1e-6)
    torch.nn.init.normal_(model.head.delta, std=0.5)
    model.save_pretrained(tmp_path / "m")
    loaded = load_task_model(tmp_path / "m").double()
    assert loaded.head_config.kind == "likelihood"
    probs = predict_sequences(model, SEQS)
    np.testing.assert_allclose(predict_sequences(loaded, SEQS), probs, rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)


def test_bad_uses_are_refused_by_name():
    with pytest.raises(HyenaDNAError, match="likelihood head classifies"):
        HeadConfig("regression", ["y"], kind="likelihood")
    with pytest.raises(HyenaDNAError, match="head kind must be one of"):
        HeadConfig("multiclass", LABELS, kind="bayes")
    with pytest.raises(HyenaDNAError, match="needs a Hyena backbone"):
        ConvClassifier(ConvConfig(length=48, channels=[8]), HeadConfig("multiclass", LABELS, kind="likelihood"))


def test_next_bases_skip_n_padding_and_special_tokens():
    from hyenadna.heads.likelihood import next_base_onehot

    ids = torch.tensor([[0, A_ID, 11, A_ID + 2, A_ID + 3, 4, 4]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    onehot = next_base_onehot(ids, mask)
    assert onehot.shape == (1, 6, 4)
    assert onehot.sum(-1).tolist() == [[1, 0, 1, 1, 0, 0]]  # A after CLS, N, G, T, then padding
    assert onehot[0, 2].argmax() == 2 and onehot[0, 3].argmax() == 3


def subset_of_bacteria4(tmp_path: Path, per_class: dict[str, int]) -> Path:
    """The first rows of each split and class of the bundled bacteria4 task table."""
    kept, seen = [], {}
    with gzip.open(REPO / "data" / "tasks" / "bacteria4.csv.gz", "rt") as handle:
        for row in csv.DictReader(handle):
            key = (row["split"], row["label"])
            if seen.get(key, 0) < per_class[row["split"]]:
                seen[key] = seen.get(key, 0) + 1
                kept.append(row)
    path = tmp_path / "bacteria_subset.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    return path


@pytest.mark.slow
def test_a_short_fine_tune_of_the_likelihood_head_beats_chance_on_bacterial_genomes(tmp_path):
    """From the bundled bacterial model, 60 steps on 400 real windows: four genomes, chance 0.25."""
    table = subset_of_bacteria4(tmp_path, {"train": 100, "val": 25, "test": 50})
    data = LabelledData(train=str(table), reader={"split_col": "split", "name_col": "name"}, batch_size=16)
    result = run_finetune(
        data,
        ModelOptions("tiny-1k-bacteria4"),
        HeadOptions(kind="likelihood"),
        FinetuneOptions(backbone_lr_scale=1.0, patience=0),
        trainer=TrainerOptions(max_steps=60, max_epochs=-1, accelerator="cpu", devices=1, progress_bar=False),
        output=str(tmp_path / "run"),
    )
    assert result["split_sizes"] == {"train": 400, "val": 100, "test": 200}
    assert result["test"]["accuracy"] > 0.5, result["test"]
    model = load_task_model(tmp_path / "run" / "model")
    assert model.head_config.kind == "likelihood"
    np.testing.assert_allclose(model.head.log_prior.exp().numpy(), 0.25, rtol=1e-6)  # balanced training labels
