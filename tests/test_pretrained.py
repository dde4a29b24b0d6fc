"""The bundled pretrained model: found by name offline, verified by checksum, better than chance on
held-out human sequence, and a starting point that fine-tunes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import hyenadna
from hyenadna import bundled
from hyenadna.data.files import file_sha256
from hyenadna.errors import HyenaDNAError
from hyenadna.tasks import CHR20

NAME = "tiny-1k-chr20"
REPO = Path(__file__).resolve().parents[1]


def test_bundled_model_loads_by_name_with_its_checksums():
    folder = bundled.bundled_models()[NAME]
    sums = dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"config.json", "model.safetensors"}
    for filename, digest in sums.items():
        assert file_sha256(folder / filename) == digest
    card = (folder / "MODEL_CARD.md").read_text()
    assert sums["model.safetensors"] in card  # the card names the exact weights it describes
    model = hyenadna.load(NAME)
    assert not model.training and model.config.d_model == 128 and model.config.n_layer == 2
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
def test_fine_tuning_from_the_bundled_model_beats_chance(tmp_path):
    from hyenadna.pipelines.finetune import run_finetune
    from hyenadna.pipelines.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions

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
