"""Which bases drive a prediction: in-silico mutagenesis, gradient x input, integrated gradients.

Every method gives, per sequence, an array (L, 4, C): position x base (A, C, G, T) x output.
The outputs are those of a fine-tuned model (its classes' logits, or probabilities, or its
regression values) or, for a language model, one output: the sequence's mean log-likelihood
(nats per scored base, :mod:`hyenadna.inference.likelihood`), so that ISM of a language model is the
zero-shot effect of every substitution, the ``llr`` that ``hyenadna score`` gives a SNV.

* **ISM**: ``ism[i, b, c]`` = output c with base b at position i, minus output c of the sequence
  itself (0 at the sequence's own base). Exact: every mutant is run through the model (batched;
  a right-padded row's outputs do not depend on its batch).
* **Gradients** are taken with respect to the bases one-hot: a Hyena model embeds a base as a
  row of its embedding table, that is one-hot x (the four base rows), so the model is a
  differentiable function of a (soft) one-hot (:meth:`HyenaDNA.bases_from_onehot`); the CNN reads
  the one-hot directly. Gradient x input is that gradient at the sequence's own bases (zero at the
  others). Integrated gradients (Sundararajan et al., 2017) integrate the gradient along the
  straight path from a baseline (uniform 0.25 per base by default, or zeros) to the one-hot,
  by the trapezoidal rule over ``steps`` intervals: the attributions of a sequence sum to its
  output minus the baseline's, up to the rule's error (tested).
  Written out here rather than through captum: forty lines against a dependency, and the
  reverse-complement conjoining below needs the model's own one-hot path anyway.
* A head that conjoins strands (``rc_conjoin``) averages its logits over both strands; its
  one-hot path does too (:meth:`TaskModel.forward_onehot`), so the gradients are those of the
  averaged output, each strand's part mapped back to the forward strand.

Positions that hold no base (N) get zero gradients, and ISM tries all four bases there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from hyenadna.data.tokenizer import A_ID, T_ID, pad_ids
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.task_model import TaskModel
from hyenadna.inference.batching import encode_sequences
from hyenadna.inference.likelihood import next_base_log_probs
from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.modules.modes import eval_mode

METHODS = ("ism", "grad_x_input", "integrated_gradients")
OUTPUTS = ("logit", "probability")
BASELINES = ("uniform", "zero")


class Explained:
    """A model seen as a function of its input bases, ``(B, L) ids -> (B, C) outputs``, with a
    differentiable twin on one-hot bases; ``names`` are the C outputs."""

    def __init__(self, model: TaskModel | HyenaDNA, output: str = "logit") -> None:
        if output not in OUTPUTS:
            raise HyenaDNAError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.model = model
        self.output = output
        if isinstance(model, HyenaDNA):
            self.names, self.max_length = ["log_likelihood"], model.config.l_max
        elif isinstance(model, TaskModel):
            config = model.head_config
            self.names, self.max_length = list(config.labels), model.max_length
            if output == "probability" and config.task == "regression":
                raise HyenaDNAError("a regression head has values, not probabilities: use output='logit'")
        else:
            raise HyenaDNAError(f"cannot explain a {type(model).__name__}: give a HyenaDNA or a fine-tuned model")
        self.device = next(model.parameters()).device

    def _finish(self, logits: torch.Tensor) -> torch.Tensor:
        wide = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return self.model.predict_outputs(wide) if self.output == "probability" else wide

    def values(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Outputs (B, C) of right-padded rows."""
        if isinstance(self.model, HyenaDNA):
            return _mean_log_likelihood(self.model(ids), ids, mask, None)
        return self._finish(self.model(ids, mask))

    def values_onehot(self, onehot: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Outputs (B, C) as a differentiable function of the bases one-hot (B, L, 4)."""
        if isinstance(self.model, HyenaDNA):
            with self.model.bases_from_onehot(onehot, ids):
                logits = self.model(ids)
            return _mean_log_likelihood(logits, ids, mask, onehot)
        return self._finish(self.model.forward_onehot(onehot, ids, mask))


def _mean_log_likelihood(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, onehot) -> torch.Tensor:
    """(B, 1) mean log-likelihood of each row's scored bases. With ``onehot``, a base's
    log-likelihood is ``sum_b onehot[b] log p(b)``: the same number for a true one-hot, and
    differentiable in the bases as targets too, not only as inputs."""
    targets = torch.where(mask, ids, 0)[:, 1:]
    logp, picked = next_base_log_probs(logits[:, :-1], targets)
    if onehot is not None:
        picked = torch.where(picked.isnan(), picked, (onehot[:, 1:].to(logp.dtype) * logp).sum(-1))
    scored = ~picked.isnan()
    total = torch.where(scored, picked, 0).sum(1)
    return (total / scored.sum(1).clamp_min(1)).unsqueeze(-1)


def _rows(explained: Explained, seqs: Sequence[str] | str, names: Sequence[str] | None = None) -> list[np.ndarray]:
    seqs = [seqs] if isinstance(seqs, str) else list(seqs)
    minimum = 2 if isinstance(explained.model, HyenaDNA) else 1
    return encode_sequences(seqs, explained.max_length, names=names, min_bases=minimum, purpose="attribution")


def check_sequences(model: TaskModel | HyenaDNA, seqs: Sequence[str], names: Sequence[str] | None = None) -> list[int]:
    """Refuse, naming the record, a sequence the methods cannot take (a character the tokenizer
    rejects, or a length outside what the model takes: attribution does not tile), before a
    command creates anything; returns the number of ISM mutants of each sequence. One sequence
    at a time: the ids of a whole input are not held at once."""
    explained = Explained(model)
    names = names if names is not None else [f"sequence {i}" for i in range(len(seqs))]
    return [mutant_count(_rows(explained, [seq], [name])[0]) for seq, name in zip(seqs, names)]


def mutant_count(row: np.ndarray) -> int:
    """How many mutants :func:`mutants` makes of ``row``: three per base, four per N position."""
    return 3 * len(row) + int(np.count_nonzero((row < A_ID) | (row > T_ID)))


@torch.no_grad()
def ism(
    model: TaskModel | HyenaDNA,
    seqs: Sequence[str] | str,
    output: str = "logit",
    batch_size: int = 64,
    progress: bool = False,
) -> list[np.ndarray]:
    """In-silico mutagenesis (module docstring): per sequence, (L, 4, C) float32 deltas."""
    explained = Explained(model, output)
    rows = _rows(explained, seqs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(3 * len(r) for r in rows), unit=" mutant", desc="ism", mininterval=1.0)
    results = []
    try:
        with eval_mode(model):
            for row in rows:
                results.append(_ism_one(explained, row, batch_size, bar))
    finally:
        if bar is not None:
            bar.close()
    return results


def mutants(row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every single-base substitution of ``row`` (ids): (M, L) mutant rows with the position
    and base index (0-3, A..T) of each. A base gets three mutants, an N position four."""
    length = len(row)
    positions = np.repeat(np.arange(length), 4)
    bases = np.tile(np.arange(4), length)
    keep = row[positions] != bases + A_ID
    positions, bases = positions[keep], bases[keep]
    out = np.repeat(row[None], len(positions), axis=0)
    out[np.arange(len(positions)), positions] = bases + A_ID
    return out, positions, bases


def _ism_one(explained: Explained, row: np.ndarray, batch_size: int, bar) -> np.ndarray:
    device = explained.device
    length = len(row)
    reference = explained.values(torch.as_tensor(row[None], device=device), torch.ones(1, length, dtype=torch.bool,
                                 device=device))[0]  # fmt: skip
    mutated, positions, bases = mutants(row)
    deltas = np.zeros((length, 4, len(explained.names)), dtype=np.float32)
    mask = torch.ones(min(batch_size, len(mutated)), length, dtype=torch.bool, device=device)
    for start in range(0, len(mutated), batch_size):
        chunk = torch.as_tensor(mutated[start : start + batch_size], device=device)
        values = explained.values(chunk, mask[: len(chunk)]) - reference
        index = slice(start, start + len(chunk))
        deltas[positions[index], bases[index]] = values.cpu().numpy()
        if bar is not None:
            bar.update(len(chunk))
    return deltas


def _onehot(ids: torch.Tensor, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    is_base = (ids >= A_ID) & (ids <= T_ID) & mask
    codes = (ids - A_ID).clamp(0, 3)
    return torch.nn.functional.one_hot(codes, 4).to(dtype) * is_base.unsqueeze(-1)


def _batched_gradients(explained: Explained, rows: list[np.ndarray], batch_size: int, fn: Callable) -> list[np.ndarray]:
    """``fn(onehot, ids, mask) -> (B, L, 4, C)`` over right-padded batches, per row in input order."""
    from hyenadna.inference.batching import run_batched

    device = explained.device
    dtype = next(explained.model.parameters()).dtype

    def batch_fn(batch: list[np.ndarray]) -> list[np.ndarray]:
        padded = pad_ids(batch, side="right")
        ids, mask = padded["input_ids"].to(device), padded["attention_mask"].to(device).bool()
        grads = fn(_onehot(ids, mask, dtype), ids, mask).float().cpu().numpy()
        return [grads[i, : len(row)] for i, row in enumerate(batch)]

    with eval_mode(explained.model):
        return run_batched(rows, batch_size, batch_fn)


def _jacobian(explained: Explained, onehot: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """d output_c / d onehot for every row and output: (B, L, 4, C). Rows are independent (eval
    mode, padding masked), so the gradient of a sum over rows is each row's gradient."""
    onehot = onehot.detach().requires_grad_(True)
    with torch.enable_grad():
        values = explained.values_onehot(onehot, ids, mask)
        grads = [
            torch.autograd.grad(values[:, c].sum(), onehot, retain_graph=c + 1 < values.shape[1])[0]
            for c in range(values.shape[1])
        ]
    return torch.stack(grads, dim=-1)


def input_gradients(
    model: TaskModel | HyenaDNA, seqs: Sequence[str] | str, output: str = "logit", batch_size: int = 16
) -> list[np.ndarray]:
    """The gradient of each output with respect to the bases one-hot: per sequence (L, 4, C)."""
    explained = Explained(model, output)
    return _batched_gradients(explained, _rows(explained, seqs), batch_size,
                              lambda onehot, ids, mask: _jacobian(explained, onehot, ids, mask))  # fmt: skip


def gradient_x_input(
    model: TaskModel | HyenaDNA, seqs: Sequence[str] | str, output: str = "logit", batch_size: int = 16
) -> list[np.ndarray]:
    """Gradient x input: the gradient at each sequence's own bases, zero elsewhere (L, 4, C)."""
    explained = Explained(model, output)

    def fn(onehot, ids, mask):
        return _jacobian(explained, onehot, ids, mask) * onehot.unsqueeze(-1)

    return _batched_gradients(explained, _rows(explained, seqs), batch_size, fn)


def _baseline(onehot: torch.Tensor, baseline: str) -> torch.Tensor:
    """The path's start: 0.25 per base (``uniform``) or zeros, at the positions that hold a base."""
    fill = 0.25 if baseline == "uniform" else 0.0
    return (fill * onehot.sum(-1, keepdim=True)).expand_as(onehot)


def integrated_gradients(
    model: TaskModel | HyenaDNA,
    seqs: Sequence[str] | str,
    output: str = "logit",
    steps: int = 32,
    baseline: str = "uniform",
    batch_size: int = 16,
) -> list[np.ndarray]:
    """Integrated gradients from ``baseline`` (``uniform``: 0.25 per base; ``zero``), trapezoidal
    rule over ``steps`` intervals: per sequence (L, 4, C), non-zero at its own bases only
    against the zero baseline, at every base against the uniform one."""
    if steps < 1:
        raise HyenaDNAError(f"steps must be >= 1, got {steps}")
    if baseline not in BASELINES:
        raise HyenaDNAError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    explained = Explained(model, output)

    def fn(onehot, ids, mask):
        start = _baseline(onehot, baseline)
        total = torch.zeros(*onehot.shape, len(explained.names), dtype=onehot.dtype, device=onehot.device)
        for k in range(steps + 1):
            weight = 0.5 if k in (0, steps) else 1.0
            point = start + (onehot - start) * (k / steps)
            total += weight * _jacobian(explained, point, ids, mask)
        return total / steps * (onehot - start).unsqueeze(-1)

    return _batched_gradients(explained, _rows(explained, seqs), batch_size, fn)


def baseline_values(model: TaskModel | HyenaDNA, seqs: Sequence[str] | str, output: str = "logit",
                    baseline: str = "uniform") -> np.ndarray:  # fmt: skip
    """Outputs (N, C) at the integrated-gradients baseline of each sequence (one at a time)."""
    explained = Explained(model, output)
    rows = _rows(explained, seqs)
    out = []
    with eval_mode(model), torch.no_grad():
        for row in rows:
            ids = torch.as_tensor(row[None], device=explained.device)
            mask = torch.ones_like(ids, dtype=torch.bool)
            onehot = _onehot(ids, mask, next(model.parameters()).dtype)
            out.append(explained.values_onehot(_baseline(onehot, baseline), ids, mask)[0])
    return torch.stack(out).cpu().numpy()


def output_values(model: TaskModel | HyenaDNA, seqs: Sequence[str] | str, output: str = "logit") -> np.ndarray:
    """Outputs (N, C) of the sequences themselves, as the attributions see them."""
    explained = Explained(model, output)
    rows = _rows(explained, seqs)
    with eval_mode(model), torch.no_grad():
        out = [explained.values(torch.as_tensor(r[None], device=explained.device),
                                torch.ones(1, len(r), dtype=torch.bool, device=explained.device))[0]
               for r in rows]  # fmt: skip
    return torch.stack(out).cpu().numpy()


def ism_importance(deltas: np.ndarray, sequence: str) -> np.ndarray:
    """ISM as a logo (L, 4): at each position the sequence's own base, with the mean loss of
    output that replacing it causes (minus the mean delta over the three alternatives); zero
    elsewhere and at non-ACGT positions."""
    out = np.zeros_like(deltas)
    for pos, base in enumerate(sequence.upper()):
        if base in "ACGT":
            b = "ACGT".index(base)
            out[pos, b] = -deltas[pos].sum() / 3  # the own base's delta is 0
    return out


def target_index(outputs: list[str], target: str | None) -> int:
    """The index of output ``target`` (default: the last), refused when the model has no such output."""
    if target is None:
        return len(outputs) - 1
    if target not in outputs:
        raise HyenaDNAError(f"target {target!r} is not an output of the model ({', '.join(outputs)})")
    return outputs.index(target)


def contrast(arrays: list[np.ndarray], index: int) -> list[np.ndarray]:
    """Attributions toward output ``index`` against the mean of the others (L, 4): for a softmax
    classifier, what favours this class over the rest; the output itself when it is the only one.
    Every method here is linear in the output, so this is the attribution of that difference."""
    others = [j for j in range(arrays[0].shape[-1]) if j != index] if arrays else []
    if not others:
        return [a[..., index] for a in arrays]
    return [a[..., index] - a[..., others].mean(-1) for a in arrays]
