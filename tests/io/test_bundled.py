"""The bundled pretrained model: found by name offline, verified by checksum, better than chance on
held-out human sequence, and a starting point that fine-tunes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hyenadna
from hyenadna.data.fasta import read_fasta
from hyenadna.data.files import file_sha256
from hyenadna.errors import HyenaDNAError
from hyenadna.io import bundled
from hyenadna.tasks import CHR20

NAME = "tiny-1k-chr20"
BACTERIA = "tiny-1k-bacteria4"
LONG = "tiny-32k-chr20"
GENOMES = "tiny-1k-genomes"
DEEP = "deep-1k-genomes"
DEEPER = "deeper-1k-genomes"
LAYERS = {DEEP: 4, DEEPER: 6}  # the grown models; the others have 2 blocks
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", [NAME, BACTERIA, LONG, GENOMES, DEEP, DEEPER])
def test_bundled_model_loads_by_name_with_its_checksums(name):
    folder = bundled.bundled_models()[name]
    sums = dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"config.json", "model.safetensors"}
    for filename, digest in sums.items():
        assert file_sha256(folder / filename) == digest
    card = (folder / "MODEL_CARD.md").read_text()
    assert sums["model.safetensors"] in card  # the card names the exact weights it describes
    model = hyenadna.load(name)
    assert not model.training and model.config.d_model == 128 and model.config.n_layer == LAYERS.get(name, 2)
    assert model.num_parameters() == json.loads((folder / "heldout.json").read_text())["model"]["parameters"]


def test_a_damaged_bundled_model_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "weights" / NAME
    shutil.copytree(bundled.bundled_models()[NAME], copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(bundled, "WEIGHTS", tmp_path / "weights")
    with pytest.raises(HyenaDNAError, match=r"model.safetensors: missing or damaged"):
        hyenadna.load(NAME)
    with pytest.raises(HyenaDNAError, match="bundled pretrained model"):
        hyenadna.load("tiny-1k-chr21")


@pytest.mark.slow
def test_bundled_model_predicts_held_out_human_sequence():
    from hyenadna.pipelines.heldout import heldout_windows, model_bits_per_base

    data = {"genomes": [{"path": CHR20, "val_fraction": 0.1}], "length": 1024}
    _, windows = heldout_windows(data, "val", max_windows=48)
    bits, scored = model_bits_per_base(hyenadna.load(NAME), windows)
    assert scored > 40 * 1024
    assert bits < 1.85  # random weights give 2.0; the best Markov chain 1.87 on all held-out windows


@pytest.mark.slow
@pytest.mark.parametrize(("parent", "grown", "margin"), [(GENOMES, DEEP, 0.005), (DEEP, DEEPER, 0.004)])
def test_a_deepened_model_predicts_held_out_human_sequence_better_than_its_parent(parent, grown, margin):
    """deep-1k-genomes is tiny-1k-genomes grown from 2 to 4 blocks and pretrained on, and
    deeper-1k-genomes is deep-1k-genomes grown to 6: on held-out chr20 each beats the model it grew
    from, which predicted exactly as it did at its first step (64 windows: 1.7870 -> 1.7729 ->
    1.7593, its first revision 1.7647), and its card's lead over the best Markov chain is larger
    than its parent's."""
    from hyenadna.pipelines.heldout import heldout_windows, model_bits_per_base

    data = {"genomes": [{"path": CHR20, "val_fraction": 0.1}], "length": 1024}
    _, windows = heldout_windows(data, "val", max_windows=64)
    bits = {name: model_bits_per_base(hyenadna.load(name), windows)[0] for name in (parent, grown)}
    folders = bundled.bundled_models()
    cards = {name: json.loads((folders[name] / "heldout.json").read_text()) for name in (parent, grown)}
    assert bits[grown] < bits[parent] - margin
    assert cards[grown]["model"]["bits_per_base"] < cards[grown]["best_markov"]["bits_per_base"]
    assert cards[grown]["model_minus_best_markov"] < cards[parent]["model_minus_best_markov"]


@pytest.mark.slow
def test_the_model_of_several_genomes_predicts_a_genome_no_model_saw_better_than_the_human_one():
    """tiny-1k-genomes read chr20 and four bacteria; on C. elegans (htslib-test's ce.fa, in no
    corpus) it beats the human-only model it started from and the best Markov chain of its card."""
    from hyenadna.pipelines.heldout import heldout_windows, model_bits_per_base, pretraining_data

    _, windows = heldout_windows(pretraining_data(REPO / "configs" / "heldout_unseen_ce.yaml"), "test", max_windows=64)
    bits = {name: model_bits_per_base(hyenadna.load(name), windows)[0] for name in (NAME, GENOMES)}
    card = json.loads((bundled.bundled_models()[GENOMES] / "heldout.json").read_text())["unseen_ce"]
    assert bits[GENOMES] < bits[NAME] - 0.01  # 1.907 against 1.928 on all 1,010 windows
    assert bits[GENOMES] < card["best_markov"]["bits_per_base"]  # 1.952, order 3


@pytest.mark.slow
def test_the_long_model_reads_32_kb_of_held_out_human_sequence():
    """tiny-32k-chr20 takes 32 kb windows at all and predicts them: the 1 kb model it started
    from, its filters stretched to l_max 32770, scored 2.24 bits/base before pretraining."""
    from hyenadna.pipelines.heldout import heldout_windows, model_bits_per_base

    data = {"genomes": [{"path": CHR20, "val_fraction": 0.1}], "length": 32768}
    _, windows = heldout_windows(data, "val", max_windows=3)
    bits, scored = model_bits_per_base(hyenadna.load(LONG), windows)
    assert scored == 3 * 32768
    assert bits < 1.9  # 1.84 on all 186 held-out windows (its card)


@pytest.mark.slow
def test_the_bacterial_model_predicts_held_out_bacterial_sequence_better_than_the_human_one(tmp_path):
    """tiny-1k-bacteria4 learnt its genomes: on the bacteria4 task's test stretches (never seen in
    pretraining) it beats the human model it started from and the best Markov chain of its card."""
    from hyenadna.data.tokenizer import CharacterTokenizer
    from hyenadna.pipelines.heldout import model_bits_per_base
    from hyenadna.tasks import write_split_fasta

    tokenizer = CharacterTokenizer()
    windows = []
    for path in write_split_fasta("bacteria4", "test", tmp_path).values():
        for _, seq in read_fasta(path):
            for start in np.linspace(0, len(seq) - 1025, 12).astype(int):  # 12 windows of 1,025 bases
                windows.append(np.asarray(tokenizer.encode_bases(seq[start : start + 1025], name=str(path))))
    bits = {name: model_bits_per_base(hyenadna.load(name), windows)[0] for name in (NAME, BACTERIA)}
    card = json.loads((bundled.bundled_models()[BACTERIA] / "heldout.json").read_text())
    assert bits[BACTERIA] < bits[NAME] - 0.02
    assert bits[BACTERIA] < card["best_markov"]["bits_per_base"]


@pytest.mark.slow
def test_fine_tuning_from_the_bundled_model_beats_chance(tmp_path):
    from hyenadna.pipelines.finetune import run_finetune
    from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions

    result = run_finetune(
        LabelledData(
            train=str(REPO / "data/tasks/promoters_chr20.csv.gz"), reader={"split_col": "split", "name_col": "name"}
        ),
        ModelOptions(NAME),
        tuning=FinetuneOptions(backbone_lr_scale=1.0, patience=0, baseline=False),
        trainer=TrainerOptions(max_steps=-1, max_epochs=2, accelerator="cpu", devices=1, progress_bar=False),
        output=str(tmp_path / "ft"),
    )
    assert result["test"]["auroc"] > 0.75 and result["test"]["accuracy"] > 0.6
