"""Training and inference throughput of the shapes people train on a CPU, against the matmul floor.

    .venv/bin/python benchmarks/train_throughput.py            # the whole table (about 10 minutes)
    .venv/bin/python benchmarks/train_throughput.py --quick    # fewer repeats and steps
    .venv/bin/python benchmarks/train_throughput.py --quick --precision bf16-mixed   # CPU autocast

Rows, each in tokens per second and as a share of its **matmul floor**:

* ``forward`` / ``train step``: the bare model from Python (``import hyenadna``, this process's
  allocator), ``tiny-1k`` (d_model 128, 2 layers) and ``small-32k`` (d_model 256, 4 layers)
  shapes at batch x length 64 x 200, 8 x 1,024 and 1 x 16,384 (l_max raised where needed);
  forward under ``torch.inference_mode`` in eval mode, a training step as forward, next-base
  cross-entropy, backward and AdamW in train mode;
* ``hyenadna pretrain`` (``tiny-1k``, 16 x 1,024 windows of the bundled lambda genome) and
  ``hyenadna finetune`` (``tiny-1k``, 64 x 200 on the bundled Oct4/MafK task), run as the command
  (its allocator), their steady-state steps as the run's ``StepTimer`` reports them (start-up,
  validation and checkpoint saves left out);
* ``model.embed`` of 10,000 sequences of 200 bases (``tiny-1k``, batch 64).

``--precision bf16-mixed`` runs the model rows under ``torch.autocast("cpu", torch.bfloat16)``
and the commands with ``--trainer.precision bf16-mixed`` (the fused training functions then
multiply in bfloat16, :mod:`hyenadna.ops.precision`), against a floor at the bfloat16 product
rate.

The floor is the time the matrix products alone need at this machine's sgemm rate (bfloat16:
its bfloat16 rate), measured in the same process (a 4096 x 1024 x 1024 product): 2 FLOPs per
matmul weight per token for inference, 6 for training, over the in- and out-projections, the
MLP and the tied LM head (the embedding's matrix; the heads of fine-tuning and the filter MLP
are left out, their work does not grow with the tokens or is negligible).
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

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
SHAPES = {"tiny-1k": (128, 2), "small-32k": (256, 4)}
SIZES = ((64, 200), (8, 1024), (1, 16384))


def gemm_rate(dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a 4096 x 1024 x 1024 product in ``dtype``, best of five."""
    a, b = torch.randn(4096, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(5))
    return 2 * 4096 * 1024 * 1024 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_weights(d_model: int, n_layer: int, vocab: int = 16, head: bool = True) -> int:
    """Weights of the products every token goes through: 12 d^2 per layer (in-projection 3d x d,
    out-projection d x d, MLP 4d x d twice) and the tied LM head."""
    return n_layer * 12 * d_model**2 + (vocab * d_model if head else 0)


def bare_rows(repeat: int, rate: float, autocast: bool = False) -> list[dict]:
    rows = []
    for preset, (d, layers) in SHAPES.items():
        for batch, length in SIZES:
            rows += measure_bare(preset, d, layers, batch, length, repeat, rate, autocast)
    return rows


def measure_bare(
    preset: str, d: int, layers: int, batch: int, length: int, repeat: int, rate: float, autocast: bool = False
) -> list[dict]:
    """The forward pass and the training step of one shape and size, best of ``repeat``;
    ``autocast``: both under the CPU's bfloat16 autocast."""
    import hyenadna

    torch.manual_seed(0)
    model = hyenadna.load(preset, l_max=max(length + 2, 1026), embed_dropout=0.0, resid_dropout=0.0)
    ids = torch.randint(7, 11, (batch, length + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def forward() -> None:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            model(inputs)

    def train_step() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    rows = []
    tokens, weights = batch * length, matmul_weights(d, layers)
    for mode, step, flops in (("forward", forward, 2), ("train step", train_step, 6)):
        model.train(mode == "train step")
        step()  # warm-up: FFT plans, allocator, filter cache
        seconds = min(_timed(step) for _ in range(repeat))
        floor = flops * weights * tokens / rate
        rows.append(_row(f"{preset} {mode}", f"{batch} x {length:,}", tokens / seconds, floor / seconds))
    return rows


def embed_row(rate: float) -> dict:
    import hyenadna

    torch.manual_seed(0)
    model = hyenadna.load("tiny-1k")
    gen = torch.Generator().manual_seed(0)
    seqs = ["".join("ACGT"[i] for i in torch.randint(0, 4, (200,), generator=gen).tolist()) for _ in range(10_000)]
    model.embed(seqs[:64], batch_size=64)
    seconds = _timed(lambda: model.embed(seqs, batch_size=64))
    tokens = 200 * len(seqs)
    floor = 2 * matmul_weights(128, 2, head=False) * tokens / rate
    return _row("model.embed", "10,000 x 200", tokens / seconds, floor / seconds)


def command_rows(steps: int, rate: float, precision: str = "32-true") -> list[dict]:
    """``hyenadna pretrain`` and ``hyenadna finetune`` as a user runs them; their steady-state
    tokens/s from the run's summary."""
    hyenadna = str(Path(sys.executable).parent / "hyenadna")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        common = ["--trainer.max_steps", str(steps), "--trainer.progress_bar", "false",
                  "--trainer.checkpoint_every_n_steps", "0", "--trainer.precision", precision]  # fmt: skip
        pretrain = [
            hyenadna, "pretrain", "--config", str(REPO / "configs/demo_pretrain.yaml"), "--data.batch_size", "16",
            "--data.length_warmup", "[]", "--data.samples_per_epoch", str(16 * (steps + 4)), "--output", f"{tmp}/p",
            *common,
        ]  # fmt: skip
        finetune = [
            hyenadna, "finetune", "--config", str(REPO / "configs/tasks/tf_oct4_mafk.yaml"), "--model.name_or_path",
            "tiny-1k", "--data.batch_size", "64", "--trainer.val_every_n_steps", "100000", "--tuning.baseline",
            "false", "--tuning.cnn_baseline", "false", "--tuning.patience", "0", "--output", f"{tmp}/f", *common,
        ]  # fmt: skip
        for name, argv, summary, tokens, flops in (
            ("hyenadna pretrain", pretrain, f"{tmp}/p/summary.json", (16, 1024), matmul_weights(128, 2)),
            ("hyenadna finetune", finetune, f"{tmp}/f/metrics.json", (64, 200), matmul_weights(128, 2, head=False)),
        ):
            subprocess.run(argv, check=True, cwd=REPO, capture_output=True, text=True)
            timing = json.loads(Path(summary).read_text())["throughput"]
            speed = timing["tokens_per_s"]
            rows.append(_row(name, f"{tokens[0]} x {tokens[1]:,}", speed, 6 * flops * speed / rate))
    return rows


def _row(what: str, size: str, tokens_per_s: float, share: float) -> dict:
    return {"what": what, "size": size, "tokens_per_s": tokens_per_s, "floor_share": share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two repeats and 15 command steps")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--precision", choices=("32-true", "bf16-mixed"), default="32-true",
                        help="bf16-mixed: the model rows under CPU bfloat16 autocast, the commands too")  # fmt: skip
    args = parser.parse_args()
    low = args.precision == "bf16-mixed"
    rate = gemm_rate(torch.bfloat16 if low else torch.float32)
    rows = bare_rows(2 if args.quick else 3, rate, low)
    rows += command_rows(15 if args.quick else 30, rate, args.precision)
    if not low:  # model.embed has no precision setting
        rows.append(embed_row(rate))
    allocator = "jemalloc" if "jemalloc" in os.environ.get("LD_PRELOAD", "") else "system"
    gemm = "bf16 gemm" if low else "sgemm"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}, {gemm} "
          f"{rate / 1e9:.0f} GFLOP/s, this process on the {allocator} allocator")  # fmt: skip
    print(f"{'what':<28} {'batch x length':>16} {'tokens/s':>10} {'floor share':>12}")
    for r in rows:
        print(f"{r['what']:<28} {r['size']:>16} {r['tokens_per_s']:>10,.0f} {r['floor_share']:>11.0%}")
    if args.json:
        result = {"precision": args.precision, "gemm_flops": rate, "rows": rows}
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
