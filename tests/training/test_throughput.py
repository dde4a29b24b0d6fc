"""The training runs' own speed figure (hyenadna.training.throughput.StepTimer)."""

from __future__ import annotations

import time

import torch

from hyenadna.training.throughput import StepTimer


def test_step_timer_skips_start_up_and_intervals_holding_other_work():
    timer = StepTimer(skip=2)
    batch = {"input_ids": torch.zeros(4, 50, dtype=torch.long)}

    def step(pause: float = 0.002) -> None:
        time.sleep(pause)
        timer.on_train_batch_end(None, None, None, batch, 0)

    for _ in range(4):  # steps 1-2 skipped; 3 and 4 timed
        step()
    timer.on_validation_start(None, None)
    step(0.05)  # follows validation: not timed
    step()
    timer.on_save_checkpoint(None, None, {})
    step(0.05)  # follows a checkpoint save: not timed
    summary = timer.summary()
    assert summary["timed_steps"] == 3
    assert 0.002 <= summary["median_step_seconds"] < 0.05
    assert 200 * 3 / 0.05 < summary["tokens_per_s"] < 200 / 0.002
    assert StepTimer().summary() == {}
