"""Fault injection for the resumable commands: a run stopped at every chunk boundary (a kill)
or by a write that fails (a full disk) is resumed; every record comes out exactly once, in
order, with the straight run's values, and no output exists under its final name until it is
complete. (Pretraining: tests/pipelines/test_pretrain.py resumes from every step; a failing checkpoint
write is in tests/pipelines/test_bad_input.py.)"""

from __future__ import annotations

import errno
from pathlib import Path

import h5py
import numpy as np
import pytest

import hyenadna.pipelines.embed as embed_module
import hyenadna.pipelines.score as score_module
from hyenadna import HyenaDNAError, load
from hyenadna.pipelines.embed import EmbedInput, run_embed
from hyenadna.pipelines.score import run_score_vcf

VT_NORMALIZE = Path("/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz")  # real indels on chr20 (vt-examples)
RECORDS = 10


@pytest.fixture(scope="module")
def fasta(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fi") / "s.fa"
    path.write_text("".join(f">r{i}\n{'ACGTTGCA' * (2 + i)}\n" for i in range(RECORDS)))
    return path


def stop_at(monkeypatch, module, name: str, call: int, error: BaseException) -> None:
    """``module.name`` raises ``error`` on its ``call``-th call (counting from 1)."""
    real, calls = getattr(module, name), []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)


def read_embeddings(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with h5py.File(path) as h5:
        return [n.decode() for n in h5["names"][:]], h5["embeddings"][:], h5["token_embeddings"][:]


@pytest.mark.parametrize("boundary", range(1, RECORDS // 3 + 2))
def test_embed_killed_at_every_chunk_boundary_resumes_to_the_straight_result(fasta, tmp_path, monkeypatch, boundary):
    options = {"chunk": 3, "per_token": True, "progress": False}
    straight = tmp_path / "straight.h5"
    run_embed("tiny-1k", str(straight), EmbedInput(fasta=str(fasta)), **options)
    out = tmp_path / "out.h5"
    stop_at(monkeypatch, embed_module, "_write_chunk", boundary, KeyboardInterrupt("killed"))
    with pytest.raises(KeyboardInterrupt):
        run_embed("tiny-1k", str(out), EmbedInput(fasta=str(fasta)), **options)
    monkeypatch.undo()
    assert not out.exists()  # never under its final name while incomplete
    run_embed("tiny-1k", str(out), EmbedInput(fasta=str(fasta)), resume=True, **options)
    names, pooled, tokens = read_embeddings(out)
    names0, pooled0, tokens0 = read_embeddings(straight)
    assert names == names0 == [f"r{i}" for i in range(RECORDS)]  # every record once, in order
    assert np.array_equal(pooled, pooled0) and np.array_equal(tokens, tokens0)


def test_embed_write_failing_mid_chunk_keeps_a_trustworthy_partial(fasta, tmp_path, monkeypatch):
    """A full disk while the per-base rows of the second chunk are written: a clear error, the
    count of records in the partial stays at the first chunk, and --resume completes it."""
    options = {"chunk": 4, "per_token": True, "progress": False}
    real_append = embed_module.append_rows

    def disk_full(h5, name, values):
        if name == "token_embeddings" and h5["embeddings"].shape[0] > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_append(h5, name, values)

    out = tmp_path / "out.h5"
    monkeypatch.setattr(embed_module, "append_rows", disk_full)
    with pytest.raises(HyenaDNAError, match="cannot write .*out.h5.partial .*keeps the 4 records.*--resume"):
        run_embed("tiny-1k", str(out), EmbedInput(fasta=str(fasta)), **options)
    monkeypatch.undo()
    with h5py.File(tmp_path / "out.h5.partial") as h5:
        assert int(h5.attrs["records_done"]) == 4
    run_embed("tiny-1k", str(out), EmbedInput(fasta=str(fasta)), resume=True, **options)
    straight = tmp_path / "straight.h5"
    run_embed("tiny-1k", str(straight), EmbedInput(fasta=str(fasta)), **options)
    assert read_embeddings(out)[0] == read_embeddings(straight)[0]
    assert np.array_equal(read_embeddings(out)[2], read_embeddings(straight)[2])


@pytest.mark.parametrize("boundary", [1, 2, 4, 7])
def test_score_killed_at_chunk_boundaries_resumes_to_the_straight_result(real, tmp_path, monkeypatch, boundary):
    model = load("tiny-1k")
    straight = tmp_path / "straight.tsv"
    run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(straight), window=64, chunk=32, progress=False)
    out = tmp_path / "out.tsv"
    stop_at(monkeypatch, score_module, "score_windows", boundary, KeyboardInterrupt("killed"))
    with pytest.raises(KeyboardInterrupt):
        run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=64, chunk=32, progress=False)
    monkeypatch.undo()
    assert not out.exists()
    run_score_vcf(model, str(VT_NORMALIZE), str(real.chr20), str(out), window=64, chunk=32, resume=True,
                  progress=False)  # fmt: skip
    assert out.read_text() == straight.read_text()  # 194 alleles, each once, in order, same values
