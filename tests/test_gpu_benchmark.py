"""benchmarks/gpu_vs_attention.py is meant for a GPU (``make gpu-check``); ``--smoke`` runs its
whole flow at tiny shapes on the CPU (the Triton kernels in the interpreter), so a session that
is lent a GPU does not find it broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_vs_attention.py"


@pytest.mark.slow
def test_gpu_benchmark_runs_tiny_on_the_cpu(tmp_path):
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_vs_attention_cpu.json").read_text())
    rows = {(r["level"], r["mode"], r["impl"], r["length"]): r for r in result["rows"]}
    impls = {"auto", "graphed", "torch", "triton", "ref", "sdpa_flash", "sdpa_math"}
    assert {impl for _, _, impl, _ in rows} == impls
    assert {(level, mode) for level, mode, _, _ in rows} == {
        (level, mode) for level in ("model", "operator") for mode in ("train", "inference")
    }
    measured = [r for r in result["rows"] if "ms" in r]
    assert measured and all(r["ms"] > 0 and r["tokens_per_s"] > 0 for r in measured)
    # each skipped row says why; graphs are for model inference only
    assert all("skipped" in r for r in result["rows"] if r["impl"] == "graphed" and r["mode"] == "train")
    assert rows[("model", "inference", "graphed", 1030)]["rel_err_vs_eager"] == 0.0
    assert rows[("model", "train", "triton", 1030)]["route"] == "triton"
    assert all(isinstance(e["rel_err"], float) and e["rel_err"] < 1e-4 for e in result["errors_vs_fp64"])
    assert (tmp_path / "gpu_vs_attention_cpu.png").exists()
    assert "operator error vs float64 reference" in proc.stdout
