"""Pretraining end to end on real genomes: resume, exact continuation, DDP on two CPU processes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hyenadna import HyenaDNAError, load
from hyenadna.data.corpus import GenomeSource
from hyenadna.data.datamodules import PretrainDataModule
from hyenadna.data.windows import LengthStage
from hyenadna.pipelines.pretrain import run_pretrain
from hyenadna.training.options import ModelOptions, PretrainData, TrainerOptions

REPO = Path(__file__).resolve().parents[2]
LAMBDA = REPO / "data" / "lambda_virus.fa"
NO_DROPOUT = {"embed_dropout": 0.0, "resid_dropout": 0.0}


def tiny_trainer(steps: int, **kw) -> TrainerOptions:
    return TrainerOptions(max_steps=steps, accelerator="cpu", devices=1, progress_bar=False, **kw)


def test_length_warmup_keeps_tokens_per_step(real):
    dm = PretrainDataModule(
        [GenomeSource(LAMBDA)],
        length=1024,
        batch_size=4,
        samples_per_epoch=40,
        length_warmup=[LengthStage(256, 2), LengthStage(512, 1)],
    )
    assert [dm.stage(e) for e in range(4)] == [(256, 16, 160), (256, 16, 160), (512, 8, 80), (1024, 4, 40)]


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    genomes = [GenomeSource(LAMBDA, val_fraction=0.1)]
    data = PretrainData(genomes=genomes, length=128, batch_size=4, samples_per_epoch=16)
    model = ModelOptions("tiny-1k", overrides=NO_DROPOUT)
    full, part = tiny_trainer(6, limit_val_batches=2), tiny_trainer(3, checkpoint_every_n_steps=3)
    straight = run_pretrain(data, model, trainer=full, output=str(tmp_path / "a"))
    run_pretrain(data, model, trainer=part, output=str(tmp_path / "b"))
    resumed = run_pretrain(data, model, trainer=full, output=str(tmp_path / "b"), resume=True)
    assert straight["steps"] == resumed["steps"] == 6
    a, b = load(tmp_path / "a" / "model"), load(tmp_path / "b" / "model")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name  # step 3 is mid-epoch: the resumed run skipped what it had seen


def test_pretrain_deepens_a_saved_model_and_resumes_the_grown_run(tmp_path):
    genomes = [GenomeSource(LAMBDA, val_fraction=0.1)]
    data = PretrainData(genomes=genomes, length=128, batch_size=4, samples_per_epoch=16, val_max_windows=4)
    small = {"n_layer": 1, "d_model": 32, **NO_DROPOUT}
    run_pretrain(data, ModelOptions("tiny-1k", overrides=small), trainer=tiny_trainer(2), output=str(tmp_path / "a"))
    start = load(tmp_path / "a" / "model")
    grown = ModelOptions(str(tmp_path / "a" / "model"), deepen_to=3)
    part = tiny_trainer(2, checkpoint_every_n_steps=2)
    run_pretrain(data, grown, trainer=part, output=str(tmp_path / "b"))
    recorded = (tmp_path / "b" / "config.yaml").read_text()
    assert "deepen_to: 3" in recorded
    ungrown = ModelOptions(str(tmp_path / "a" / "model"))
    with pytest.raises(HyenaDNAError, match=r"last.ckpt holds another model than the options build.*deepen_to"):
        run_pretrain(data, ungrown, trainer=tiny_trainer(4), output=str(tmp_path / "b"), resume=True)
    assert (tmp_path / "b" / "config.yaml").read_text() == recorded  # the record of what trained stands
    resumed = run_pretrain(data, grown, trainer=tiny_trainer(4), output=str(tmp_path / "b"), resume=True)
    assert resumed["steps"] == 4
    model = load(tmp_path / "b" / "model")
    assert model.config.n_layer == 3 and model.config.d_model == 32
    # the old block sits first and trained on; the new ones left the identity
    assert not torch.equal(model.blocks[0].mixer.in_proj.weight, start.blocks[0].mixer.in_proj.weight)
    assert model.blocks[1].mlp.fc2.weight.abs().max() > 0
    shallower = ModelOptions(str(tmp_path / "b" / "model"), deepen_to=2)
    with pytest.raises(HyenaDNAError, match="--model.deepen_to 2: cannot deepen a model of 3 blocks"):
        run_pretrain(data, shallower, trainer=tiny_trainer(2), output=str(tmp_path / "c"))
    assert not (tmp_path / "c").exists()


def test_bf16_mixed_on_the_cpu_trains_through_the_fused_functions(tmp_path, monkeypatch):
    """Lightning's ``bf16-mixed`` on a CPU: every layer's fused operator and MLP run with their
    products in bfloat16 (float32 runs pass none), the weights stay float32, and six AdamW steps
    from the same start move them as the float32 run's steps do, to within bfloat16's rounding."""
    from hyenadna.ops import fused_operator as mixer_module
    from hyenadna.ops import mlp as mlp_module
    from hyenadna.training.optim import OptimOptions

    dtypes = []
    for cls in (mixer_module._HyenaMixer, mlp_module._GeluMlp):
        monkeypatch.setattr(cls, "apply", lambda *a, _o=cls.apply: dtypes.append(a[-1]) or _o(*a))
    torch.manual_seed(0)
    load("tiny-1k", **NO_DROPOUT).save_pretrained(tmp_path / "start")
    start = load(tmp_path / "start").state_dict()
    genomes = [GenomeSource(LAMBDA, val_fraction=0.1)]
    data = PretrainData(genomes=genomes, length=128, batch_size=4, samples_per_epoch=24, val_max_windows=4)
    model, optim = ModelOptions(str(tmp_path / "start")), OptimOptions(lr=3e-3, warmup_steps=0)
    full = run_pretrain(data, model, optim, tiny_trainer(6), output=str(tmp_path / "a"))
    assert dtypes and set(dtypes) == {None}
    dtypes.clear()
    low = run_pretrain(data, model, optim, tiny_trainer(6, precision="bf16-mixed"), output=str(tmp_path / "b"))
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert (full["runtime"]["precision"], low["runtime"]["precision"]) == ("32-true", "bf16-mixed")
    a, b = load(tmp_path / "a" / "model").state_dict(), load(tmp_path / "b" / "model").state_dict()
    assert all(b[name].dtype == torch.float32 for name in b)
    moved = {
        name: (a[name] - start[name], b[name] - start[name]) for name in start if not torch.equal(a[name], start[name])
    }
    full_moves, low_moves = (torch.cat([m[i].flatten() for m in moved.values()]) for i in (0, 1))
    assert len(moved) > 10 and full_moves.norm() > 1e-2  # six real steps
    assert (low_moves - full_moves).norm() < 0.1 * full_moves.norm()


def test_train_eval_windows_score_fixed_training_windows_beside_the_held_out_ones(tmp_path):
    """``data.train_eval_windows`` adds a second validation loader: the summary's
    ``val/train_bits_per_base`` is the saved model's score on that many strided windows of the
    training split (as ``hyenadna heldout --split train`` takes them), ``val/gap`` the held-out
    figure minus it; without the option validation keeps one loader and neither metric."""
    from hyenadna.pipelines.heldout import heldout_windows, model_bits_per_base

    genomes = [GenomeSource(LAMBDA, val_fraction=0.2)]
    data = PretrainData(genomes=genomes, length=128, batch_size=4, samples_per_epoch=16, val_max_windows=6)
    model = ModelOptions("tiny-1k", overrides={"n_layer": 1, "d_model": 32})
    plain = run_pretrain(data, model, trainer=tiny_trainer(4), output=str(tmp_path / "a"))
    assert "val/bits_per_base" in plain and not any(k in plain for k in ("val/train_bits_per_base", "val/gap"))
    checked = run_pretrain(replace(data, train_eval_windows=10), model, trainer=tiny_trainer(4),
                           output=str(tmp_path / "b"))  # fmt: skip
    net = load(tmp_path / "b" / "model").eval()
    section = {"genomes": [{"path": str(LAMBDA), "val_fraction": 0.2}], "length": 128}
    expected = {split: model_bits_per_base(net, heldout_windows(section, split, cap)[1])[0]
                for split, cap in (("train", 10), ("val", 6))}  # fmt: skip
    assert checked["val/train_bits_per_base"] == pytest.approx(expected["train"], abs=1e-5)
    assert checked["val/bits_per_base"] == pytest.approx(expected["val"], abs=1e-5)
    assert checked["val/gap"] == pytest.approx(expected["val"] - expected["train"], abs=1e-5)
    for key in ("val/loss", "val/bits_per_base"):  # the held-out figures are the plain run's
        assert checked[key] == pytest.approx(plain[key], abs=1e-6)
    assert expected["train"] != pytest.approx(expected["val"], abs=1e-3)  # two different sets of bases
    with pytest.raises(HyenaDNAError, match="train_eval_windows"):
        PretrainData(genomes=genomes, train_eval_windows=-1)


@pytest.mark.slow
def test_pretrain_on_human_chr20_and_resume(real, tmp_path):
    data = PretrainData(
        genomes=[GenomeSource(real.chr20, val_fraction=0.02)],
        length=1024,
        batch_size=4,
        samples_per_epoch=64,
        val_max_windows=8,
    )
    out = tmp_path / "run"
    trainer = tiny_trainer(10, checkpoint_every_n_steps=5, val_every_n_steps=10, log_every_n_steps=2)
    first = run_pretrain(data, trainer=trainer, output=str(out))
    assert first["steps"] == 10 and (out / "checkpoints" / "last.ckpt").is_file()
    assert 0.5 < first["val/bits_per_base"] < 4.1
    # steps 4-10 timed, less step 6 (it follows the checkpoint save at step 5)
    assert first["throughput"]["timed_steps"] == 6 and first["throughput"]["tokens_per_s"] > 0
    second = run_pretrain(data, trainer=replace(trainer, max_steps=20), output=str(out), resume=True)
    assert second["steps"] == 20
    before = [r for r in _csv_rows(out / "logs" / "csv" / "version_0" / "metrics.csv") if r.get("train/loss")]
    after = [r for r in _csv_rows(out / "logs" / "csv" / "version_1" / "metrics.csv") if r.get("train/loss")]
    assert before and after
    assert int(before[-1]["step"]) < 10 <= int(after[0]["step"])  # the step count continued
    assert int(after[-1]["step"]) >= 19
    assert second["val/bits_per_base"] < first["val/bits_per_base"]
    reloaded = load(out / "model")
    assert reloaded.config.d_model == 128


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(
        f"""
data:
  genomes: [{{path: {LAMBDA}, val_fraction: 0.1}}]
  length: 256
  batch_size: 4
  samples_per_epoch: 32
  val_max_windows: 8
model:
  name_or_path: tiny-1k
  overrides: {{d_model: 64, n_layer: 2}}
trainer:
  max_steps: 6
  accelerator: cpu
  devices: 2
  strategy: ddp
  progress_bar: false
output: {tmp_path / "run"}
"""
    )
    proc = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "pretrain", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in proc.stderr or "Initializing distributed: GLOBAL_RANK: 1" in proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 6 and "val/loss" in summary
    assert (summary["runtime"]["accelerator"], summary["runtime"]["processes"]) == ("cpu", 2)
    assert load(tmp_path / "run" / "model").config.d_model == 64


@pytest.mark.slow
def test_resume_from_every_step_is_bit_identical_to_the_straight_run(tmp_path):
    """Dropout on, 8 batches an epoch, validation every 5 steps: resuming from the checkpoint
    of any step gives the straight run's final weights bit for bit (the loader keeps the
    epoch's length, loaders draw no global random numbers, the random state is restored)."""
    import shutil

    data = PretrainData(genomes=[GenomeSource(LAMBDA, val_fraction=0.1)], length=64, batch_size=4,
                        samples_per_epoch=32, val_max_windows=4)  # fmt: skip
    model = ModelOptions("tiny-1k")  # the preset's dropout
    trainer = tiny_trainer(12, checkpoint_every_n_steps=1, val_every_n_steps=5, limit_val_batches=1)
    run_pretrain(data, model, trainer=trainer, output=str(tmp_path / "straight"))
    straight = load(tmp_path / "straight" / "model").state_dict()
    for step in range(1, 12):
        out = tmp_path / f"from{step}"
        (out / "checkpoints").mkdir(parents=True)
        shutil.copy(tmp_path / "straight" / "checkpoints" / f"step{step}.ckpt", out / "checkpoints" / "last.ckpt")
        summary = run_pretrain(data, model, trainer=trainer, output=str(out), resume=True)
        assert summary["steps"] == 12
        resumed = load(out / "model").state_dict()
        assert all(torch.equal(straight[k], resumed[k]) for k in straight), f"resumed from step {step}"
