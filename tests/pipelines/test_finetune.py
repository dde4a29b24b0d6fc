"""Fine-tuning end to end on a real TF-binding task (janggu's Oct4 vs MafK peaks), predict, bad inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_errors import error_line, printed_config

from hyenadna import HyenaDNAError
from hyenadna.cli import main
from hyenadna.data.fasta import read_fasta
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.heads.config import HeadOptions
from hyenadna.heads.task_model import SequenceModel
from hyenadna.pipelines.finetune import run_finetune
from hyenadna.pipelines.predict import run_predict
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, TrainerOptions

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "data" / "tf_binding"
TRAIN = {"Oct4": str(TF / "oct4_train.fa"), "MafK": str(TF / "mafk_train.fa")}
TEST = {"Oct4": str(TF / "oct4_test.fa"), "MafK": str(TF / "mafk_test.fa")}


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "run"
    result = run_finetune(
        LabelledData(train=TRAIN, test=TEST, batch_size=32, val_fraction=0.05),
        ModelOptions("tiny-1k"),
        HeadOptions(pooling="mean"),
        FinetuneOptions(backbone_lr_scale=1.0, patience=0),
        trainer=TrainerOptions(max_steps=150, val_every_n_steps=75, accelerator="cpu", devices=1, progress_bar=False),
        output=str(out),
    )
    return out, result


@pytest.mark.slow
def test_finetuning_beats_chance_on_real_tf_binding(finetuned):
    out, result = finetuned
    assert result["labels"] == ["MafK", "Oct4"] and result["split_sizes"]["test"] == 200
    assert result["test"]["auroc"] > 0.7 and result["test"]["mcc"] > 0.25
    assert result["kmer_baseline"]["auroc"] > 0.8  # the baseline is fitted on the same split
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"] == result["test"]
    speed = saved["throughput"]  # steady-state steps: not the first three, none after a validation
    assert 100 < speed["timed_steps"] < 147 and speed["tokens_per_s"] > 0
    runtime = saved["runtime"]  # what reproducing it needs: weights on a CPU depend on the thread count
    assert runtime["threads"] == torch.get_num_threads() and runtime["torch"] == torch.__version__
    assert (runtime["accelerator"], runtime["processes"]) == ("cpu", 1)
    task = json.loads((out / "model" / "task.json").read_text())
    assert task["labels"] == ["MafK", "Oct4"] and task["task"] == "multiclass" and task["train_length"] == 200
    with open(out / "test_predictions.tsv") as fh:  # every test sequence, as `predict` writes them
        predicted = list(csv.DictReader(fh, delimiter="\t"))
    assert len(predicted) == 200 and list(predicted[0]) == ["name", "label", "p_MafK", "p_Oct4", "predicted"]
    accuracy = np.mean([r["predicted"] == r["label"] for r in predicted])
    assert accuracy == pytest.approx(result["test"]["accuracy"])
    for picture in ("roc.png", "pr.png", "confusion.png", "training.png"):  # the plot extra is a test dependency
        assert (out / "plots" / picture).stat().st_size > 1000
    assert saved["report"]["plots"] == [str(out / "plots" / p) for p in ("roc.png", "pr.png", "confusion.png",
                                                                          "training.png")]  # fmt: skip


@pytest.mark.slow
def test_predict_writes_the_models_probabilities(finetuned, tmp_path):
    out, result = finetuned
    tsv = tmp_path / "pred.tsv"
    assert run_predict(str(out / "model"), TEST, str(tsv))["rows"] == 200
    with open(tsv) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert list(rows[0]) == ["name", "label", "p_MafK", "p_Oct4", "predicted"]
    model = SequenceModel.from_pretrained(out / "model").eval()
    records = list(read_fasta(TF / "mafk_test.fa"))[:3]
    tok = CharacterTokenizer()
    with torch.no_grad():
        probs = model.predict_outputs(model(**tok.batch_encode([s for _, s in records], padding_side="right")))
    by_name = {r["name"]: r for r in rows}
    for (name, _), p in zip(records, probs):
        assert by_name[name]["label"] == "MafK"
        assert np.allclose([float(by_name[name]["p_MafK"]), float(by_name[name]["p_Oct4"])], p.numpy(), atol=1e-5)
    accuracy = np.mean([r["predicted"] == r["label"] for r in rows])
    assert accuracy == pytest.approx(result["test"]["accuracy"])
    plain = tmp_path / "plain.tsv"
    run_predict(str(out / "model"), str(TF / "oct4_test.fa"), str(plain))
    assert plain.read_text().splitlines()[0] == "name\tp_MafK\tp_Oct4\tpredicted"


def test_cli_bad_inputs_give_clear_errors(tmp_path, capsys):
    bad_test = tmp_path / "other_tf.fa"
    bad_test.write_text(">r1\nACGTACGT\n")
    cases = [
        (
            ["finetune", "--data.train", json.dumps(TRAIN), "--model.name_or_path", "huge-10m"],
            "unknown model 'huge-10m'",
        ),
        (
            ["finetune", "--data.train", json.dumps(TRAIN), "--data.test", json.dumps({"CTCF": str(bad_test)})],
            f"{bad_test}, line 1 (record 'r1'): unknown label 'CTCF'",
        ),
        (
            ["finetune", "--data.train", json.dumps(TRAIN), "--model.overrides", '{"l_max": 100}'],
            "longer than max_length 100",
        ),
        (["predict", "--model", str(tmp_path), "--input", str(bad_test), "--output", "x.tsv"], "no task.json"),
    ]
    for args, message in cases:
        # a refusal that regressed would train in this process: two steps, not the default thousand
        finetune = ["--output", str(tmp_path / "run"), "--trainer.max_steps", "2"]
        argv = [*args, *finetune] if args[0] == "finetune" else args
        assert message in error_line(capsys, argv)
        assert not (tmp_path / "run" / "metrics.json").exists()


def test_help_explains_options_and_print_config_resolves_yaml(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    help_text = capsys.readouterr().out
    options = ("--data.train", "--head.rc_conjoin", "--tuning.freeze_backbone", "--trainer.devices", "--print_config")
    for option in options:
        assert option in help_text
    assert "average the logits of each sequence and its reverse complement" in " ".join(help_text.split())
    recipe = str(REPO / "configs" / "demo_pretrain.yaml")
    resolved = printed_config(capsys, ["pretrain", "--config", recipe, "--trainer.max_steps", "7"])
    assert "max_steps: 7" in resolved and "path: data/lambda_virus.fa" in resolved


@pytest.mark.slow
def test_finetune_starts_from_a_released_hyenadna_checkpoint(tmp_path):
    from hyena_reference import make_released_state, released_config
    from released_folders import write_released

    from hyenadna import load

    config = released_config(d_model=32, n_layer=2, l_max=256)
    folder = write_released(tmp_path / "released", config, make_released_state(config, seed=3))
    imported = load(folder)
    result = run_finetune(
        LabelledData(train=TRAIN, test=TEST, batch_size=16, val_fraction=0.02),
        ModelOptions(str(folder)),
        tuning=FinetuneOptions(freeze_backbone=True, patience=0, baseline=False),
        trainer=TrainerOptions(max_steps=5, accelerator="cpu", devices=1, progress_bar=False),
        output=str(tmp_path / "run"),
    )
    assert result["steps"] == 5 and "auroc" in result["test"]
    tuned = SequenceModel.from_pretrained(tmp_path / "run" / "model")
    for (name, a), b in zip(imported.state_dict().items(), tuned.backbone.state_dict().values()):
        assert torch.equal(a, b), name  # a frozen backbone is the released one, unchanged


def test_deepening_a_frozen_backbone_is_refused_before_the_run_folder(tmp_path):
    with pytest.raises(HyenaDNAError, match="deepen_to with --tuning.freeze_backbone true"):
        run_finetune(
            LabelledData(train=TRAIN, test=TEST, batch_size=16, val_fraction=0.02),
            ModelOptions("tiny-1k", deepen_to=3),
            tuning=FinetuneOptions(freeze_backbone=True, baseline=False),
            trainer=TrainerOptions(max_steps=2, accelerator="cpu", devices=1, progress_bar=False),
            output=str(tmp_path / "run"),
        )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_shorter_than_its_first_validation_finishes_and_saves(tmp_path):
    """Validation once an epoch, max_steps shorter than an epoch, early stopping on: the run
    used to stop with 'val/mcc not available' and save nothing."""
    result = run_finetune(
        LabelledData(train=TRAIN, test=TEST, batch_size=32, val_fraction=0.05),
        ModelOptions("tiny-1k"),
        tuning=FinetuneOptions(patience=2, baseline=False),
        trainer=TrainerOptions(max_steps=5, val_every_n_steps=0, accelerator="cpu", devices=1, progress_bar=False),
        output=str(tmp_path / "run"),
    )
    assert result["steps"] == 5 and "mcc" in result["test"]
    assert (tmp_path / "run" / "model" / "task.json").is_file() and (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["positional", "conv"])
def test_the_cnn_baseline_runs_beside_any_hyena_head(kind, tmp_path):
    """--tuning.cnn_baseline trains the CNN on the same split with its own dense head: a positional
    or conv head, both strands in every state and a hidden layer, which the CNN refuses, are not passed on
    to it (they were, and the run failed after training, before saving its model)."""
    rng = np.random.default_rng(0)
    rows = [
        ("".join(rng.choice(list("ACGT"), 24)), "ab"[i % 2], ("train", "train", "val", "test")[i % 4])
        for i in range(48)
    ]
    data = tmp_path / "data.csv"
    data.write_text("sequence,label,split\n" + "".join(f"{s},{y},{split}\n" for s, y, split in rows))
    out = tmp_path / "run"
    result = run_finetune(
        LabelledData(train=str(data), reader={"split_col": "split"}, batch_size=8),
        ModelOptions("tiny-1k", {"n_layer": 1, "d_model": 16, "l_max": 64}),
        HeadOptions(kind=kind, bidirectional=True, hidden=8, conv_channels=[4, 4]),
        FinetuneOptions(cnn_baseline=True, baseline=False),
        trainer=TrainerOptions(max_steps=2, accelerator="cpu", devices=1, progress_bar=False),
        output=str(out),
    )
    assert set(result["cnn_baseline"]) >= {"accuracy", "mcc"} and (out / "model" / "task.json").is_file()
    cnn_head = json.loads((out / "cnn_baseline" / "model" / "task.json").read_text())
    assert (cnn_head["kind"], cnn_head["bidirectional"], cnn_head["hidden"]) == ("linear", False, 0)
    assert json.loads((out / "model" / "task.json").read_text())["kind"] == kind
