"""Calibration of fine-tuned models on their validation split, end to end on the real TF-binding
task: ``finetune --tuning.calibrate`` and ``hyenadna calibrate RUN`` fit the same calibration
from the same model, and bring the whole run folder along (model, metrics, predictions)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hyenadna.errors import HyenaDNAError
from hyenadna.heads.calibration import CALIBRATION_FILE
from hyenadna.heads.config import HeadOptions
from hyenadna.heads.loading import load_task_model, predict_sequences
from hyenadna.pipelines.calibrate import run_calibrate
from hyenadna.pipelines.finetune import run_finetune
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions

pytestmark = pytest.mark.slow  # CNN fine-tunes, end to end
REPO = Path(__file__).resolve().parents[2]
TF = REPO / "data" / "tf_binding"
TRAIN = {"Oct4": str(TF / "oct4_train.fa"), "MafK": str(TF / "mafk_train.fa")}
TEST = {"Oct4": str(TF / "oct4_test.fa"), "MafK": str(TF / "mafk_test.fa")}


def cnn_run(out: Path, calibrate: bool, steps: int = 30) -> dict:
    return run_finetune(
        LabelledData(train=TRAIN, test=TEST, batch_size=32, val_fraction=0.2),
        ModelOptions("cnn", {"channels": [16, 16]}),
        HeadOptions(),
        FinetuneOptions(baseline=False, patience=0, calibrate=calibrate),
        trainer=TrainerOptions(max_steps=steps, accelerator="cpu", devices=1, progress_bar=False),
        output=str(out),
        seed=3,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    return (root / "plain", cnn_run(root / "plain", False)), (root / "fitted", cnn_run(root / "fitted", True))


def test_finetune_calibrates_on_validation_and_reports_both_test_results(runs):
    (_, plain), (out, fitted) = runs
    assert "calibration" not in plain and "test_calibrated" not in plain
    assert fitted["test"] == plain["test"]  # the model's own metrics: the same seed, the same weights
    calibration = fitted["calibration"]
    assert calibration["method"] == "bcts" and calibration["sequences"] == fitted["split_sizes"]["val"]
    assert calibration["nll_after"] < calibration["nll_before"]
    assert set(fitted["test_calibrated"]) >= {"accuracy", "mcc", "auroc"}
    assert fitted["test_calibrated"]["auroc"] == pytest.approx(fitted["test"]["auroc"], abs=1e-6)  # ranking kept
    model = load_task_model(out / "model")
    assert model.calibration.scale == calibration["scale"] and model.calibration.bias == calibration["bias"]
    with open(out / "test_predictions.tsv") as fh:  # the calibrated model's probabilities
        rows = list(csv.DictReader(fh, delimiter="\t"))
    records = _fasta(TEST["MafK"])[:5]
    probs = predict_sequences(model, [s for _, s in records])
    by_name = {r["name"]: float(r["p_Oct4"]) for r in rows}
    assert np.allclose([by_name[name] for name, _ in records], probs[:, 1], atol=1e-5)
    accuracy = np.mean([r["predicted"] == r["label"] for r in rows])
    assert accuracy == pytest.approx(fitted["test_calibrated"]["accuracy"])


def test_calibrating_a_finished_run_gives_what_finetune_would_have(runs, tmp_path):
    (plain_out, _), (_, fitted) = runs
    run = tmp_path / "run"
    shutil.copytree(plain_out, run)
    result = run_calibrate(str(run))
    assert_same_fit(result["calibration"], fitted["calibration"])  # the same model, read again (float32 logits)
    assert result["test_calibrated"] == pytest.approx(fitted["test_calibrated"], rel=1e-6)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_calibrated"] == result["test_calibrated"] and metrics["test"] == fitted["test"]
    assert json.loads((run / "model" / CALIBRATION_FILE).read_text())["bias"] == result["calibration"]["bias"]
    with pytest.raises(HyenaDNAError, match="already calibrated.*--overwrite"):
        run_calibrate(str(run))
    assert_same_fit(run_calibrate(str(run), overwrite=True)["calibration"], fitted["calibration"])


def assert_same_fit(one: dict, other: dict) -> None:
    assert one.keys() == other.keys() and (one["method"], one["sequences"]) == (other["method"], other["sequences"])
    for key in ("scale", "bias", "nll_before", "nll_after"):
        assert one[key] == pytest.approx(other[key], rel=1e-6, abs=1e-8), key


def test_calibrate_refuses_what_it_cannot_fit(runs, tmp_path):
    (plain_out, _), _ = runs
    with pytest.raises(HyenaDNAError, match="not a finished fine-tuning run"):
        run_calibrate(str(tmp_path))
    run = tmp_path / "run"
    shutil.copytree(plain_out, run)
    (run / "config.yaml").write_text("data: [\n")
    with pytest.raises(HyenaDNAError, match=r"config.yaml: not the configuration of a fine-tuning run"):
        run_calibrate(str(run))
    data = tmp_path / "values.csv"
    rng = np.random.default_rng(0)
    data.write_text("sequence,label\n" + "".join(f"{''.join(rng.choice(list('ACGT'), 20))},{i}\n" for i in range(20)))
    with pytest.raises(HyenaDNAError, match="--tuning.calibrate is for classifiers.*regression"):
        run_finetune(LabelledData(train=str(data), task="regression"), ModelOptions("cnn"),
                     tuning=FinetuneOptions(calibrate=True, baseline=False), output=str(tmp_path / "reg"))  # fmt: skip
    assert not (tmp_path / "reg").exists()  # refused before the run folder


def test_a_refused_fit_leaves_the_run_saved_uncalibrated(tmp_path, monkeypatch):
    import hyenadna.pipelines.finetune as finetune_module

    def refuse(*args, **kwargs):
        raise HyenaDNAError("calibration: on the validation split the model's logits rank ['x'] the wrong way round")

    monkeypatch.setattr(finetune_module, "calibrate_on", refuse)
    with pytest.warns(UserWarning, match="saved uncalibrated"):
        result = cnn_run(tmp_path / "run", True, steps=3)
    assert "wrong way round" in result["calibration"]["error"] and "test_calibrated" not in result
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["calibration"] == result["calibration"]
    assert not (tmp_path / "run" / "model" / CALIBRATION_FILE).exists()
    assert load_task_model(tmp_path / "run" / "model").calibration is None


def test_a_validation_split_without_a_class_is_refused_before_training(tmp_path):
    rng = np.random.default_rng(0)
    rows = [("".join(rng.choice(list("ACGT"), 20)), "ab"[i % 2], "train" if i < 30 else "val") for i in range(40)]
    rows = [(s, "a" if split == "val" else y, split) for s, y, split in rows]  # no b in validation
    data = tmp_path / "data.csv"
    data.write_text("sequence,label,split\n" + "".join(f"{s},{y},{split}\n" for s, y, split in rows))
    with pytest.raises(HyenaDNAError, match=r"every class in the validation split; \['b'\]"):
        run_finetune(LabelledData(train=str(data), reader={"split_col": "split"}), ModelOptions("cnn"),
                     tuning=FinetuneOptions(calibrate=True, baseline=False), output=str(tmp_path / "run"))  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_the_command_refits_over_a_damaged_calibration_with_overwrite(runs, tmp_path, capsys):
    from hyenadna.cli import main

    (_, _), (fitted_out, fitted) = runs
    run = tmp_path / "run"
    shutil.copytree(fitted_out, run)
    (run / "model" / CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(HyenaDNAError, match="already calibrated"):
        run_calibrate(str(run))
    capsys.readouterr()
    main(["calibrate", "--run", str(run), "--overwrite", "--device", "cpu"])
    printed = json.loads(capsys.readouterr().out)
    assert_same_fit(printed["calibration"], fitted["calibration"])
    assert load_task_model(run / "model").calibration.scale == printed["calibration"]["scale"]


def _fasta(path: str) -> list[tuple[str, str]]:
    from hyenadna.data.fasta import read_fasta

    return list(read_fasta(path))
