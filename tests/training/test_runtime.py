"""What a run records of the process it ran in (``runtime`` in metrics.json / summary.json)."""

from __future__ import annotations

import lightning as L
import torch

import hyenadna
from hyenadna.training.runtime import distribution_version, runtime_facts


def test_the_facts_are_this_process_s():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        facts = runtime_facts()
    finally:
        torch.set_num_threads(threads)
    assert facts["threads"] == 1  # read when asked, not when imported
    assert facts["hyenadna"] == hyenadna.__version__ and facts["torch"] == torch.__version__
    assert facts["lightning"] == L.__version__ and facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert facts["allocator"] in ("jemalloc", "system") and facts["cuda"] == torch.cuda.is_available()
    assert "accelerator" not in facts and "processes" not in facts  # no trainer given


def test_a_trainer_adds_its_accelerator_and_process_count(tmp_path):
    trainer = L.Trainer(accelerator="cpu", devices=1, default_root_dir=tmp_path, logger=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    facts = runtime_facts(trainer)
    assert (facts["accelerator"], facts["processes"]) == ("cpu", 1)


def test_a_distribution_that_is_not_installed_has_no_version():
    assert distribution_version("hyenadna-no-such-distribution") is None
    assert distribution_version("torch") == torch.__version__
