"""Steady-state training speed as a run sees it: a Lightning callback that times each training
step from the end of the one before (so data loading, the step, the optimiser and per-step
logging all count), leaves out the first steps (start-up, allocator and FFT-plan warm-up) and
any interval that held validation or a checkpoint save, and reports tokens per second in the
run's summary (``throughput`` of ``summary.json`` / ``metrics.json``)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from lightning.pytorch.callbacks import Callback


class StepTimer(Callback):
    """Times training steps (module docstring); :meth:`summary` gives the figures."""

    def __init__(self, skip: int = 3) -> None:
        self.skip = skip
        self.seconds: list[float] = []
        self.tokens: list[int] = []
        self._last: float | None = None
        self._seen = 0

    def _interrupt(self, *args: Any, **kwargs: Any) -> None:
        self._last = None  # the next interval holds other work: not timed

    on_validation_start = on_save_checkpoint = on_train_epoch_start = _interrupt

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        self._seen += 1
        if self._last is not None and self._seen > self.skip:
            self.seconds.append(now - self._last)
            self.tokens.append(int(batch["input_ids"].numel()))
        self._last = now

    def summary(self) -> dict[str, float]:
        """Timed steps, their median duration and tokens per second over them (empty if none)."""
        if not self.seconds:
            return {}
        return {
            "timed_steps": len(self.seconds),
            "median_step_seconds": statistics.median(self.seconds),
            "tokens_per_s": sum(self.tokens) / sum(self.seconds),
        }
