"""The ``hyenadna`` command, generated from the pipelines' ``run_*`` functions.

Each subcommand is a ``run_*`` function of :mod:`hyenadna.pipelines`: its signature gives the
options (dataclass groups such as ``--trainer.devices``), its docstring the help text, so each
option is declared once. Every option can come from YAML (``--config recipe.yaml``) or a flag;
``--print_config`` shows the resolved configuration.

* ``pretrain``: next-base pretraining on FASTA genomes;
* ``finetune``: fine-tune a head (and the backbone) on labelled sequences;
* ``tune``: search fine-tuning options on the validation split (Optuna), retrain the best on several seeds;
* ``calibrate``: a finished fine-tune's probabilities calibrated on its validation split;
* ``predict``: per-sequence probabilities or values of a fine-tuned model, to TSV;
* ``embed``: sequence embeddings of FASTA records, BED regions or BAM reads, to HDF5;
* ``score``: variant effect scores (VCF + genome) or sequence log-likelihoods (FASTA), to TSV;
* ``loss``: bits per base of a model on a FASTA file;
* ``heldout``: bits per base of a model and of order-k Markov chains on a pretraining run's held-out windows;
* ``explain``: attributions (ISM, gradient x input, integrated gradients) to HDF5, ISM to TSV, logos;
* ``motifs``: patterns from attributions, matched against JASPAR;
* ``generate``: new bases sampled after prompts from a language model, to FASTA;
* ``info``: a model's configuration and parameter count, and the runtime (allocator, threads).

A command prints its result to stdout as JSON, or as a table where :data:`REPORTS` has one;
progress bars and logs go to stderr. Boolean options take ``true`` / ``false`` or stand alone
(``--overwrite`` means ``--overwrite true``). ``--version`` prints the version.

A refused option or input prints one line and exits with status 2; a run stopped by Ctrl-C or
SIGTERM prints ``hyenadna: stopped`` and exits with 130; anything else is a bug of ours and
keeps its traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from hyenadna.cli.option_errors import (
    check_groups,
    in_config_files,
    innermost_message,
    is_lightning_misconfiguration,
    refused_by_options,
)
from hyenadna.cli.runtime import reexec_with_jemalloc
from hyenadna.errors import HyenaDNAError

# subcommand -> "module:function"; imported only when the subcommand is used (Lightning is slow to import)
COMMANDS = {
    "pretrain": "hyenadna.pipelines.pretrain:run_pretrain",
    "finetune": "hyenadna.pipelines.finetune:run_finetune",
    "tune": "hyenadna.pipelines.tune:run_tune",
    "calibrate": "hyenadna.pipelines.calibrate:run_calibrate",
    "predict": "hyenadna.pipelines.predict:run_predict",
    "embed": "hyenadna.pipelines.embed:run_embed",
    "score": "hyenadna.pipelines.score:run_score",
    "loss": "hyenadna.pipelines.lm_loss:run_loss",
    "heldout": "hyenadna.pipelines.heldout:run_heldout",
    "generate": "hyenadna.pipelines.generate:run_generate",
    "explain": "hyenadna.pipelines.explain:run_explain",
    "motifs": "hyenadna.pipelines.motifs:run_motifs",
    "info": "hyenadna.cli.info:run_info",
}
DISTRIBUTED_INFERENCE = ("predict", "embed", "score", "loss", "explain")
"""Subcommands that may run on several processes (--trainer.devices): they close the process group."""


def command(name: str) -> Callable:
    """The ``run_*`` function behind subcommand ``name``."""
    module, function = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), function)


def metrics_table(
    model: dict[str, float],
    baseline: dict[str, float] | None,
    cnn: dict[str, float] | None = None,
    calibrated: dict[str, float] | None = None,
) -> str:
    """Test metrics of the fine-tuned model (and of its calibrated probabilities) beside the
    baselines it ran with, as a plain-text table."""
    columns = [("calibrated", calibrated), ("CNN", cnn), ("k-mer LR", baseline)]
    columns = [(title, values) for title, values in columns if values]
    lines = [f"{'test metric':<16} {'fine-tuned':>11}" + "".join(f" {title:>10}" for title, _ in columns)]
    for name, value in model.items():  # the k-mer model's chosen C is not a metric: not in model
        others = "".join(f" {values[name]:>10.4f}" if name in values else f" {'':>10}" for _, values in columns)
        lines.append(f"{name:<16} {value:>11.4f}{others}")
    return "\n".join(lines)


def _finetune_report(result: dict) -> str:
    table = ""
    if "test" in result:
        others = result.get("kmer_baseline"), result.get("cnn_baseline"), result.get("test_calibrated")
        table = metrics_table(result["test"], *others) + "\n"
    return table + json.dumps(result, indent=2, default=str)


def _tune_report(result: dict) -> str:
    from hyenadna.pipelines.tune import tune_table

    return tune_table(result) + "\n" + json.dumps(result, indent=2, default=str)


def _loss_report(result: dict) -> str:
    from hyenadna.pipelines.lm_loss import loss_table

    return loss_table(result)


def _heldout_report(result: dict) -> str:
    from hyenadna.pipelines.heldout import heldout_table

    return heldout_table(result)


REPORTS: dict[str, Callable[[dict], str]] = {"finetune": _finetune_report, "tune": _tune_report,
                                             "loss": _loss_report, "heldout": _heldout_report}  # fmt: skip


def build_parser(names: Sequence[str] = tuple(COMMANDS)):
    """The parser with the subcommands ``names`` (all for the top-level ``--help``)."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    from hyenadna import __version__

    parser = ArgumentParser(
        exit_on_error=False,  # main() prints the one message that matters, without the usage
        allow_abbrev=False,  # --input.windo is a typo, not --input.window
        prog="hyenadna",
        version=__version__,
        description="Long-context DNA language models (HyenaDNA).",
        epilog="Runs on jemalloc when installed (faster on CPUs); HYENADNA_ALLOCATOR=system keeps the system "
        "allocator. `hyenadna info` shows the runtime.",
    )
    subcommands = parser.add_subcommands(dest="command")
    for name in names:
        fn = command(name)
        summary = (fn.__doc__ or "").split("\n")[0]
        sub = ArgumentParser(description=summary, exit_on_error=False, allow_abbrev=False)
        sub.add_argument("--config", action=ActionConfigFile, help="a YAML file with any of the options below")
        sub.add_function_arguments(fn, fail_untyped=True, as_positional=False)
        subcommands.add_subcommand(name, sub, help=summary)
    return parser


def boolean_options(parser: Any, name: str) -> set[str]:
    """The option strings of subcommand ``name`` whose type is a boolean."""
    sub = parser._subcommands_action._name_parser_map[name]
    flags = set()
    for action in sub._actions:
        hint = getattr(action, "_typehint", None)
        if hint is bool or (hint is not None and set(getattr(hint, "__args__", ())) == {bool, type(None)}):
            flags |= set(action.option_strings)
    return flags


def with_bare_flags(args: list[str], flags: set[str]) -> list[str]:
    """``args`` with ``true`` after each boolean flag given without a value."""
    out = []
    for i, arg in enumerate(args):
        out.append(arg)
        following = args[i + 1] if i + 1 < len(args) else None
        if arg in flags and (following is None or following.startswith("--")):
            out.append("true")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """The ``hyenadna`` command. Run as a program (``argv`` None), it first re-executes itself
    with jemalloc as the allocator when installed (see :mod:`hyenadna.cli.runtime`)."""
    # Lightning's own deprecation noise about torch internals says nothing to our users.
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    try:
        if argv is None:  # before any work: the process is replaced
            reexec_with_jemalloc()
        args = list(sys.argv[1:] if argv is None else argv)
        chosen = [a for a in args[:1] if a in COMMANDS]  # only the subcommand in use is imported
        parser = build_parser(chosen or tuple(COMMANDS))
        if chosen:
            args = with_bare_flags(args, boolean_options(parser, chosen[0]))
        fn = command(chosen[0]) if chosen else None
        try:
            cfg = parser.parse_args(args)
            name = cfg.command
            fn = command(name)
            check_groups(fn, cfg[name])
            init = parser.instantiate(cfg)[name]
        except Exception as exc:
            if not refused_by_options(exc):
                raise  # a bug of ours, say in a dataclass's __post_init__: the traceback is what a report needs
            where = f"hyenadna {chosen[0]} --help" if chosen else "hyenadna --help"
            message = in_config_files(innermost_message(exc, fn), args)
            raise HyenaDNAError(f"{message} (see {where})") from None
        kwargs = {k: v for k, v in dict(init).items() if k not in ("config", "__path__")}
        with contextlib.redirect_stdout(sys.stderr):  # progress bars and logs: stdout is for the result
            result = command(name)(**kwargs)
            if name in DISTRIBUTED_INFERENCE:
                from hyenadna.inference.sharding import close_processes

                close_processes()
    except HyenaDNAError as exc:
        print(f"hyenadna: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (hyenadna.io.atomic has told what was kept)
        signal = re.fullmatch(r"signal \d+", str(exc))
        print(f"hyenadna: stopped{f' by {signal.group()}' if signal else ''}", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        if not is_lightning_misconfiguration(exc):
            raise  # a bug of ours: the traceback is what a report needs
        print(f"hyenadna: error: {innermost_message(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    if result is not None:
        print(REPORTS.get(name, lambda r: json.dumps(r, indent=2, default=str))(result))


if __name__ == "__main__":
    main()
