"""Which FFT size to use for a causal convolution of L bases: the data behind
``hyenadna.ops.fftconv.next_fast_fft_size``.

For each input length, times a real FFT and its inverse (the work of one long convolution) of
a group of channel rows at the candidate sizes of at least 2L-1 points: the size the toolkit
picks, the smallest 7-smooth size, the next power of two and 2L (the reference's choice), and
prints time per call and per point. Rerun it on a new machine to check the power-of-two
allowance (``POWER_OF_TWO_ALLOWANCE``) there:

    .venv/bin/python benchmarks/fft_sizes.py --lengths 32768 160000 480000 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hyenadna.ops.fftconv import next_fast_fft_size, smallest_7_smooth


def seconds_per_pair(rows: int, n: int, repeat: int) -> float:
    """Best of ``repeat``: rfft and irfft of (rows, n) float32, as the convolution runs them."""
    x = torch.randn(rows, n)
    torch.fft.irfft(torch.fft.rfft(x), n=n)  # plans and pages
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        torch.fft.irfft(torch.fft.rfft(x), n=n)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+",
                        default=[32768, 60000, 160000, 480000, 750000, 900000, 1000000, 1048576])  # fmt: skip
    parser.add_argument("--rows", type=int, default=16, help="channels per call (the chunked path's group)")
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rows} rows of float32")
    print(f"{'length':>9} {'candidate':<10} {'size':>9} {'ms':>8} {'ns/point':>9}")
    for length in args.lengths:
        need = 2 * length - 1
        candidates = {
            "picked": next_fast_fft_size(need),
            "7-smooth": smallest_7_smooth(need),
            "power of 2": 1 << (need - 1).bit_length(),
            "2L": 2 * length,
        }
        timed: dict[int, float] = {}
        for name, size in candidates.items():
            if size not in timed:
                timed[size] = seconds_per_pair(args.rows, size, args.repeat)
            per_point = timed[size] / (args.rows * size) * 1e9
            print(f"{length:>9,} {name:<10} {size:>9,} {timed[size] * 1e3:>8.1f} {per_point:>9.2f}")


if __name__ == "__main__":
    main()
