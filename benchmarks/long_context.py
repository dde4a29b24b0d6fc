"""Long-context speed and memory: hyenadna vs the reference algorithm vs causal attention.

    .venv/bin/python benchmarks/long_context.py                      # 1k to 32k (a few minutes)
    .venv/bin/python benchmarks/long_context.py --lengths 1024 32768 160000 1000000

``large-1m`` shape (d_model 256, 8 layers, d_inner 1024), batch 1, float32, random weights
(speed does not depend on them). For each length:

* inference: final hidden states of one sequence (``torch.inference_mode`` for ours,
  ``torch.no_grad`` for the baselines);
* training step: forward, next-base cross-entropy, backward and an AdamW step; ours also with
  activation checkpointing of mixer and MLP.

Implementations: ``hyenadna`` (this package), ``reference`` (the same model with
``fftconv_impl="ref"``: the package's plain reference in every layer,
:func:`hyenadna.ops.reference.hyena_operator_ref`, HyenaDNA's arithmetic, filter recomputed each
call, FFT at 2L, nothing chunked or cached; tests/ops/test_paths.py holds our paths to it) and
``attention`` (the same block shape with causal ``scaled_dot_product_attention``; skipped beyond
``--attention-max``). Each measurement runs in a fresh process so that its peak RSS
(``ru_maxrss``, which includes the ~0.3 GB of torch itself) is its own; times are the best of
``--repeat`` runs after a warm-up (for inputs up to ``--warmup-max``), and the first run's
time is shown beside them: it includes one-off costs, such as ours filling its cache of the
filters' spectra (``HyenaConfig.filter_cache_mb``), which later calls of the same length skip. Results are merged into
the earlier JSON of the same machine unless ``--fresh``.

Allocator: ours runs as the ``hyenadna`` command does, under jemalloc when it is installed
(hyenadna/cli/runtime.py explains why), and the baselines under the system allocator, as their own
code would. ``IMPL@jemalloc`` / ``IMPL@system`` (say ``reference@jemalloc``) pick the other one,
to show how much of a difference is the allocator's.

Prints a table, writes JSON and a PNG plot (needs matplotlib: ``pip install matplotlib``, or
``make bench-long``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("inference", "train")


def _build(impl: str, mode: str):
    import torch

    import hyenadna

    torch.manual_seed(0)
    if impl == "attention":
        from attention_lm import AttentionLM

        return AttentionLM(d_model=256, n_layer=8, d_inner=1024)
    overrides = {"embed_dropout": 0.0, "resid_dropout": 0.0}
    if impl == "reference":  # the package's plain reference in every layer, nothing chunked or cached
        overrides |= {"fftconv_impl": "ref", "inference_chunk": 0, "filter_cache_mb": 0}
    if impl == "hyenadna+ckpt":
        overrides |= {"checkpoint_mixer": True, "checkpoint_mlp": True}
    return hyenadna.load("large-1m", **overrides)


def measure_one(impl: str, mode: str, length: int, repeat: int, warmup: bool = True) -> dict:
    """Runs in its own process (see main): time and peak RSS of one configuration."""
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(HERE))

    kind = impl.split("@", 1)[0]  # the allocator suffix was applied by run_isolated
    model = _build(kind, mode)
    ids = torch.randint(7, 11, (1, length + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]

    if mode == "inference":
        model.eval()
        context = torch.inference_mode if kind.startswith("hyenadna") else torch.no_grad

        def step() -> None:
            with context():
                model.hidden_states(inputs)

    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    times, skip = [], int(warmup)
    for _ in range(repeat + skip):  # the first run also pays for FFT plans, allocator, filter cache
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    first, times = times[0], times[skip:]
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best = min(times)
    from hyenadna.training.runtime import jemalloc_loaded

    return {"impl": impl, "mode": mode, "length": length, "seconds": best, "tokens_per_s": length / best,
            "first_seconds": first, "peak_rss_gb": peak_kb / 2**20,
            "allocator": "jemalloc" if jemalloc_loaded() else "system"}  # fmt: skip


def allocator_of(impl: str) -> str:
    """``impl@jemalloc`` / ``impl@system`` name the allocator; without a suffix ours runs as the
    ``hyenadna`` command does (jemalloc when installed, hyenadna/cli/runtime.py) and the baselines
    as their own code would (the system allocator)."""
    if "@" in impl:
        return impl.split("@", 1)[1]
    return "jemalloc" if impl.startswith("hyenadna") else "system"


def environment_for(impl: str) -> dict[str, str]:
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    from hyenadna.cli.runtime import allocator_environment

    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF", "HYENADNA_ALLOCATOR_SET")}
    if allocator_of(impl) == "system":
        return env
    jemalloc = allocator_environment({**env, "HYENADNA_ALLOCATOR": "jemalloc"})
    if jemalloc is None:
        raise SystemExit(f"{impl}: jemalloc is not installed (apt install libjemalloc2)")
    return jemalloc


def run_isolated(impl: str, mode: str, length: int, repeat: int, timeout: float, warmup_max: int) -> dict | None:
    command = [sys.executable, __file__, "--one", impl, mode, str(length), "--repeat", str(repeat)]
    command += ["--warmup-max", str(warmup_max)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment_for(impl))
    except subprocess.TimeoutExpired:
        return {"impl": impl, "mode": mode, "length": length, "error": f"over {timeout:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
        return {"impl": impl, "mode": mode, "length": length, "error": last[:80]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    colors = {"hyenadna": "tab:orange", "hyenadna+ckpt": "tab:red", "reference": "tab:green", "attention": "tab:blue"}
    for col, mode in enumerate(MODES):
        for impl in sorted({r["impl"] for r in results}):
            rows = sorted((r for r in results if r["impl"] == impl and r["mode"] == mode and "seconds" in r),
                          key=lambda r: r["length"])  # fmt: skip
            if rows:
                lengths = [r["length"] for r in rows]
                # an allocator variant (impl@allocator) shares its impl's color, dashed
                style = {"label": impl, "color": colors.get(impl.split("@")[0]), "ls": "--" if "@" in impl else "-"}
                axes[0, col].plot(lengths, [r["tokens_per_s"] for r in rows], "o", **style)
                axes[1, col].plot(lengths, [r["peak_rss_gb"] for r in rows], "o", **style)
        axes[0, col].set_title(f"{mode}: tokens/s (higher is better)")
        axes[1, col].set_title(f"{mode}: peak RSS, GB (lower is better)")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("sequence length")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle(f"large-1m shape, batch 1, fp32 — {machine()}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def table(results: list[dict]) -> str:
    lines = [f"{'mode':<10} {'length':>10} {'impl':<18} {'seconds':>9} {'1st call':>9} {'tokens/s':>10} "
             f"{'peak GB':>8} {'vs ref':>7}"]  # fmt: skip
    ref = {(r["mode"], r["length"]): r for r in results if r["impl"] == "reference" and "seconds" in r}
    for r in sorted(results, key=lambda r: (MODES.index(r["mode"]), r["length"], r["impl"])):
        if "error" in r:
            lines.append(f"{r['mode']:<10} {r['length']:>10,} {r['impl']:<18} {r['error']}")
            continue
        base = ref.get((r["mode"], r["length"]))
        speedup = f"{base['seconds'] / r['seconds']:.2f}x" if base else ""
        first = f"{r['first_seconds']:.2f}" if "first_seconds" in r else ""  # not kept by earlier runs
        lines.append(
            f"{r['mode']:<10} {r['length']:>10,} {r['impl']:<18} {r['seconds']:>9.2f} {first:>9} "
            f"{r['tokens_per_s']:>10,.0f} {r['peak_rss_gb']:>8.2f} {speedup:>7}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 32768])
    parser.add_argument("--impls", nargs="+", default=["hyenadna", "reference", "attention"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--attention-max", type=int, default=32768, help="longest input for attention")
    parser.add_argument("--train-max", type=int, default=32768, help="longest input for training steps")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--warmup-max", type=int, default=200_000,
                        help="longest input given a warm-up run (beyond it, one-off costs are noise)")  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="forget earlier results instead of merging")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--one", nargs=3, metavar=("IMPL", "MODE", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        impl, mode, length = args.one
        print(json.dumps(measure_one(impl, mode, int(length), args.repeat, int(length) <= args.warmup_max)))
        return
    results = []
    for length in args.lengths:
        for mode in args.modes:
            impls = list(args.impls)
            if mode == "train":
                if length > args.train_max:
                    continue
                impls += ["hyenadna+ckpt"] if "hyenadna" in impls else []
            for impl in impls:
                if impl.startswith("attention") and length > args.attention_max:
                    continue
                result = run_isolated(impl, mode, length, args.repeat, args.timeout, args.warmup_max)
                print(json.dumps(result), flush=True)
                results.append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    results = merged(args.out / "long_context_cpu.json", results, machine(), args.fresh)
    print(f"\n{machine()}\n" + table(results))
    (args.out / "long_context_cpu.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=1))
    replot(args.out, results)


def merged(path: Path, results: list[dict], here: str, fresh: bool) -> list[dict]:
    """This run's results plus the earlier ones of the same machine that it did not redo,
    so that a long run at 1M bases can be added to a table of shorter lengths."""
    if fresh or not path.exists():
        return results
    earlier = json.loads(path.read_text())
    if earlier.get("machine") != here:
        return results
    redone = {(r["impl"], r["mode"], r["length"]) for r in results}
    kept = [r for r in earlier["results"] if (r["impl"], r["mode"], r["length"]) not in redone]
    return kept + results


def replot(folder: Path, results: list[dict]) -> None:
    try:
        plot(results, folder / "long_context_cpu.png")
        print(f"plot: {folder / 'long_context_cpu.png'}")
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")


if __name__ == "__main__":
    main()
