"""Inference on two CPU processes (Lightning Fabric, gloo): ``embed``, ``score --vcf`` and
``predict`` write what one process writes, in the same order; a rank stopped by SIGTERM leaves
only whole chunks, and ``--resume`` finishes the run to the same file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pysam
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA
from hyenadna.heads.config import HeadConfig
from hyenadna.heads.task_model import SequenceModel

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "data" / "tf_binding"
VT_NORMALIZE = Path("/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz")
TWO = ["--trainer.devices", "2", "--trainer.accelerator", "cpu"]

pytestmark = pytest.mark.slow


def command(*args: str) -> list[str]:
    quiet = [] if args[0] == "loss" else ["--progress", "false"]  # loss shows no progress bar
    return [sys.executable, str(REPO / "cli.py"), *args, *quiet]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(command(*args), capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def embed_args(real, output: Path, *extra: str) -> list[str]:
    """chr20 as 200-base windows over 300 kb (1,500 records), 4 records a chunk."""
    return ["embed", "--model", "tiny-1k", "--output", str(output), "--input.fasta", str(real.chr20),
            "--input.window", "200", "--input.region", "20:30000001-30300000", "--chunk", "4", *extra]  # fmt: skip


def same_embeddings(a: Path, b: Path) -> None:
    with h5py.File(a) as one, h5py.File(b) as two:
        assert sorted(one) == sorted(two)
        for name in one:
            x, y = one[name][...], two[name][...]
            assert x.shape == y.shape, name
            if x.dtype.kind == "f":
                np.testing.assert_allclose(y, x, rtol=0, atol=1e-5, err_msg=name)
            else:
                assert np.array_equal(x, y), name
        assert sorted(one.attrs) == sorted(two.attrs)
        assert all(one.attrs[k] == two.attrs[k] for k in one.attrs)
        assert two.attrs["complete"] and two.attrs["records_done"] == one["embeddings"].shape[0]


@pytest.fixture(scope="module")
def one_process_embeddings(real, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("embed") / "one.h5"
    run(*embed_args(real, out))
    return out


def test_embed_on_two_processes_writes_the_one_process_file(real, one_process_embeddings, tmp_path):
    out = tmp_path / "two.h5"
    proc = run(*embed_args(real, out, *TWO))
    assert json.loads(proc.stdout)["processes"] == 2
    assert "GLOBAL_RANK: 1" in proc.stdout + proc.stderr
    same_embeddings(one_process_embeddings, out)
    assert not (tmp_path / "two.h5.parts").exists()
    with h5py.File(out) as h5:
        assert h5["embeddings"].shape[0] == 1500 and h5["names"].asstr()[0] == "20:30000001-30000200"


def test_per_base_embeddings_on_two_processes(real, tmp_path):
    args = ["--input.region", "20:30000001-30004000", "--per_token", "true"]
    run(*embed_args(real, tmp_path / "one.h5", *args))
    run(*embed_args(real, tmp_path / "two.h5", *args, *TWO))
    same_embeddings(tmp_path / "one.h5", tmp_path / "two.h5")


def test_sigterm_to_one_rank_then_resume(real, one_process_embeddings, tmp_path):
    out = tmp_path / "stopped.h5"
    parts = tmp_path / "stopped.h5.parts"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(command(*embed_args(real, out, *TWO)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    deadline = time.time() + 300
    while not (parts / "chunk000000001.h5").exists():  # rank 1 has written its first chunk
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    rank1 = [int(pid) for pid in children if "embed" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(rank1) == 1
    os.kill(rank1[0], signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0 and not out.exists()
    written = sorted(parts.glob("chunk*.h5"))
    assert 0 < len(written) < 375, "the stop came after the run had finished: make the input longer"
    for chunk in written:  # every chunk file there is whole
        with h5py.File(chunk) as h5:
            assert h5.attrs["records_done"] == h5["embeddings"].shape[0] == 4
    refused = subprocess.run(command(*embed_args(real, out, *TWO)), capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    run(*embed_args(real, out, *TWO, "--resume", "true"))
    same_embeddings(one_process_embeddings, out)
    assert not parts.exists()


def test_score_vcf_on_two_processes_writes_the_one_process_table(real, tmp_path):
    for processes, extra in (("one", []), ("two", TWO)):
        run("score", "--model", "tiny-1k", "--vcf", str(VT_NORMALIZE), "--genome", str(real.chr20), "--window", "128",
            "--chunk", "2", "--output", str(tmp_path / f"{processes}.tsv"), "--vcf_output",
            str(tmp_path / f"{processes}.vcf.gz"), *extra)  # fmt: skip
    one, two = (tmp_path / "one.tsv").read_text().splitlines(), (tmp_path / "two.tsv").read_text().splitlines()
    assert len(one) == len(two) > 10 and sum("\tok\t" in line for line in one) > 5
    for a, b in zip(one, two):
        fa, fb = a.split("\t"), b.split("\t")
        assert fa[:6] == fb[:6]
        for x, y in zip(fa[6:], fb[6:]):
            assert x == y or abs(float(x) - float(y)) <= 1e-5
    with pysam.VariantFile(str(tmp_path / "one.vcf.gz")) as a, pysam.VariantFile(str(tmp_path / "two.vcf.gz")) as b:
        records = list(zip(a, b))
    assert records and all(str(x) == str(y) for x, y in records)


def test_score_of_the_pysam_example_on_two_processes(real, tmp_path):
    vcf = "/usr/share/doc/python-pysam/tests/pysam_data/ex1.vcf.gz"
    for processes, extra in (("one", []), ("two", TWO)):
        run("score", "--model", "tiny-1k", "--vcf", vcf, "--genome", str(real.ex1_fa), "--window", "64",
            "--chunk", "16", "--output", str(tmp_path / f"{processes}.tsv"), *extra)  # fmt: skip
    assert (tmp_path / "one.tsv").read_text() == (tmp_path / "two.tsv").read_text()


def test_predict_on_two_processes_writes_the_one_process_table(tmp_path):
    torch.manual_seed(0)
    backbone = HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024, filter_order=16))
    model = SequenceModel(backbone, HeadConfig("multiclass", ["Oct4", "MafK"]))
    torch.nn.init.normal_(model.head.weight, std=1.0)
    model.save_pretrained(tmp_path / "model")
    config = tmp_path / "predict.yaml"
    config.write_text(f"input: {{Oct4: {TF / 'oct4_test.fa'}, MafK: {TF / 'mafk_test.fa'}}}\nchunk: 16\n")
    for processes, extra in (("one", []), ("two", TWO)):
        run("predict", "--config", str(config), "--model", str(tmp_path / "model"),
            "--output", str(tmp_path / f"{processes}.tsv"), *extra)  # fmt: skip
    one, two = (tmp_path / "one.tsv").read_text().splitlines(), (tmp_path / "two.tsv").read_text().splitlines()
    assert len(one) == len(two) == 201 and one[0] == two[0] == "name\tlabel\tp_Oct4\tp_MafK\tpredicted"
    for a, b in zip(one[1:], two[1:]):
        fa, fb = a.split("\t"), b.split("\t")
        assert fa[:2] == fb[:2] and fa[-1] == fb[-1]
        np.testing.assert_allclose([float(v) for v in fb[2:4]], [float(v) for v in fa[2:4]], atol=1e-5)


def test_explain_on_two_processes_writes_the_one_process_file(tmp_path):
    from hyenadna.analysis.attribution_file import read_attributions

    config = tmp_path / "explain.yaml"
    config.write_text(f"input: {{Oct4: {TF / 'oct4_test.fa'}, MafK: {TF / 'mafk_test.fa'}}}\nmax_records: 5\n"
                      "chunk: 2\nmethods: [ism, grad_x_input]\n")  # fmt: skip
    for processes, extra in (("one", []), ("two", TWO)):
        run("explain", "--config", str(config), "--model", "tiny-1k-chr20", "--output",
            str(tmp_path / f"{processes}.h5"), "--ism_tsv", str(tmp_path / f"{processes}.tsv"), *extra)  # fmt: skip
    for method in ("ism", "grad_x_input"):
        one, two = read_attributions(tmp_path / "one.h5", method), read_attributions(tmp_path / "two.h5", method)
        assert one["names"] == two["names"] and one["labels"] == two["labels"] and len(one["arrays"]) == 5
        for x, y in zip(one["arrays"], two["arrays"]):
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-5)
    one, two = (tmp_path / "one.tsv").read_text().splitlines(), (tmp_path / "two.tsv").read_text().splitlines()
    assert len(one) == len(two) == 1 + 5 * 200 * 3 and [r.split("\t")[:4] for r in one] == [
        r.split("\t")[:4] for r in two
    ]


def test_loss_on_two_processes_prints_the_one_process_table():
    tables = []
    for extra in ([], TWO):
        proc = run("loss", "--model", "tiny-1k", "--fasta", str(TF / "oct4_test.fa"), "--window", "64", *extra)
        tables.append(proc.stdout.splitlines()[:-1])  # the last line is the timing
    assert len(tables[0]) == 2 + 100 and tables[0] == tables[1]
