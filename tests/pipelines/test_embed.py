"""hyenadna embed: HDF5 from FASTA, BED + genome and BAM, checked against model.embed; stop and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from hyenadna import HyenaConfig, HyenaDNA, HyenaDNAError
from hyenadna.data.bam import count_reads, iter_reads
from hyenadna.data.fasta import read_fasta
from hyenadna.data.genome import Genome
from hyenadna.data.intervals import read_bed, region_sequence
from hyenadna.pipelines.embed import EmbedInput, run_embed

REPO = Path(__file__).resolve().parents[2]
OCT4 = REPO / "data" / "tf_binding" / "oct4_train.fa"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=2048, filter_order=16)).save_pretrained(folder)
    return folder


def test_fasta_to_hdf5_equals_model_embed(model_dir, tmp_path):
    out = tmp_path / "lambda.h5"
    fasta = tmp_path / "parts.fa"
    genome = next(s for _, s in read_fasta(REPO / "data" / "lambda_virus.fa"))
    fasta.write_text("".join(f">part{i} lambda\n{genome[i * 700 : i * 700 + 300 + 50 * i]}\n" for i in range(9)))
    source = EmbedInput(fasta=str(fasta))
    n = run_embed(str(model_dir), str(out), source, pooling="mean", batch_size=4, chunk=4, progress=False)["records"]
    assert n == 9 and not out.with_name("lambda.h5.partial").exists()
    model = HyenaDNA.from_pretrained(model_dir)
    records = list(read_fasta(fasta))
    expected = model.embed([s for _, s in records])
    with h5py.File(out) as h5:
        assert h5.attrs["complete"] and h5.attrs["records_done"] == 9
        assert h5.attrs["pooling"] == "mean" and h5.attrs["layer"] == -1
        assert HyenaConfig.from_dict(__import__("json").loads(h5.attrs["config"])) == model.config
        assert [x.decode() for x in h5["names"][:]] == [name for name, _ in records]
        assert h5["end"][:].tolist() == [len(s) for _, s in records]
        got = h5["embeddings"][:]
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    with pytest.raises(HyenaDNAError, match="exists; pass overwrite"):
        run_embed(str(model_dir), str(out), EmbedInput(fasta=str(fasta)), progress=False)


def test_bed_regions_with_coordinates_and_per_token_float16(model_dir, real, tmp_path):
    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t100\t160\tr1\t0\t+\nchr2\t300\t330\tr2\t0\t-\nchr1\t1500\t1575\tr3\t0\t-\n")
    out = tmp_path / "regions.h5"
    source = EmbedInput(bed=str(bed), genome=str(real.ex1_fa), length=100, resize="center")
    run_embed(str(model_dir), str(out), source, per_token=True, dtype="float16", rc_average=True, progress=False)
    genome = Genome(real.ex1_fa)
    seqs = [region_sequence(genome, r, 100, "center") for r in read_bed(bed)]
    model = HyenaDNA.from_pretrained(model_dir)
    with h5py.File(out) as h5:
        assert [x.decode() for x in h5["contig"][:]] == ["chr1", "chr2", "chr1"]
        assert h5["start"][:].tolist() == [80, 265, 1487] and h5["end"][:].tolist() == [180, 365, 1587]
        assert [x.decode() for x in h5["strand"][:]] == ["+", "-", "-"]
        assert h5["embeddings"].dtype == np.float16 and h5["token_embeddings"].compression == "gzip"
        offsets = h5["token_offsets"][:]
        assert offsets.tolist() == [0, 100, 200, 300]
        tokens = h5["token_embeddings"][100:200].astype(np.float32)
        pooled = h5["embeddings"][:].astype(np.float32)
    per_token = model.embed(seqs, pooling="none", rc_average=True)
    assert np.allclose(tokens, per_token[1], atol=2e-3 * np.abs(per_token[1]).max())
    assert np.allclose(pooled, model.embed(seqs, rc_average=True), atol=2e-3)


def test_genome_windows_stream_with_coordinates(model_dir, real, tmp_path):
    """A genome FASTA as windows: names and coordinates of every window of a region (the last
    one shorter), all-N windows skipped, embeddings equal to the windows embedded directly."""
    genome = Genome(real.chr20)
    assert list(genome.windows(300, 250, "20:30,000,001-30,001,000")) == [
        ("20", 30_000_000, 30_000_300), ("20", 30_000_250, 30_000_550), ("20", 30_000_500, 30_000_800),
        ("20", 30_000_750, 30_001_000)]  # fmt: skip
    with pytest.raises(HyenaDNAError, match="start 5 is after end 1"):
        list(genome.windows(100, None, "20:5-1"))
    out = tmp_path / "windows.h5"
    source = EmbedInput(fasta=str(real.chr20), window=200, stride=150, region="20:60001-61000")
    assert run_embed(str(model_dir), str(out), source, chunk=3, progress=False)["records"] == 7
    model = HyenaDNA.from_pretrained(model_dir)
    with h5py.File(out) as h5:
        names = [x.decode() for x in h5["names"][:]]
        starts, ends = h5["start"][:].tolist(), h5["end"][:].tolist()
        got = h5["embeddings"][:]
    assert names[0] == "20:60001-60200" and starts == list(range(60_000, 61_000, 150)) and ends[-1] == 61_000
    expected = model.embed([genome.fetch("20", a, b) for a, b in zip(starts, ends)])
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    n_run = next(start for start in range(0, 100_000, 1000) if set(genome.fetch("20", start, start + 1000)) == {"N"})
    region = f"20:{n_run + 1}-{n_run + 1000}"  # a stretch of N: nothing to embed
    with pytest.raises(HyenaDNAError, match="no records to embed"):
        run_embed(str(model_dir), str(tmp_path / "n.h5"), EmbedInput(fasta=str(real.chr20), window=200, region=region),
                  progress=False)  # fmt: skip


def test_bam_reads_are_embedded(model_dir, real, tmp_path):
    out = tmp_path / "reads.h5"
    run_embed(str(model_dir), str(out), EmbedInput(bam=str(real.ex1_bam), region="chr1:1-300"), progress=False)
    reads = list(iter_reads(real.ex1_bam, region="chr1:1-300"))
    with h5py.File(out) as h5:
        assert h5["embeddings"].shape == (count_reads(real.ex1_bam, region="chr1:1-300"), 32)
        assert [x.decode() for x in h5["names"][:]] == [r.name for r in reads]
        assert h5["start"][:].tolist() == [r.start for r in reads]


def test_bad_inputs(model_dir, tmp_path):
    long = tmp_path / "long.fa"
    long.write_text(">ok\nACGT\n>too_long\n" + "A" * 3000 + "\n")
    with pytest.raises(HyenaDNAError, match="record 'too_long' has 3,000 bases; the model takes 1 to 2,048"):
        run_embed(str(model_dir), str(tmp_path / "x.h5"), EmbedInput(fasta=str(long)), progress=False)
    assert not (tmp_path / "x.h5").exists()
    assert not (tmp_path / "x.h5.partial").exists()  # nothing was written: nothing blocks the next run
    with pytest.raises(HyenaDNAError, match="record 'too_long' has 3,000 bases"):  # one record written first
        run_embed(str(model_dir), str(tmp_path / "x.h5"), EmbedInput(fasta=str(long)), chunk=1, progress=False)
    assert (tmp_path / "x.h5.partial").exists()  # a partial with records stays, for --resume
    with pytest.raises(HyenaDNAError, match="is left from a stopped run; pass --resume"):
        run_embed(str(model_dir), str(tmp_path / "x.h5"), EmbedInput(fasta=str(long)), progress=False)
    with pytest.raises(HyenaDNAError, match="No such file|cannot|not found|does not exist"):
        run_embed(
            str(model_dir), str(tmp_path / "typo.h5"), EmbedInput(fasta=str(tmp_path / "typo.fa")), progress=False
        )
    assert not (tmp_path / "typo.h5.partial").exists()
    with pytest.raises(HyenaDNAError, match="exactly one input"):
        run_embed(str(model_dir), str(tmp_path / "y.h5"), EmbedInput(), progress=False)
    with pytest.raises(HyenaDNAError, match="unknown model 'giant-9m'"):
        run_embed("giant-9m", str(tmp_path / "z.h5"), EmbedInput(fasta=str(long)), progress=False)


@pytest.mark.slow
def test_stopped_run_resumes_to_the_same_file(model_dir, tmp_path):
    import re
    import threading

    fasta = tmp_path / "peaks.fa"  # ~23k real 200-bp regions: long enough to stop midway
    records = [r for path in (OCT4, OCT4.with_name("mafk_train.fa")) for r in read_fasta(path)] * 3
    fasta.write_text("".join(f">{name}_{i}\n{seq}\n" for i, (name, seq) in enumerate(records)))
    out = tmp_path / "peaks.h5"
    partial = tmp_path / "peaks.h5.partial"
    args = ["embed", "--model", str(model_dir), "--output", str(out), "--input.fasta", str(fasta)]
    args += ["--chunk", "64", "--batch_size", "16"]
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), *args], stderr=subprocess.PIPE, text=True)
    started = threading.Event()

    def watch_progress() -> None:  # the progress bar says when whole chunks are written
        buffer = ""
        while chunk := proc.stderr.read(64):
            buffer = (buffer + chunk)[-200:]
            done = [int(n) for n in re.findall(r"embed: (\d+) seq", buffer)]
            if done and max(done) >= 256:
                started.set()

    threading.Thread(target=watch_progress, daemon=True).start()
    assert started.wait(timeout=300), "the embed run never got going"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0 and not out.exists()
    with h5py.File(partial) as h5:
        stopped_at = int(h5.attrs["records_done"])
        assert not h5.attrs["complete"]
    assert 256 <= stopped_at < len(records) and stopped_at % 64 == 0
    command = [sys.executable, str(REPO / "cli.py"), *args, "--resume", "true", "--progress", "false"]
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    fresh = tmp_path / "fresh.h5"
    run_embed(str(model_dir), str(fresh), EmbedInput(fasta=str(fasta)), chunk=64, batch_size=16, progress=False)
    with h5py.File(out) as a, h5py.File(fresh) as b:
        assert a.attrs["complete"] and a["embeddings"].shape == (len(records), 32)
        assert np.array_equal(a["names"][:], b["names"][:])
        assert np.array_equal(a["embeddings"][:], b["embeddings"][:])


def test_stopped_embed_resumes_exactly_and_refuses_an_edited_input(model_dir, tmp_path, monkeypatch):
    """Fault injection: the run is killed after its first chunk; the resumed run gives the
    straight run's file, every record once; an input edited meanwhile is refused."""
    import hyenadna.pipelines.embed as embed_module

    fasta = tmp_path / "s.fa"
    fasta.write_text("".join(f">r{i}\n{'ACGT' * (3 + i)}\n" for i in range(10)))
    straight = tmp_path / "straight.h5"
    run_embed(str(model_dir), str(straight), EmbedInput(fasta=str(fasta)), chunk=4, progress=False)
    real_write, calls = embed_module._write_chunk, []

    def killed_on_the_second_chunk(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_write(*args)

    out = tmp_path / "out.h5"
    monkeypatch.setattr(embed_module, "_write_chunk", killed_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_embed(str(model_dir), str(out), EmbedInput(fasta=str(fasta)), chunk=4, progress=False)
    monkeypatch.setattr(embed_module, "_write_chunk", real_write)
    assert not out.exists() and (tmp_path / "out.h5.partial").exists()
    original, stamp = fasta.read_text(), fasta.stat()
    fasta.write_text(original + ">extra\nACGTACGT\n")
    with pytest.raises(HyenaDNAError, match="an input or model file changed since the stopped run"):
        run_embed(str(model_dir), str(out), EmbedInput(fasta=str(fasta)), chunk=4, resume=True, progress=False)
    fasta.write_text(original)  # put back as it was, time stamp included
    os.utime(fasta, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    run_embed(str(model_dir), str(out), EmbedInput(fasta=str(fasta)), chunk=4, resume=True, progress=False)
    with h5py.File(straight) as a, h5py.File(out) as b:
        assert [n.decode() for n in b["names"][:]] == [f"r{i}" for i in range(10)]
        assert np.array_equal(a["embeddings"][:], b["embeddings"][:])
