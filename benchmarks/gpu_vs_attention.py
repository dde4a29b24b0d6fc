"""Hyena on a GPU against attention: every path of ours, the reference, SDPA flash and SDPA math.

    python3 benchmarks/gpu_vs_attention.py --out benchmarks/results     # on a CUDA machine (make gpu-check)
    python3 benchmarks/gpu_vs_attention.py --smoke --out /tmp/x         # CPU, tiny shapes (CI)

What is timed, in the ``large-1m`` shape (d_model 256, 8 layers, MLP 1024; bf16 autocast):

* level ``model``: the whole model (embedding, blocks, tied head) of ours with ``fftconv_impl``
  ``auto``, ``torch``, ``triton`` and ``ref`` (the plain reference), and the same block shape
  with causal attention (``benchmarks/attention_lm.py``) through SDPA's flash and math backends;
* level ``operator``: one mixer, Hyena's operator against attention's qkv + SDPA + out;
* ``inference`` (eval, no grad) and ``train`` (forward, loss, backward; model level also AdamW);
* shapes: batch 1 at 1k to 1M bases, and batch x length = 256k tokens (1k x 256, 8k x 32,
  64k x 4, 256k x 1).

Each row: the median of CUDA-event-timed runs after a warm-up (which compiles the kernels),
tokens/s and peak memory (``max_memory_allocated``); for ours, the path the dispatcher took. A
row that fails (out of memory, a kernel error) is recorded with its error; rows that cannot fit
the ``--budget`` seconds, or attention whose L^2 work or memory is out of reach, are recorded as
skipped with the reason. Before timing, every Triton kernel the rows need is compiled on all
CPU cores at once (``hyenadna.ops.triton.compile_check.warm``). Operator rows also give the
relative error of our paths at that length against the float64 reference, in float32 (no
autocast). Writes ``<out>/gpu_vs_attention_<device>.json`` after every row, a table on stdout,
and a PNG where matplotlib is installed (``--plot-only`` redraws it from the JSON).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from attention_lm import AttentionLM  # noqa: E402

from hyenadna import HyenaConfig, HyenaDNA  # noqa: E402
from hyenadna.inference.cuda_graphs import GraphedModel  # noqa: E402
from hyenadna.io.atomic import atomic_write_text  # noqa: E402
from hyenadna.modules.operator import HyenaOperator  # noqa: E402
from hyenadna.ops import dispatch  # noqa: E402

OURS = ("auto", "graphed", "torch", "triton", "ref")  # graphed: auto, inference replayed as a CUDA graph
ATTENTION = ("sdpa_flash", "sdpa_math")
K = 1024


def shapes(smoke: bool) -> list[tuple[int, int]]:
    """(batch, length) pairs, the most telling first (so a short budget still measures them)."""
    if smoke:
        return [(1, 64), (1, 1030)]  # one program; the persistent four-step kernels
    return [(32, 8 * K), (4, 64 * K), (1, 1 * K), (1, 8 * K), (256, 1 * K), (1, 64 * K), (1, 1 << 20),
            (1, 16 * K), (1, 256 * K), (1, 4 * K)]  # fmt: skip


class AttentionMixer(nn.Module):
    """qkv projection, causal SDPA, out projection: attention's counterpart of one Hyena operator."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, d // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, length, d))


def config_for(impl: str, length: int, smoke: bool) -> HyenaConfig:
    width, layers = (8, 1) if smoke else (256, 8)
    return HyenaConfig(d_model=width, n_layer=layers, l_max=max(length, 1024), fftconv_impl=impl, embed_dropout=0.0,
                       filter_order=16 if smoke else 64)  # fmt: skip


def sdpa_backend(impl: str):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.FLASH_ATTENTION if impl == "sdpa_flash" else SDPBackend.MATH)


def attention_out_of_reach(impl: str, batch: int, length: int, level: str, smoke: bool) -> str | None:
    """Why an attention row is not run, or None: the math backend materialises B x heads x L^2
    float32 scores (per layer), flash does L^2 / 2 work per head."""
    if smoke:
        return None
    heads = 8
    if impl == "sdpa_math" and batch * heads * length**2 * 4 > 60e9:
        return f"skipped: the math backend's scores need {batch * heads * length**2 * 4 / 1e9:.0f} GB"
    if impl == "sdpa_flash" and length > 256 * K:
        return "skipped: L^2 work (over a minute per step at 1M)"
    return None


class Case:
    """One row: builds its module and inputs, and its step."""

    def __init__(self, level: str, mode: str, impl: str, batch: int, length: int, device: str, smoke: bool):
        self.level, self.mode, self.impl, self.batch, self.length = level, mode, impl, batch, length
        self.device, self.smoke = device, smoke
        train = mode == "train"
        if impl in ATTENTION:
            width, layers, heads = (8, 1, 2) if smoke else (256, 8, 8)
            module = AttentionLM(width, layers, 4 * width, heads) if level == "model" else AttentionMixer(width, heads)
        else:
            config = config_for("auto" if impl == "graphed" else impl, length, smoke)
            module = HyenaDNA(config) if level == "model" else HyenaOperator(config)
        self.module = module.to(device).train(train)
        self.run = GraphedModel(self.module) if impl == "graphed" else self.module
        width = 8 if smoke else 256
        if level == "model":
            self.inputs = torch.randint(0, 12, (batch, length), device=device)
        else:
            self.inputs = torch.randn(batch, length, width, device=device, requires_grad=train)
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=1e-4) if train and level == "model" else None
        self.route = None

    def autocast(self):
        return torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.device == "cuda")

    def step(self) -> None:
        grad = self.mode == "train"
        with torch.set_grad_enabled(grad), self.autocast(), self._backend():
            out = self.run(self.inputs)
            if grad:
                loss = out.float().square().mean() if self.level == "operator" else F.cross_entropy(
                    out.float().flatten(0, 1), self.inputs.flatten()
                )  # fmt: skip
                loss.backward()
                if self.optimizer is not None:
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)

    def _backend(self):
        import contextlib

        return sdpa_backend(self.impl) if self.impl in ATTENTION else contextlib.nullcontext()

    def record_route(self) -> str:
        """The operator path our dispatcher takes for this row's first layer."""
        if self.impl in ATTENTION:
            return ""
        routes = []
        real = dispatch.choose_path

        def spy(*args, **kwargs):
            route = real(*args, **kwargs)
            routes.append(route.operator.name)
            return route

        import hyenadna.model.hyena_dna as model_module
        import hyenadna.modules.operator as operator_module

        operator_module.choose_path = model_module.choose_path = spy
        try:
            self.step()
        finally:
            operator_module.choose_path = model_module.choose_path = real
        return ",".join(sorted(set(routes)))


def timed(fn, device: str, repeat: int, budget: float) -> list[float]:
    """Seconds per call, up to ``repeat`` calls within ``budget`` seconds."""
    times = []
    start = time.perf_counter()
    while len(times) < repeat and (not times or time.perf_counter() - start < budget):
        if device == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(begin.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times


def measure(case: Case, repeat: int, budget: float) -> dict:
    device = case.device
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    route = case.record_route()  # warm-up: compiles, plans, caches
    if device == "cuda":
        torch.cuda.synchronize()
    warmup = time.perf_counter() - t0
    times = timed(case.step, device, repeat, budget)
    extra = {}
    if case.impl == "graphed":  # the replayed graph against the eager forward, same weights and input
        with torch.no_grad(), case.autocast():
            graphed, eager = case.run(case.inputs).float(), case.module(case.inputs).float()
        extra["rel_err_vs_eager"] = float((graphed - eager).norm() / eager.norm())
    seconds = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None
    tokens = case.batch * case.length
    return {"ms": seconds * 1e3, "tokens_per_s": tokens / seconds, "peak_gb": peak, "route": route,
            "warmup_s": warmup, "runs": len(times), **extra}  # fmt: skip


def operator_error(impl: str, length: int, device: str, smoke: bool) -> float:
    """Relative error of one operator through ``impl`` (float32, no autocast, inference)
    against the same weights through the reference in float64, at this length."""
    torch.manual_seed(0)
    config = config_for(impl, length, smoke)
    layer = HyenaOperator(config).to(device).eval()
    reference = HyenaOperator(HyenaConfig(**{**config.to_dict(), "fftconv_impl": "ref"})).to(device).double().eval()
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(1, length, config.d_model, device=device)
    with torch.no_grad():
        got, want = layer(x).double(), reference(x.double())
    return float((got - want).norm() / want.norm())


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return "cpu"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def warm_kernels(rows: list[tuple], device: str, jobs: int) -> float:
    """Compile every Triton kernel the rows of ours will launch, on ``jobs`` processes at once."""
    from hyenadna.ops.triton.compile_check import gated_conv_specialisations, warm

    specs = set()
    for _level, mode, impl, batch, length in rows:
        if impl in ("auto", "triton") and length <= 2 * K * K:
            specs |= gated_conv_specialisations([length], [torch.bfloat16], grad=mode == "train", batch=batch,
                                                channels=256)  # fmt: skip
    start = time.perf_counter()
    warm(sorted(specs, key=lambda s: s.describe()), torch.device(device), jobs)
    return time.perf_counter() - start


def format_table(result: dict) -> str:
    lines = [f"{'level':9} {'mode':9} {'batch':>5} {'length':>8} {'impl':11} {'ms':>9} {'Mtok/s':>8} {'peak GB':>8} "
             f"{'route / note':24}"]  # fmt: skip
    for r in result["rows"]:
        head = f"{r['level']:9} {r['mode']:9} {r['batch']:>5} {r['length']:>8} {r['impl']:11}"
        if "ms" in r:
            peak = "" if r["peak_gb"] is None else f"{r['peak_gb']:.2f}"
            note = r["route"] + (f" (vs eager {r['rel_err_vs_eager']:.1e})" if "rel_err_vs_eager" in r else "")
            lines.append(f"{head} {r['ms']:>9.2f} {r['tokens_per_s'] / 1e6:>8.2f} {peak:>8} {note:24}")
        else:
            lines.append(f"{head} {'':>9} {'':>8} {'':>8} {r.get('error', r.get('skipped', ''))[:80]}")
    for e in result.get("errors_vs_fp64", []):
        lines.append(f"operator error vs float64 reference, {e['impl']} at {e['length']}: {e['rel_err']}")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no PNG (python3 benchmarks/gpu_vs_attention.py --plot-only JSON)")
        return
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    for ax, (level, mode) in zip(axes.flat, [(lv, m) for lv in ("model", "operator") for m in ("inference", "train")]):
        for impl in (*OURS, *ATTENTION):
            points = sorted((r["length"], r["ms"]) for r in result["rows"]
                            if r["level"] == level and r["mode"] == mode and r["impl"] == impl and r["batch"] == 1
                            and "ms" in r)  # fmt: skip
            if points:
                ax.plot(*zip(*points), marker="o", label=impl)
        ax.set(xscale="log", yscale="log", title=f"{level}, {mode}, batch 1", xlabel="length", ylabel="ms")
        ax.legend(fontsize=8)
    fig.suptitle(f"Hyena (large-1m shape) against attention, {result['device']}, bf16")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, on the CPU where there is no GPU")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for all rows (warm-up included)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=16, help="processes compiling the Triton kernels")
    parser.add_argument("--only", default=None, help="regex over 'level mode impl batch length': rows to run")
    parser.add_argument("--plot-only", default=None, help="redraw the PNG of this JSON and print its table")
    args = parser.parse_args()
    if args.smoke:
        args.repeat = 1
    if args.plot_only:
        result = json.loads(Path(args.plot_only).read_text())
        print(format_table(result))
        plot(result, Path(args.plot_only).with_suffix(".png"))
        return

    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = device_name(device)
    path = out / f"gpu_vs_attention_{slug(name)}.json"
    rows = [(level, mode, impl, batch, length) for batch, length in shapes(args.smoke)
            for level in ("operator", "model") for mode in ("train", "inference")
            for impl in (*OURS, *ATTENTION)]  # fmt: skip
    if args.only:
        rows = [r for r in rows if re.search(args.only, " ".join(map(str, r)))]
    result = {"device": name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "smoke": args.smoke,
              "budget_s": args.budget, "rows": [], "errors_vs_fp64": []}  # fmt: skip
    try:
        import triton

        result["triton"] = triton.__version__
    except ImportError:
        result["triton"] = None
    start = time.perf_counter()
    if device == "cuda":
        result["compile_s"] = warm_kernels(rows, device, args.jobs)
        print(f"compiled the Triton kernels in {result['compile_s']:.0f} s", flush=True)
    for level, mode, impl, batch, length in rows:
        row = {"level": level, "mode": mode, "impl": impl, "batch": batch, "length": length}
        reason = attention_out_of_reach(impl, batch, length, level, args.smoke) if impl in ATTENTION else None
        if impl == "graphed" and (mode == "train" or level == "operator"):
            reason = "skipped: CUDA graphs are for fixed-shape model inference"
        if impl == "ref" and length > 256 * K and mode == "train" and not args.smoke:
            reason = "skipped: the reference's complex autograd at 1M needs over 140 GB"
        left = args.budget - (time.perf_counter() - start)
        if reason is None and left < 5:
            reason = "skipped: out of the time budget"
        if reason:
            row["skipped"] = reason
        else:
            try:
                case = Case(level, mode, impl, batch, length, device, args.smoke)
                row.update(measure(case, args.repeat, min(left / 4, 10.0)))
            except Exception as error:  # recorded, and the run goes on
                row["error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}"
                if not isinstance(error, torch.OutOfMemoryError):
                    traceback.print_exc()
            finally:
                case = None
                if device == "cuda":
                    torch.cuda.empty_cache()
        result["rows"].append(row)
        print(format_table({"rows": [row]}).splitlines()[1], flush=True)
        atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    for length in (1 * K, 64 * K) if not args.smoke else (64, 1030):
        for impl in ("auto", "torch", "triton"):
            try:
                err = operator_error(impl, length, device, args.smoke)
            except Exception as error:
                err = f"{type(error).__name__}: {error}"
            result["errors_vs_fp64"].append({"impl": impl, "length": length, "rel_err": err})
    result["total_s"] = time.perf_counter() - start
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    print(format_table(result))
    print(f"wrote {path} ({result['total_s']:.0f} s)")
    plot(result, path.with_suffix(".png"))


if __name__ == "__main__":
    main()
