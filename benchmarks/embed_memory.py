"""Peak memory of ``hyenadna embed`` streaming a genome: 10k and 100k windows, printed as a table.

    .venv/bin/python benchmarks/embed_memory.py [--window 100] [--counts 10000 100000]

Human chr20 (vt-examples ``ref/20.fa.gz``, bgzipped and indexed) is embedded as windows of
``--window`` bases from position 30,000,001 on (``--input.window``, ``--input.region``). Each run
is a fresh process (the system allocator: the command is called in-process, not re-executed on
jemalloc) that reports its own peak resident memory (``ru_maxrss``), with the records/s.
Streaming means the peak does not grow with the record count: every run holds one chunk (256
records) at a time. A small model (d_model 32, 2 layers, random weights) keeps the runs short:
memory of the records, not of the model, is what is measured. Needs vt-examples.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    import torch
    from real_data import copy_chr20

    from hyenadna import HyenaConfig, HyenaDNA

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        genome = copy_chr20(root)
        torch.manual_seed(0)
        HyenaDNA(HyenaConfig(d_model=32, n_layer=2, l_max=1024, filter_order=16)).save_pretrained(root / "model")
        for count in args.counts:
            region = f"20:30000001-{30_000_000 + count * args.window}"
            own_peak = ("import resource, sys; from hyenadna.cli import main; main(sys.argv[1:]); "
                        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")  # fmt: skip
            command = [sys.executable, "-c", own_peak, "embed", "--model", str(root / "model"), "--input.fasta",
                       str(genome), "--input.window", str(args.window), "--input.region", region, "--output",
                       str(root / f"{count}.h5"), "--batch_size", "64", "--progress", "false"]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
            seconds = time.perf_counter() - start
            peak_kib = int(done.stderr.strip().splitlines()[-1])
            rows.append((count, seconds, peak_kib / 1024))
    print("| windows | bases | seconds | records/s | peak RSS (MiB) |\n|---|---|---|---|---|")
    for count, seconds, peak in rows:
        print(f"| {count:,} | {count * args.window:,} | {seconds:.1f} | {count / seconds:,.0f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
