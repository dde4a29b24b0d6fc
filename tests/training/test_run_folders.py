"""Run folders and outputs that behave as a lab expects: a non-empty run folder is refused
unless ``--resume`` or ``--overwrite`` says what to do, the resolved configuration is saved and
reads back, outputs honour the umask, a failed run leaves nothing that blocks the next, and the
command prints only its result on stdout."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import h5py
import pysam
import pytest
import torch
from safetensors.torch import load_file

from hyenadna import HyenaDNAError
from hyenadna.cli import build_parser, main
from hyenadna.data.corpus import GenomeSource
from hyenadna.io.atomic import atomic_write_text, prepare_run_folder, write_run_config
from hyenadna.training.options import ModelOptions, PretrainData, TrainerOptions

REPO = Path(__file__).resolve().parents[2]
LAMBDA = REPO / "data" / "lambda_virus.fa"
EX1_VCF = Path("/usr/share/doc/python-pysam/tests/pysam_data/ex1.vcf.gz")


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True, timeout=600, cwd=REPO, **kwargs
    )


def test_prepare_run_folder_refuses_clears_and_protects(tmp_path):
    run = tmp_path / "run"
    assert prepare_run_folder(run, resume=False, overwrite=False).is_dir()  # fresh
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_text("old")
    (run / "summary.json").write_text("{}")
    with pytest.raises(HyenaDNAError, match="holds an earlier run.*--resume.*--overwrite"):
        prepare_run_folder(run, resume=False, overwrite=False)
    assert prepare_run_folder(run, resume=True, overwrite=False) == run and (run / "summary.json").exists()
    prepare_run_folder(run, resume=False, overwrite=True)
    assert list(run.iterdir()) == []  # no stale last.ckpt survives
    (run / "notes.txt").write_text("mine")
    with pytest.raises(HyenaDNAError, match="files no run writes \\(notes.txt\\)"):
        prepare_run_folder(run, resume=False, overwrite=True)
    assert (run / "notes.txt").exists()


def test_overwrite_clears_a_finished_fine_tune_with_its_test_report(tmp_path):
    """A fine-tune with a test split writes test_predictions.tsv, plots/ and cnn_baseline/ beside
    its model; --overwrite used to refuse that folder as holding "files no run writes"."""
    run = tmp_path / "run"
    for folder in ("model", "plots", "cnn_baseline/model"):
        (run / folder).mkdir(parents=True)
    for name in ("metrics.json", "test_predictions.tsv", "config.yaml", "plots/roc.png"):
        (run / name).write_text("old")
    prepare_run_folder(run, resume=False, overwrite=True)
    assert list(run.iterdir()) == []


def test_run_config_reads_back_through_the_command(tmp_path):
    values = {
        "data": PretrainData(genomes=[GenomeSource(str(LAMBDA), val_fraction=0.1)], length=512, batch_size=4),
        "model": ModelOptions("tiny-1k", {"checkpoint_mixer": True}),
        "trainer": TrainerOptions(max_steps=7, accelerator="cpu", devices=1),
        "output": str(tmp_path / "run"),
        "seed": 3,
    }
    path = write_run_config(tmp_path, values)
    parser = build_parser(["pretrain"])
    cfg = parser.parse_args(["pretrain", "--config", str(path)])
    got = parser.instantiate(cfg)["pretrain"]
    assert asdict(got.data) == asdict(values["data"]) and asdict(got.model) == asdict(values["model"])
    assert asdict(got.trainer) == asdict(values["trainer"])
    assert got.seed == 3 and got.output == values["output"] and got.resume is False


def test_outputs_honour_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "shared.txt", "x")
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600


def test_version_help_and_bare_boolean_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == "hyenadna 0.1.0"
    for name, sub in build_parser()._subcommands_action._name_parser_map.items():
        missing = [a.dest for a in sub._actions if not a.help]
        assert not missing, f"{name}: options without help: {missing}"


@pytest.mark.slow
def test_pretrain_run_folder_end_to_end(tmp_path):
    """The command twice into one folder, --overwrite bare, the saved config reproducing the
    run elsewhere, and stdout holding nothing but the JSON result."""
    run, again = tmp_path / "run", tmp_path / "again"
    args = ["pretrain", "--config", "configs/demo_pretrain.yaml", "--data.length_warmup", "[]",
            "--data.samples_per_epoch", "24", "--trainer.max_steps", "3",
            "--trainer.checkpoint_every_n_steps", "2"]  # fmt: skip
    first = cli(*args, "--output", str(run))
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout)["steps"] == 3  # stdout: the result alone; progress went to stderr
    assert "Tip:" not in first.stderr and "Epoch 0" in first.stderr
    refused = cli(*args, "--output", str(run))
    assert refused.returncode == 2 and "pass --resume to continue it, --overwrite to replace it" in refused.stderr
    replaced = cli(*args, "--output", str(run), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "step2.ckpt"]  # no last-v1
    reproduced = cli("pretrain", "--config", str(run / "config.yaml"), "--output", str(again))
    assert reproduced.returncode == 0, reproduced.stderr[-2000:]
    first_weights = load_file(run / "model" / "model.safetensors")
    second_weights = load_file(again / "model" / "model.safetensors")
    assert all(torch.equal(first_weights[k], second_weights[k]) for k in first_weights)


@pytest.mark.slow
def test_predict_embed_and_score_outputs(tmp_path, real):
    """predict refuses an existing output; embed documents its datasets; score's VCF is
    bgzipped and indexed; a failed score leaves no .partial."""
    fasta = tmp_path / "s.fa"
    fasta.write_text(">a\nACGTACGTAAGG\n>b\nGGCCTTAA\n")
    out = tmp_path / "e.h5"
    done = cli("embed", "--model", "tiny-1k", "--input.fasta", str(fasta), "--output", str(out), "--progress", "false")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["records"] == 2
    with h5py.File(out) as h5:
        assert "description" in h5.attrs["format"] and "input order" in h5["embeddings"].attrs["description"]
        assert all(h5[name].attrs["description"] for name in h5)
    vcf_out = tmp_path / "scored.vcf.gz"
    scored = cli("score", "--model", "tiny-1k", "--vcf", str(EX1_VCF), "--genome", str(real.ex1_fa),
                 "--window", "64", "--output", str(tmp_path / "s.tsv"), "--vcf_output", str(vcf_out),
                 "--progress", "false")  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]
    with pysam.VariantFile(str(vcf_out)) as variants:
        contig = next(iter(variants.header.contigs))
        assert list(variants.fetch(contig))  # a region query needs the .tbi
    typo = cli("score", "--model", "tiny-1k", "--vcf", str(tmp_path / "missing.vcf"), "--genome", str(real.ex1_fa),
               "--output", str(tmp_path / "t.tsv"))  # fmt: skip
    assert typo.returncode != 0 and not (tmp_path / "t.tsv.partial").exists()
