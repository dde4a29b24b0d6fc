"""What a run records of the process it ran in (``runtime`` in metrics.json / summary.json)."""

from __future__ import annotations

from pathlib import Path

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
    assert facts["cpu_amx"] in (True, False, None)
    if facts["cpu_amx"] and Path("/proc/cpuinfo").exists():  # torch's probe never claims what the kernel lacks
        assert "amx_tile" in Path("/proc/cpuinfo").read_text().split()
    assert "accelerator" not in facts and "processes" not in facts  # no trainer given


def test_a_trainer_adds_its_accelerator_process_count_and_precision(tmp_path):
    trainer = L.Trainer(accelerator="cpu", devices=1, default_root_dir=tmp_path, logger=False, precision="bf16-mixed",
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    facts = runtime_facts(trainer)
    assert (facts["accelerator"], facts["processes"], facts["precision"]) == ("cpu", 1, "bf16-mixed")


def test_a_distribution_that_is_not_installed_has_no_version():
    assert distribution_version("hyenadna-no-such-distribution") is None
    assert distribution_version("torch") == torch.__version__
