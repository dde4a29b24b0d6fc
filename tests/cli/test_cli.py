from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from cli_errors import printed_config

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.analysis.lm_loss import fasta_lm_loss, window_loss_sum
from hyenadna.cli import main
from hyenadna.data.tokenizer import CharacterTokenizer

REPO = Path(__file__).resolve().parents[2]
LAMBDA = REPO / "data" / "lambda_virus.fa"


def test_loss_on_bundled_lambda_genome(capsys):
    main(["loss", "--model", "tiny-1k", "--fasta", str(LAMBDA), "--window", "1024"])
    out = capsys.readouterr().out
    assert "NC_001416.1" in out and "48,502" in out
    bits = float(out.splitlines()[2].split()[-1])
    assert 1.0 < bits < 5.0  # an untrained model is near log2(16) = 4 bits per base


def test_fasta_loss_equals_direct_cross_entropy(tmp_path):
    torch.manual_seed(0)
    model = HyenaDNA(HyenaConfig(d_model=16, n_layer=1, l_max=64, filter_order=8)).eval()
    seq = "ACGTTGCANNACGGTACCA" * 7  # 133 bases: 2 windows of 64 and a tail of 5
    (tmp_path / "s.fa").write_text(">s1 test\n" + seq + "\n")
    (result,) = fasta_lm_loss(model, tmp_path / "s.fa", window=64)
    ids = CharacterTokenizer().encode(seq)
    total, count = 0.0, 0
    for start in (0, 64, 128):
        window = ids[start : start + 64]
        with torch.no_grad():  # hyenadna.inference.likelihood: the next-base distribution over A/C/G/T (ids 7..10)
            logp = torch.log_softmax(model(window[None])[0, :, 7:11], -1)
        for t in range(len(window) - 1):
            if 7 <= window[t + 1] <= 10:
                total -= float(logp[t, window[t + 1] - 7])
                count += 1
    assert result.scored == count and math.isclose(result.nats_per_base, total / count, rel_tol=1e-5)
    assert window_loss_sum(model, ids[:64][None])[1] == sum(1 for b in seq[1:64] if b in "ACGT")


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "bad.fa").write_text("ACGT\n>x\nAC\n")
    for args, message in [
        (["loss", "--fasta", str(tmp_path / "bad.fa")], "bad.fa, line 1: sequence before the first '>' header"),
        (["loss", "--model", "huge-10m", "--fasta", str(LAMBDA)], "unknown model 'huge-10m'"),
        (["loss", "--fasta", str(LAMBDA), "--window", "5000"], "window must lie in 2..1026"),
    ]:
        proc = subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("allocator", ["jemalloc", "system"])
def test_console_script_info_runs_under_the_chosen_allocator(allocator):
    """The command re-executes itself under jemalloc (installed by .ci/install-test-data)
    unless HYENADNA_ALLOCATOR=system; the arguments survive the re-execution."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF", "HYENADNA_ALLOCATOR_SET")}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "hyenadna"), "info", "--model", "small-32k"],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "HYENADNA_ALLOCATOR": allocator},
    )
    result = json.loads(proc.stdout)
    assert result["l_max"] == 32770 and result["parameters"] > 0
    assert result["runtime"]["allocator"] == allocator


@pytest.mark.slow
def test_python_dash_m_hyenadna_cli_is_the_command_under_jemalloc_too():
    """``python -m hyenadna.cli`` (what benchmarks/tasks.py runs) re-executes as itself."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF", "HYENADNA_ALLOCATOR_SET")}
    command = [sys.executable, "-m", "hyenadna.cli", "info", "--model", "tiny-32k-chr20"]
    env["HYENADNA_ALLOCATOR"] = "jemalloc"
    proc = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    result = json.loads(proc.stdout)
    assert result["l_max"] == 32770 and result["runtime"]["allocator"] == "jemalloc"


RECIPES = sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "configs" / "tasks").rglob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_recipe_parses(recipe, capsys):
    finetune = "finetune" in recipe.name or "tasks" in recipe.parts
    command = "embed" if "embed" in recipe.name else "finetune" if finetune else "pretrain"
    assert "output:" in printed_config(capsys, [command, "--config", str(recipe)])


SEARCHES = [["finetune.yaml"], ["finetune.yaml", "tf_oct4_mafk_start.yaml"]] + [
    [path.name]
    for path in sorted((REPO / "configs" / "search").glob("*.yaml"))
    if path.name != "finetune.yaml" and not path.name.endswith("_start.yaml")
]


@pytest.mark.parametrize("search", SEARCHES, ids=lambda names: "+".join(names))
def test_every_search_parses_after_a_task_recipe(search, capsys):
    """The search configs are given after a task recipe; later ones add to earlier ones. A task's
    own search (``<task>.yaml``, or ``cnn_<task>.yaml`` for its CNN) follows that task's recipe; a
    comparison (``<task>_heads.yaml``: only enqueued trials) follows it too."""
    tasks = [name.removeprefix("cnn_").removesuffix("_heads.yaml").removesuffix(".yaml") for name in search]
    own = [task for task in tasks if (REPO / "configs" / "tasks" / f"{task}.yaml").is_file()]
    task = own[0] if own else "tf_oct4_mafk"
    configs = [arg for name in search for arg in ("--config", str(REPO / "configs" / "search" / name))]
    recipe = str(REPO / "configs" / "tasks" / f"{task}.yaml")
    printed = yaml.safe_load(printed_config(capsys, ["tune", "--config", recipe, *configs]))
    options = printed["search"]
    if options["trials"] == len(options["enqueue"]):  # a comparison: every trial a recipe named in advance
        assert all(sorted(point) == sorted(options["space"]) for point in options["enqueue"])
    else:
        assert options["space"]["optim.lr"]["log"] and options["trials"] >= 8
    assert bool(printed["search"]["enqueue"]) == (search != ["finetune.yaml"])
    assert (printed["model"]["name_or_path"] == "cnn") == search[0].startswith("cnn_")
