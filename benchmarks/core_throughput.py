"""Throughput of the core pieces on this machine, printed as a table.

    .venv/bin/python benchmarks/core_throughput.py

* tokenizer: bases per second encoding a 10 Mb string (soft-masked, with Ns);
* fftconv: the fast path against the reference (FFT at exactly 2L) on (1, 256, L) inputs,
  at lengths where 2L is a power of two and where it has a large prime factor;
* model: forward bases per second of ``tiny-1k`` (batch 8 x 1024) and ``small-32k``
  (batch 1 x 32768), inference mode, float32.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from hyenadna import CharacterTokenizer, load
from hyenadna.ops import fftconv, fftconv_ref


def best_of(repeat: int, fn, *args) -> float:
    """Fastest of ``repeat`` timed calls of ``fn(*args)``, after one warm-up call."""
    fn(*args)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    rows = []
    rng = np.random.default_rng(0)
    seq = rng.choice(np.frombuffer(b"ACGTacgtN", dtype=np.uint8), size=10_000_000).tobytes().decode()
    tok = CharacterTokenizer()
    seconds = best_of(3, tok.encode, seq)
    rows.append(("tokenizer encode", "10 Mb", f"{seconds * 1e3:.0f} ms", f"{len(seq) / seconds / 1e6:.0f} Mb/s", ""))

    with torch.inference_mode():
        for length in (4096, 65536, 250_001, 1_000_002):
            u, k, d = torch.randn(1, 256, length), torch.randn(256, length), torch.randn(256)
            fast = best_of(2, fftconv, u, k, d)
            ref = best_of(2, fftconv_ref, u, k, d)
            rows.append(
                (
                    "fftconv (1,256,L)",
                    f"L={length:,}",
                    f"{fast * 1e3:.0f} ms",
                    f"ref {ref * 1e3:.0f} ms",
                    f"{ref / fast:.2f}x",
                )
            )
        for preset, batch, length in (("tiny-1k", 8, 1024), ("small-32k", 1, 32768)):
            model = load(preset).eval()
            ids = torch.randint(7, 11, (batch, length))
            seconds = best_of(2, model, ids)
            rows.append(
                (
                    f"{preset} forward",
                    f"{batch}x{length}",
                    f"{seconds * 1e3:.0f} ms",
                    f"{batch * length / seconds:,.0f} b/s",
                    "",
                )
            )

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = ("what", "size", "time", "throughput", "speedup")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
