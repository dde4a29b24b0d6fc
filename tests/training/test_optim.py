"""The learning-rate schedule spans the optimiser steps a run really takes: with epochs as the
limit, gradient accumulation, on one process or two (gloo, as tests/pipelines/test_distributed.py), for
fine-tuning and pretraining; and a run with no length is refused before it starts."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hyenadna import load
from hyenadna.data.corpus import GenomeSource
from hyenadna.errors import HyenaDNAError
from hyenadna.pipelines.finetune import run_finetune
from hyenadna.pipelines.pretrain import run_pretrain
from hyenadna.training.optim import OptimOptions, warmup_cosine
from hyenadna.training.options import FinetuneOptions, LabelledData, ModelOptions, PretrainData, TrainerOptions

REPO = Path(__file__).resolve().parents[2]
TINY = {"n_layer": 1, "d_model": 16}
OPTIM = OptimOptions(lr=1e-3, warmup_steps=1, min_lr_ratio=0.1)


def labelled_fasta(folder: Path, per_class: int = 12) -> dict[str, str]:
    rng = random.Random(0)
    files = {}
    for label in ("a", "b"):
        path = folder / f"{label}.fa"
        path.write_text("".join(f">{label}{i}\n{''.join(rng.choices('ACGT', k=32))}\n" for i in range(per_class)))
        files[label] = str(path)
    return files


def final_schedule(run: Path) -> tuple[int, float]:
    """(scheduler steps taken, the head's learning rate after the last one) from the run's last checkpoint."""
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["lr_schedulers"][0]
    return state["last_epoch"], state["_last_lr"][0]


def test_a_length_asked_late_gives_the_same_schedule_and_is_asked_once():
    asked = []

    def optimizer() -> torch.optim.Optimizer:
        return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)

    late, fixed = warmup_cosine(optimizer(), OPTIM, lambda: asked.append(1) or 9), warmup_cosine(optimizer(), OPTIM, 9)
    rates = []
    for step in range(12):
        rates.append((late.get_last_lr(), fixed.get_last_lr()))
        assert asked == ([] if step <= OPTIM.warmup_steps else [1]), step  # not before the loaders are set up
        late.step(), fixed.step()
    assert all(a == b for a, b in rates) and rates[9][0] == [OPTIM.min_lr_ratio]


def test_a_run_without_a_length_is_refused():
    with pytest.raises(HyenaDNAError, match="set --trainer.max_steps or --trainer.max_epochs"):
        TrainerOptions(max_steps=-1)


def test_finetune_schedule_ends_at_its_last_optimiser_step(tmp_path):
    """24 sequences, batches of 4, two batches a step, two epochs: 2 * ceil(6 / 2) = 6 steps."""
    trainer = TrainerOptions(max_steps=-1, max_epochs=2, accumulate_grad_batches=2, checkpoint_every_n_steps=1,
                             accelerator="cpu", devices=1, progress_bar=False)  # fmt: skip
    data = LabelledData(train=labelled_fasta(tmp_path), val_fraction=0, batch_size=4)
    tuning = FinetuneOptions(baseline=False, patience=0)
    model = ModelOptions("tiny-1k", overrides=TINY)
    result = run_finetune(data, model, tuning=tuning, optim=OPTIM, trainer=trainer, output=str(tmp_path / "run"))
    assert result["steps"] == 6 and final_schedule(tmp_path / "run") == (6, pytest.approx(OPTIM.lr * 0.1))


def pretrain_two_epochs(out: Path, resume: bool = False) -> dict:
    """Lambda phage, 16 windows an epoch in batches of 4, two epochs: 8 steps, no step limit."""
    data = PretrainData(genomes=[GenomeSource(REPO / "data" / "lambda_virus.fa")], length=64, batch_size=4,
                        samples_per_epoch=16)  # fmt: skip
    trainer = TrainerOptions(max_steps=-1, max_epochs=2, checkpoint_every_n_steps=1, accelerator="cpu", devices=1,
                             progress_bar=False)  # fmt: skip
    return run_pretrain(data, ModelOptions("tiny-1k", overrides=TINY), OPTIM, trainer, str(out), resume=resume)


def test_pretrain_schedule_spans_its_epochs(tmp_path):
    """Without a step limit the schedule used to span -1 steps."""
    assert pretrain_two_epochs(tmp_path)["steps"] == 8
    assert final_schedule(tmp_path) == (8, pytest.approx(OPTIM.lr * 0.1))


def test_an_epoch_limited_pretrain_resumes_mid_epoch_bit_for_bit(tmp_path):
    """The schedule's length is asked after a resumed run has restored its place in the epoch:
    asked as the optimiser is built, it set the loader up first, and the run redrew step 1's windows."""
    pretrain_two_epochs(tmp_path / "straight")
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    (tmp_path / "resumed" / "checkpoints" / "last.ckpt").write_bytes(
        (tmp_path / "straight" / "checkpoints" / "step2.ckpt").read_bytes()
    )
    assert pretrain_two_epochs(tmp_path / "resumed", resume=True)["steps"] == 8
    straight, resumed = (load(tmp_path / run / "model").state_dict() for run in ("straight", "resumed"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


@pytest.mark.slow
def test_finetune_schedule_on_two_processes_spans_each_process_share(tmp_path):
    """Each of two processes takes 12 of the 24 sequences: 3 batches, 2 steps an epoch, 4 steps
    in all; a schedule computed for one process would span 6 and end above its floor."""
    args = ["finetune", "--data.train", json.dumps(labelled_fasta(tmp_path)), "--data.val_fraction", "0",
            "--data.batch_size", "4", "--model.overrides", json.dumps(TINY), "--tuning.baseline", "false",
            "--tuning.patience", "0", "--optim.lr", "0.001", "--optim.warmup_steps", "1", "--trainer.max_steps", "-1",
            "--trainer.max_epochs", "2", "--trainer.accumulate_grad_batches", "2", "--trainer.checkpoint_every_n_steps",
            "1", "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu",
            "--trainer.progress_bar", "false", "--output", str(tmp_path / "run")]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True, timeout=300,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in proc.stdout + proc.stderr
    assert final_schedule(tmp_path / "run") == (4, pytest.approx(1e-4))
