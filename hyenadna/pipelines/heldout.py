"""``hyenadna heldout``: bits per base of a pretrained model and of Markov chains, on the held-out
windows of a pretraining run.

A bits-per-base figure means little alone. This command reads the ``data`` section of a
pretraining recipe (or the ``config.yaml`` a run folder keeps), takes every window of its
validation (or test) split that pretraining's N filter keeps, and scores on exactly those bases

* the model, as :mod:`hyenadna.inference.likelihood` defines it (base t given the bases before it in its window);
* order-k Markov chains (:mod:`hyenadna.analysis.markov`) fitted on the training split's bases, for each
  order and smoothing strength asked for.

The best chain is chosen on the held-out windows themselves, which flatters the chain: a model
that beats it beats every chain in the grid.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml

from hyenadna.analysis.lm_loss import model_bits_per_base
from hyenadna.analysis.markov import MAX_ORDER, MarkovChain, windows_bits_per_base
from hyenadna.data.corpus import Corpus, GenomeSource, Split
from hyenadna.data.tokenizer import CharacterTokenizer
from hyenadna.data.windows import StridedWindows
from hyenadna.errors import HyenaDNAError

DEFAULT_ORDERS = (2, 4, 6, 8, 9, 10, 11, 12)
DEFAULT_BETAS = (0.5, 2.0, 8.0, 32.0, 128.0, 512.0)


def pretraining_data(run_config: str | Path) -> dict:
    """The ``data`` section of a pretraining recipe, or of ``config.yaml`` in a run folder."""
    path = Path(run_config)
    if path.is_dir():
        path = path / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise HyenaDNAError(f"{path}: cannot read the pretraining config: {err}") from err
    data = (config or {}).get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not data.get("genomes"):
        raise HyenaDNAError(f"{path}: no data.genomes section (is it a pretraining config?)")
    return data


def heldout_windows(
    data: dict, split: Split = "val", max_windows: int | None = None
) -> tuple[Corpus, list[np.ndarray]]:
    """The corpus of a pretraining ``data`` section and the token ids of its held-out windows."""
    corpus = Corpus([GenomeSource(**g) for g in data["genomes"]])
    windows = StridedWindows(
        corpus,
        length=int(data.get("length", 1024)),
        split=split,
        stride=data.get("val_stride"),
        max_n_fraction=float(data.get("max_n_fraction", 0.1)),
        max_windows=max_windows,
    )
    # a window is length + 1 bases: the length targets pretraining's validation scores, each with context
    items = (windows[i] for i in range(len(windows)))
    return corpus, [np.concatenate([x["input_ids"].numpy(), x["labels"][-1:].numpy()]) for x in items]


def fit_markov(corpus: Corpus, order: int) -> MarkovChain:
    """An order-``order`` chain fitted on every training interval of ``corpus``."""
    tokenizer = CharacterTokenizer()
    chain = MarkovChain(order)
    for iv in corpus.intervals("train"):
        seq = corpus.fetch(iv, iv.start, iv.end)
        chain.fit([tokenizer.encode_bases(seq, name=f"{iv.contig}:{iv.start}-{iv.end}")])
    return chain


def run_heldout(
    run_config: str,
    model: str | None = None,
    split: Split = "val",
    orders: list[int] = list(DEFAULT_ORDERS),  # noqa: B006 (never mutated)
    betas: list[float] = list(DEFAULT_BETAS),  # noqa: B006
    max_windows: int | None = None,
    batch_size: int = 16,
) -> dict:
    """Bits per base of a model and of order-k Markov chains on a pretraining run's held-out windows.

    Args:
        run_config: a pretraining recipe (YAML) or a run folder (its config.yaml): the genomes,
            splits, window length and N filter to use.
        model: a model folder or bundled name to score beside the chains (none: chains only).
        split: the held-out split, ``val`` or ``test``; or ``train``, the chains' own windows (and
            the model's, if it pretrained on this recipe): its gap to ``val`` shows memorisation.
        orders: Markov orders to fit (at most 12) on the training split.
        betas: smoothing strengths to try for each order.
        max_windows: score an evenly spaced subset of this many windows (default: all).
        batch_size: windows per forward pass of the model.
    """
    if not orders or max(orders) > MAX_ORDER or min(orders) < 0:
        raise HyenaDNAError(f"orders must lie in [0, {MAX_ORDER}], got {orders}")
    data = pretraining_data(run_config)
    corpus, windows = heldout_windows(data, split, max_windows)
    result: dict = {"run_config": str(run_config), "split": split, "windows": len(windows),
                    "window_bases": int(windows[0].size), "corpus": corpus.summary()}  # fmt: skip
    start = time.perf_counter()
    chain = fit_markov(corpus, max(orders))
    result["markov_fit_seconds"] = time.perf_counter() - start
    result["markov"] = markov_grid(chain, orders, betas, windows)
    result["best_markov"] = min(result["markov"], key=lambda r: r["bits_per_base"])
    if model is not None:
        result["model"] = _score_model(model, windows, batch_size)
        result["model_minus_best_markov"] = result["model"]["bits_per_base"] - result["best_markov"]["bits_per_base"]
    return result


def markov_grid(chain: MarkovChain, orders: list[int], betas: list[float], windows: list[np.ndarray]) -> list[dict]:
    """Bits per base on ``windows`` of ``chain`` cut to each order, with each smoothing strength."""
    rows = []
    for order in sorted(set(orders)):
        for beta in betas:
            bits, scored = windows_bits_per_base(chain.truncated(order, beta), windows)
            rows.append({"order": order, "beta": beta, "bits_per_base": bits, "scored": scored})
    return rows


def _score_model(model: str, windows: list[np.ndarray], batch_size: int) -> dict:
    """The model's row: its bits per base on ``windows``, the bases scored, its size and the time taken."""
    from hyenadna.model import load

    net = load(model).eval()
    start = time.perf_counter()
    bits, scored = model_bits_per_base(net, windows, batch_size)
    return {"name": model, "parameters": net.num_parameters(), "bits_per_base": bits, "scored": scored,
            "seconds": time.perf_counter() - start}  # fmt: skip


def heldout_table(result: dict) -> str:
    """The result of :func:`run_heldout` as the plain-text table the command prints."""
    lines = [
        f"{result['windows']:,} {result['split']} windows of {result['window_bases']:,} bases ({result['corpus']})",
        f"{'scorer':<34} {'bits/base':>10} {'scored':>12}",
    ]
    if "model" in result:
        m = result["model"]
        lines.append(f"{m['name'][:34]:<34} {m['bits_per_base']:>10.4f} {m['scored']:>12,}")
    best = result["best_markov"]
    for r in result["markov"]:
        mark = "  <- best" if r is best else ""
        label = f"Markov order {r['order']}, beta {r['beta']:g}"
        lines.append(f"{label:<34} {r['bits_per_base']:>10.4f} {r['scored']:>12,}{mark}")
    if "model" in result:
        lines.append(f"model minus best Markov chain: {result['model_minus_best_markov']:+.4f} bits/base")
    return "\n".join(lines)
