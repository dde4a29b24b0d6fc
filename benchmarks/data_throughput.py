"""Data-loading throughput on real files, next to the CPU training speed it has to keep up with.

    .venv/bin/python benchmarks/data_throughput.py

* random pretraining windows of 1k, 32k and 1M bases from bgzipped human chr20 (vt-examples):
  index lookup, bgzip decompression, N check and tokenization, one process, and for 1k also
  through a DataLoader with 2 worker processes;
* strided validation windows (1k) built over chr20's last 5%;
* reads per second from a BAM (python-pysam-tests ``ex1.bam``, whole-file passes) and a CRAM
  region (htslib-test ``range.cram``, decoded against its reference);
* for comparison: tokens per second of a ``tiny-1k`` training step (forward + backward + AdamW,
  batch 8 x 1024, float32) on this CPU.

Needs the Debian packages vt-examples, python-pysam-tests and htslib-test (.ci/run installs them).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from real_data import RealData

from hyenadna import load
from hyenadna.data.bam import iter_reads
from hyenadna.data.corpus import Corpus, GenomeSource
from hyenadna.data.windows import RandomWindows, StridedWindows


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def window_rows(corpus: Corpus) -> list[tuple[str, str, str, str]]:
    rows = []
    for length, count in ((1024, 2000), (32768, 200), (1_000_000, 10)):
        windows = RandomWindows(corpus, length, samples_per_epoch=count, seed=0, max_n_fraction=0.1)
        windows[0]  # open the file handle before timing
        seconds, _ = timed(lambda w=windows, n=count: [w[i] for i in range(n)])
        rows.append(
            (
                f"random windows {length:,}",
                "1 process",
                f"{count / seconds:,.0f}",
                f"{count * length / seconds / 1e6:.1f}",
            )
        )
    windows = RandomWindows(corpus, 1024, samples_per_epoch=4000, seed=1)
    loader = DataLoader(windows, batch_size=8, num_workers=2)
    seconds, _ = timed(lambda: sum(1 for _ in loader))
    rows.append(
        (
            "random windows 1,024",
            "DataLoader, 2 workers",
            f"{4000 / seconds:,.0f}",
            f"{4000 * 1024 / seconds / 1e6:.1f}",
        )
    )
    seconds, val = timed(lambda: StridedWindows(corpus, 1024, split="val", max_n_fraction=0.1))
    rows.append(
        (
            "strided windows 1,024 (build)",
            f"{len(val):,} windows",
            f"{len(val) / seconds:,.0f}",
            f"{len(val) * 1025 / seconds / 1e6:.1f}",
        )
    )
    return rows


def read_rows(real: RealData) -> list[tuple[str, str, str, str]]:
    rows = []
    passes = 20
    seconds, n = timed(lambda: sum(1 for _ in range(passes) for _ in iter_reads(real.ex1_bam)))
    bases = sum(len(r.sequence) for r in iter_reads(real.ex1_bam)) * passes
    rows.append(
        (
            "BAM reads (ex1.bam)",
            f"{n // passes:,} reads x {passes}",
            f"{n / seconds:,.0f}",
            f"{bases / seconds / 1e6:.1f}",
        )
    )
    seconds, reads = timed(lambda: list(iter_reads(real.range_cram, region="CHROMOSOME_I", reference=real.ce_fa)))
    bases = sum(len(r.sequence) for r in reads)
    rows.append(
        (
            "CRAM reads (range.cram)",
            f"{len(reads):,} reads",
            f"{len(reads) / seconds:,.0f}",
            f"{bases / seconds / 1e6:.1f}",
        )
    )
    return rows


def training_row() -> tuple[str, str, str, str]:
    torch.manual_seed(0)
    model = load("tiny-1k")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(7, 11, (8, 1025))

    def step() -> None:
        logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    steps = 5
    seconds, _ = timed(lambda: [step() for _ in range(steps)])
    return (
        "tiny-1k training step",
        "batch 8 x 1,024, fp32",
        f"{steps * 8 / seconds:,.1f}",
        f"{steps * 8 * 1024 / seconds / 1e6:.3f}",
    )


def main() -> None:
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        real = RealData(Path(tmp))
        corpus = Corpus([GenomeSource(real.chr20, val_fraction=0.05)])
        rows = window_rows(corpus) + read_rows(real) + [training_row()]
    header = ("what", "setting", "items/s", "Mb/s")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


if __name__ == "__main__":
    main()
