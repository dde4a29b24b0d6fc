"""The ``hyenadna`` command.

Subcommands:

* ``hyenadna loss``: next-base loss of a model on a FASTA file;
* ``hyenadna info``: a model's configuration and parameter count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import torch

from hyenadna import PRESETS, HyenaDNAError, load


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="tiny-1k",
        help=f"a preset name (random weights: {', '.join(PRESETS)}) or a model folder, ours or a released "
        "HyenaDNA checkpoint (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for random initialisation (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")


def _load_model(args: argparse.Namespace):
    torch.manual_seed(args.seed)
    return load(args.model).to(args.device).eval()


def _cmd_loss(args: argparse.Namespace) -> None:
    from hyenadna.pipelines.lm_loss import fasta_lm_loss

    model = _load_model(args)
    window = args.window or model.config.l_max
    start = time.perf_counter()
    results = fasta_lm_loss(model, args.fasta, window=window, batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    print(f"model {args.model} ({model.num_parameters():,} parameters), window {window}")
    print(f"{'record':<32} {'bases':>10} {'scored':>10} {'nats/base':>10} {'bits/base':>10}")
    for r in results:
        print(f"{r.name[:32]:<32} {r.bases:>10,} {r.scored:>10,} {r.nats_per_base:>10.4f} {r.bits_per_base:>10.4f}")
    bases = sum(r.bases for r in results)
    print(f"{bases:,} bases in {seconds:.1f} s ({bases / seconds:,.0f} bases/s)")


def _cmd_info(args: argparse.Namespace) -> None:
    model = _load_model(args)
    print(json.dumps({**model.config.to_dict(), "parameters": model.num_parameters()}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyenadna", description="Long-context DNA language models (HyenaDNA).")
    sub = parser.add_subparsers(dest="command", required=True)

    loss = sub.add_parser("loss", help="next-base loss of a model on a FASTA file")
    _add_model_args(loss)
    loss.add_argument("--fasta", required=True, help="FASTA file (plain or gzip)")
    loss.add_argument("--window", type=int, default=None, help="bases per window (default: the model's l_max)")
    loss.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default: %(default)s)")
    loss.set_defaults(func=_cmd_loss)

    info = sub.add_parser("info", help="print a model's configuration and parameter count")
    _add_model_args(info)
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except HyenaDNAError as exc:
        print(f"hyenadna: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
