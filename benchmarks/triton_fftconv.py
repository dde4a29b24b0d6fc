"""GPU long-convolution kernels: the fused Triton gated convolution against torch.fft.

    .venv/bin/python benchmarks/triton_fftconv.py              # on a CUDA machine, 1k .. 1M
    .venv/bin/python benchmarks/triton_fftconv.py --end-to-end # and large-1m at 1M bases
    TRITON_INTERPRET=1 .venv/bin/python benchmarks/triton_fftconv.py --smoke   # CPU, tiny sizes

What is timed, FlashFFTConv's table's setting: ``y = x0 * (h * (x1 * v) + D * x1 * v)``,
batch 64, hidden 768 (the batch halves at long lengths until the inputs fit, and the table says
so), in bf16 (``--dtype``), forward and forward + backward. The baseline is the same function
through torch.fft (``ops.operator_paths.gated_fftconv`` without ``triton``) in the same dtype.
Columns: median time over ``--repeat`` CUDA-event-timed runs after a warm-up, the speed-up,
peak memory above the inputs (``torch.cuda.max_memory_allocated``), and the bandwidth the
kernel achieves counting only the bytes it must move (inputs read, outputs written), against
this card's copy bandwidth measured here. Lengths beyond the one-program kernel's
``MAX_LENGTH`` run the four-step kernels (``ops/triton/long_conv.py``); those rows say
"four-step". Writes ``results/triton_fftconv_<gpu>.json`` and a PNG.

``--end-to-end``: the ``large-1m`` model at 1M bases, batch 1, bf16 autocast: forward and a
training step (forward, loss, backward, AdamW, activation checkpointing of mixer and MLP),
with peak memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hyenadna.ops.operator_paths import gated_fftconv  # noqa: E402
from hyenadna.ops.triton.gated_conv import MAX_LENGTH  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, repeat: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call (compilation, plans, allocator)."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            began = time.perf_counter()
            fn()
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def copy_bandwidth(device: str) -> float:
    """Bytes per second of a large device-to-device copy (read + write)."""
    size = 2**28 if device == "cuda" else 2**22
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    seconds = timed(lambda: dst.copy_(src), device, 10)
    return 2 * size / seconds


def inputs(batch: int, channels: int, length: int, dtype: torch.dtype, device: str, grad: bool):
    projected = torch.randn(batch, 3 * channels, length, device=device, dtype=dtype, requires_grad=grad)
    x0, x1, v = projected.split(channels, dim=1)
    h = (torch.randn(channels, length, device=device) / length**0.5).requires_grad_(grad)
    d = torch.randn(channels, device=device, requires_grad=grad)
    return projected, (x0, x1, v, h, d)


def measure(impl: str, mode: str, batch: int, channels: int, length: int, dtype, device: str, repeat: int) -> dict:
    grad = mode == "fwd+bwd"
    projected, args = inputs(batch, channels, length, dtype, device, grad)
    upstream = torch.randn(batch, channels, length, device=device, dtype=dtype)

    def run():
        y = gated_fftconv(*args, triton=impl == "triton")
        if grad:
            torch.autograd.grad(y, [projected, args[3], args[4]], upstream)

    if device == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(run, device, repeat)
    peak = (torch.cuda.max_memory_allocated() - base) if device == "cuda" else float("nan")
    element = torch.finfo(dtype).bits // 8
    # must-move bytes: x0, x1, v read and y written (forward); backward also reads dy and
    # writes dx0, dx1, dv; the filter is read once per pass
    moved = batch * channels * length * element * (4 if not grad else 11) + channels * length * 4 * (
        1 if not grad else 3
    )
    return {"impl": impl, "mode": mode, "batch": batch, "channels": channels, "length": length,
            "seconds": seconds, "peak_gb": peak / 2**30, "bytes": moved}  # fmt: skip


def batch_for(length: int, batch: int, channels: int, dtype, device: str) -> int:
    """Halve the batch until the forward + backward of the torch baseline is likely to fit
    (about 40 float32 copies of one (B, C, L) input, a rough bound on its peak)."""
    if device != "cuda":
        return batch
    free = torch.cuda.mem_get_info()[0] * 0.8
    while batch > 1 and batch * channels * length * 4 * 40 > free:
        batch //= 2
    return batch


def end_to_end(length: int, device: str) -> list[dict]:
    import torch.nn.functional as F

    import hyenadna

    # checkpointing: by our count plain autograd under bf16 autocast keeps ~15 KB per base and
    # layer (projections, gates, float32 FFT buffers and spectra), ~120 GB at 1M bases for 8
    # layers; recomputing each block holds one block's worth at a time
    model = hyenadna.load("large-1m", embed_dropout=0.0, checkpoint_mixer=True, checkpoint_mlp=True).to(device)
    ids = torch.randint(7, 11, (1, length + 1), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rows = []
    for mode in ("forward", "train step"):

        def step(mode=mode):
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                if mode == "forward":
                    with torch.no_grad():
                        model.eval()
                        model(ids[:, :-1])
                    return
                model.train()
                loss = F.cross_entropy(model(ids[:, :-1]).flatten(0, 1).float(), ids[:, 1:].flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = timed(step, device, 2)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        rows.append({"model": "large-1m", "length": length, "mode": mode, "seconds": seconds, "peak_gb": peak})
    return rows


def table(rows: list[dict], bandwidth: float) -> str:
    lines = [f"{'mode':<8} {'length':>9} {'batch':>5} {'torch.fft':>10} {'triton':>10} {'speed-up':>9} "
             f"{'torch GB':>9} {'triton GB':>9} {'triton BW':>10}"]  # fmt: skip
    keyed = {(r["impl"], r["mode"], r["length"]): r for r in rows}
    for mode in ("fwd", "fwd+bwd"):
        for length in sorted({r["length"] for r in rows}):
            base, fast = keyed.get(("torch", mode, length)), keyed.get(("triton", mode, length))
            if not (base and fast):
                continue
            note = "" if length <= MAX_LENGTH else "  four-step"
            lines.append(
                f"{mode:<8} {length:>9,} {fast['batch']:>5} "
                f"{base['seconds'] * 1e3:>8.3f}ms {fast['seconds'] * 1e3:>8.3f}ms "
                f"{base['seconds'] / fast['seconds']:>8.2f}x {base['peak_gb']:>9.3f} {fast['peak_gb']:>9.3f} "
                f"{fast['bytes'] / fast['seconds'] / bandwidth:>9.0%}{note}"
            )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode, style in (("fwd", "o-"), ("fwd+bwd", "s--")):
        points = sorted(
            (r["length"], t["seconds"] / r["seconds"])
            for r in rows
            if r["impl"] == "triton" and r["mode"] == mode
            for t in rows
            if t["impl"] == "torch" and t["mode"] == mode and t["length"] == r["length"]
        )
        if points:
            ax.plot(*zip(*points, strict=True), style, label=f"{mode}: speed-up over torch.fft")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("sequence length")
    ax.set_ylabel("speed-up")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2**i for i in range(10, 21)])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=768)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--end-to-end", action="store_true", help="also large-1m at 1M bases (forward, train step)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the CPU interpreter")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        args.lengths, args.batch, args.channels, args.repeat = [64, 300, MAX_LENGTH + 52], 2, 4, 2
    elif device != "cuda":
        raise SystemExit("no CUDA device: this benchmark measures GPU kernels (--smoke runs it tiny on the CPU)")
    dtype = DTYPES[args.dtype]
    bandwidth = copy_bandwidth(device)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu-interpreter"
    rows = []
    for length in args.lengths:
        batch = batch_for(length, args.batch, args.channels, dtype, device)
        for mode in ("fwd", "fwd+bwd"):
            for impl in ("torch", "triton"):
                row = measure(impl, mode, batch, args.channels, length, dtype, device, args.repeat)
                print(json.dumps(row), flush=True)
                rows.append(row)
    title = f"gated fftconv, {args.dtype}, hidden {args.channels}, {name}"
    print(f"\n{title}; copy bandwidth {bandwidth / 1e9:.0f} GB/s\n" + table(rows, bandwidth))
    result = {"device": name, "dtype": args.dtype, "copy_bandwidth": bandwidth, "rows": rows}
    if args.end_to_end:
        result["end_to_end"] = end_to_end(300 if args.smoke else 1_000_000, device)
        for row in result["end_to_end"]:
            print(
                f"{row['model']} {row['length']:,} {row['mode']}: {row['seconds']:.2f} s, peak {row['peak_gb']:.1f} GB"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "triton_fftconv_" + name.lower().replace(" ", "_").replace("/", "_")
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    try:
        plot(rows, args.out / f"{stem}.png", title)
    except ImportError:
        print("matplotlib is not installed: no plot")
    print(f"wrote {args.out / stem}.json")


if __name__ == "__main__":
    main()
