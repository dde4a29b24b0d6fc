"""Variant scoring throughput of ``hyenadna score`` on this machine, printed as a table.

    .venv/bin/python benchmarks/score_throughput.py

Real indels (vt-examples ``normalize/01_IN.vcf.gz``) against human chr20 (vt-examples
``ref/20.fa.gz``), each scored as two windows (reference and alternate), with the ``small-32k``
shape (d_model 256, 4 layers; random weights: speed does not depend on them), float32, inference,
both CPU threads. Needs the Debian package vt-examples.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from real_data import copy_chr20

from hyenadna import load
from hyenadna.pipelines.score import run_score_vcf

VCF = Path("/usr/share/doc/vt/examples/normalize/01_IN.vcf.gz")


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = load("small-32k").eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        genome = copy_chr20(root)
        for window, count, batch in ((1024, 64, 16), (32768, 3, 2)):
            vcf = root / f"first{count}.vcf"
            with gzip.open(VCF, "rt") as src, open(vcf, "w") as dst:
                body = 0
                for line in src:
                    if not line.startswith("#"):
                        body += 1
                        if body > count:
                            break
                    dst.write(line)
            run_score_vcf(
                model, str(vcf), str(genome), str(root / "warm.tsv"), window, batch_size=batch, progress=False
            )
            start = time.perf_counter()
            out = root / f"scores{window}.tsv"
            run_score_vcf(model, str(vcf), str(genome), str(out), window, batch_size=batch, progress=False)
            seconds = time.perf_counter() - start
            rows.append(
                (
                    f"{window:,}",
                    f"{count}",
                    f"{seconds:.1f} s",
                    f"{count / seconds:.2f}",
                    f"{2 * count * window / seconds:,.0f}",
                )
            )
            (root / "warm.tsv").unlink()
        shutil.rmtree(root / "cache", ignore_errors=True)
    header = ("window", "variants", "time", "variants/s", "bases/s")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    print(f"small-32k shape, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
