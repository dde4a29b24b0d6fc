"""The Triton kernels compiled ahead of time for real GPUs, on a CPU-only machine.

The interpreter that runs the kernel tests on a CPU checks none of the compiler's rules: a
kernel that reads a module global that is not a ``tl.constexpr``, or whose tiles need more
shared memory than a multiprocessor has, passes there and fails on the card (both happened:
issue 31). Here every specialisation the launchers can produce, for lengths 1 to the kernels'
2M-base limit, float32/bfloat16/float16, forward and backward, is compiled by Triton's own
compiler for sm_89 and sm_90 and held to each one's shared-memory limit
(:mod:`hyenadna.ops.triton.compile_check`; ``make compile-check`` prints the table, sm_80
included). sm_80 is left to that command: its 213 specialisations asked for the same shared
memory as sm_89's, byte for byte (Triton 3.9, 2026-12-05), and its limit is the larger, so what
fits sm_89 fits sm_80; it would add two minutes to CI. Run it again after a Triton upgrade.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compiling_env(*paths: Path) -> dict:
    """The environment of a compiling subprocess: no interpreter (it would hand the compiler
    interpreted functions), the repository importable."""
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_DEFAULT_FP_FUSION": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, paths), env.get("PYTHONPATH", "")])
    return env


def test_the_compile_check_catches_a_global_that_is_not_constexpr(tmp_path):
    """The regression class of issue 31's ``GRAD_H``: the same kernel reading a plain module
    global fails to compile for sm_90, reading a ``tl.constexpr`` one compiles."""
    (tmp_path / "probe_kernels.py").write_text(
        textwrap.dedent("""
        import triton
        import triton.language as tl

        PLAIN = 1
        CONSTANT = tl.constexpr(1)

        @triton.jit
        def plain(out, MODE: tl.constexpr):
            tl.store(out, 1.0 if MODE == PLAIN else 0.0)

        @triton.jit
        def constant(out, MODE: tl.constexpr):
            tl.store(out, 1.0 if MODE == CONSTANT else 0.0)
    """)
    )
    script = textwrap.dedent("""
        from hyenadna.ops.triton.compile_check import Specialisation, compile_for_target
        for name in ("plain", "constant"):
            spec = Specialisation("probe_kernels", name, (("out", "*fp32"), ("MODE", "constexpr")), (("MODE", 1),))
            try:
                print(name, "compiled", compile_for_target(spec, 90))
            except Exception as error:
                print(name, "refused", type(error).__name__, str(error).replace(chr(10), " ")[-300:])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env=compiling_env(tmp_path))  # fmt: skip
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["plain"].startswith("refused CompilationError"), proc.stdout + proc.stderr[-2000:]
    assert "NON_CONSTEXPR_GLOBALS" in lines["plain"]
    assert lines["constant"].startswith("compiled"), proc.stdout + proc.stderr[-2000:]


@pytest.mark.slow
def test_every_kernel_specialisation_compiles_and_fits_sm89_sm90(tmp_path):
    """About 430 compilations on two processes (some four minutes): each compiles, and each
    asks for no more shared memory than its target holds."""
    report = tmp_path / "compile_check.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hyenadna.ops.triton.compile_check", "--targets", "89", "90", "--jobs", "2",
         "--json", str(report)],
        capture_output=True, text=True, timeout=2400, env=compiling_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    rows = json.loads(report.read_text())
    assert all(row["ok"] for row in rows)
    assert {row["target"] for row in rows} == {89, 90}
    kernels = {row["kernel"].split("[")[0] for row in rows}
    assert kernels == {"_gated_conv_fwd", "_gated_conv_bwd", "_fused_fwd", "_fused_bwd", "_outer_fwd", "_inner_conv",
                       "_inner_bwd", "_outer_inv", "_short_conv_fwd", "_short_conv_bwd"}  # fmt: skip
    assert len(rows) >= 2 * 200  # every plan from 1 to 2M bases, three dtypes, both directions
    assert {t for row in rows for t in ("*fp32", "*bf16", "*fp16") if t in row["kernel"]} == {"*fp32", "*bf16", "*fp16"}
