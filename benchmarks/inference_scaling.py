"""Throughput of ``embed`` and ``score --vcf`` on 1 and 2 processes, printed as a table.

    .venv/bin/python benchmarks/inference_scaling.py [--records 5000] [--window 1000] [--accelerator cpu]

``tiny-1k`` (random weights, seed 0) embeds human chr20 (vt-examples ``ref/20.fa.gz``) as
``--records`` windows of ``--window`` bases from position 30,000,001, and scores ``--records``
SNVs placed every ``--window`` bases on the same stretch (REF read from the genome, ALT the next
base of ACGT: real sequence, made-up variants) with 1,024-base windows, so each allele costs two
forward passes. Every run is a fresh ``hyenadna`` command timed from launch to exit (model load,
process start-up and, with 2 processes, the join of their parts included), first on one
process using every core, then with ``--trainer.devices 2`` (Lightning Fabric; gloo on the CPU),
each process using half the cores. The last column is the 2-process rate over the 1-process
rate: on a GPU node (``--accelerator gpu``: 1 and 2 GPUs) that is the scaling; on a CPU both
runs share the same cores, so it measures what the second process costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def snv_vcf(genome: Path, path: Path, count: int, spacing: int) -> None:
    """``count`` SNVs on chr20, one every ``spacing`` bases from 30,000,501 (skipping N)."""
    import pyfaidx

    chrom = pyfaidx.Fasta(str(genome))["20"]
    header = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=20,length=63025520>", header]
    pos = 30_000_501
    while len(lines) - 3 < count:
        ref = str(chrom[pos - 1 : pos]).upper()
        if ref in "ACGT":
            alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
            lines.append(f"20\t{pos}\tv{len(lines) - 3}\t{ref}\t{alt}\t.\tPASS\t.")
        pos += spacing
    path.write_text("\n".join(lines) + "\n")


def timed(command: list[str], threads: int) -> tuple[float, dict]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    from real_data import copy_chr20

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    hyenadna = [sys.executable, str(ROOT / "cli.py")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        genome = copy_chr20(root)
        vcf = root / "snvs.vcf"
        snv_vcf(genome, vcf, args.records, args.window)
        region = f"20:30000001-{30_000_000 + args.records * args.window}"
        jobs = {
            "embed": (["embed", "--model", "tiny-1k", "--input.fasta", str(genome), "--input.window",
                       str(args.window), "--input.region", region, "--batch_size", "16"],
                      args.records, args.records * args.window),
            "score --vcf": (["score", "--model", "tiny-1k", "--vcf", str(vcf), "--genome", str(genome),
                             "--window", "1024", "--batch_size", "16"], args.records, args.records * 2 * 1024),
        }  # fmt: skip
        for name, (command, records, bases) in jobs.items():
            rates = []
            for processes in (1, 2):
                out = root / f"{name.split()[0]}{processes}.out"
                flags = ["--trainer.devices", str(processes), "--trainer.accelerator", args.accelerator]
                seconds, _ = timed([*hyenadna, *command, "--output", str(out), "--progress", "false", *flags],
                                   max(1, cores // processes))  # fmt: skip
                rates.append(records / seconds)
                rows.append((name, processes, seconds, records / seconds, bases / seconds, rates[-1] / rates[0]))
    print(f"| command | processes | seconds | records/s | bases/s | vs 1 process |  ({cores} cores)")
    print("|---|---|---|---|---|---|")
    for name, processes, seconds, rate, bases, ratio in rows:
        print(f"| {name} | {processes} | {seconds:.1f} | {rate:,.1f} | {bases:,.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
