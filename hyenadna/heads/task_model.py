"""Task heads on a HyenaDNA backbone: pooling and a linear head, a class-conditional likelihood
head (a generative classifier) or a linear layer on every position's state; reverse-complement
conjoining.

A fine-tuned model is saved self-contained in one folder:

* ``config.json`` + ``model.safetensors``: the (fine-tuned) backbone in our usual format, so
  ``hyenadna.load(folder)`` still gives a plain ``HyenaDNA`` for embedding;
* ``head.safetensors``: the head's weights;
* ``task.json``: pooling, layer, RC conjoining and the label vocabulary (task and names).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hyenadna.checks import values as validate
from hyenadna.data.tokenizer import A_ID, T_ID
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.masking import to_right_padding
from hyenadna.io.atomic import atomic_write, atomic_write_text
from hyenadna.io.checkpoint import check_finite
from hyenadna.model.hyena_dna import HyenaDNA
from hyenadna.modules.pooling import (
    POOLINGS,
    pool,
    real_token_bounds,
    reverse_complement_batch,
    reverse_complement_onehot,
)

TASK_FILE, HEAD_FILE = "task.json", "head.safetensors"
TASKS = ("multiclass", "multilabel", "regression")
HEAD_KINDS = ("linear", "likelihood", "positional")


@dataclass
class HeadConfig:
    """How a head reads the backbone, and what it predicts.

    Attributes:
        task: ``multiclass`` (softmax over ``labels``), ``multilabel`` (a sigmoid per label) or
            ``regression`` (one value per name in ``labels``).
        labels: class names, or regression target names, in output order.
        kind: ``linear`` (a linear layer on the pooled hidden states), ``likelihood`` (for
            ``multiclass`` on a causal backbone: one next-base output layer per class, the
            logits being each class's log-likelihood of the sequence; see
            :class:`ClassLikelihoodHead`) or ``positional`` (a linear layer on every position's
            state, for inputs of at most ``train_length`` bases aligned at their first base:
            where the label sits at a fixed place, a splice site at the window's centre, as
            the CNN's flatten-and-dense head reads it). ``pooling`` applies to ``linear`` only.
        pooling: ``mean`` over real tokens, ``last`` / ``first`` real token, or ``max``.
        layer: which hidden state to pool (-1: the final normalised one).
        rc_conjoin: average the logits of each sequence and of its reverse complement.
        dropout: dropout on the pooled vector (the hidden states, for the likelihood head) in training.
        train_length: the longest training sequence in bases (None: not recorded); the window
            that scoring variants through the head uses by default.
    """

    task: str
    labels: list[str]
    pooling: str = "mean"
    layer: int = -1
    rc_conjoin: bool = False
    dropout: float = 0.1
    train_length: int | None = None
    kind: str = "linear"

    def __post_init__(self) -> None:
        """Every field checked, naming it: a hand-edited task.json (``train_length: -3``) is
        refused at load, not used."""
        if self.task not in TASKS:
            raise HyenaDNAError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.kind not in HEAD_KINDS:
            raise HyenaDNAError(f"head kind must be one of {HEAD_KINDS}, got {self.kind!r}")
        if self.kind == "likelihood" and self.task != "multiclass":
            raise HyenaDNAError(f"the likelihood head classifies (multiclass); task {self.task!r} needs kind linear")
        if self.pooling not in POOLINGS:
            raise HyenaDNAError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if isinstance(self.labels, tuple):
            self.labels = list(self.labels)
        if not isinstance(self.labels, list) or not all(isinstance(x, str) for x in self.labels):
            raise HyenaDNAError(f"labels must be a list of names, got {self.labels!r}")
        if not self.labels:
            raise HyenaDNAError("a head needs at least one label or target name")
        repeated = sorted({x for x in self.labels if self.labels.count(x) > 1})
        if repeated:
            raise HyenaDNAError(f"labels must be distinct; {repeated} appear more than once")
        validate.integer("layer", self.layer)
        if not isinstance(self.rc_conjoin, bool):
            raise HyenaDNAError(f"rc_conjoin must be true or false, got {self.rc_conjoin!r}")
        self.dropout = validate.number("dropout", self.dropout, 0, 1)
        if self.dropout >= 1:
            raise HyenaDNAError(f"dropout must be below 1 (1 drops everything), got {self.dropout:g}")
        if self.train_length is not None:
            validate.integer("train_length", self.train_length, low=1)

    @property
    def num_outputs(self) -> int:
        return len(self.labels)


class TaskModel(nn.Module):
    """What every fine-tunable model shares: ``forward(input_ids, attention_mask)`` gives logits
    (averaged with the reverse complement's when the head conjoins), ``predict_outputs`` turns
    them into probabilities or values. Subclasses define ``_one_strand`` and ``head_config``."""

    head_config: HeadConfig

    @property
    def max_length(self) -> int:
        """The longest input in tokens."""
        raise NotImplementedError

    def _one_strand(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        logits = self._one_strand(input_ids, attention_mask)
        if self.head_config.rc_conjoin:
            rc = reverse_complement_batch(input_ids, attention_mask)
            logits = (logits + self._one_strand(rc, attention_mask)) / 2
        return logits

    def predict_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return task_outputs(self.head_config.task, logits)

    def training_loss(self, logits: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The loss fine-tuning minimises: cross-entropy, binary cross-entropy or MSE by task."""
        return task_loss(self.head_config.task, logits, target)

    def _one_strand_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def forward_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits as :meth:`forward` gives them, as a differentiable function of the bases one-hot
        (B, L, 4), A/C/G/T, which may be soft (interpolated): the gradients of attribution.
        Positions that hold no base in ``input_ids`` (N, padding) keep their token's input."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        logits = self._one_strand_onehot(onehot, input_ids, attention_mask)
        if self.head_config.rc_conjoin:
            rc_ids = reverse_complement_batch(input_ids, attention_mask)
            rc_onehot = reverse_complement_onehot(onehot, attention_mask)
            logits = (logits + self._one_strand_onehot(rc_onehot, rc_ids, attention_mask)) / 2
        return logits


class ClassLikelihoodHead(nn.Module):
    """A generative classifier on a causal language model: class ``c`` has its own next-base
    output layer, and its logit is the log-likelihood of the sequence's bases under it,
    ``sum_t log p_c(x_{t+1} | x_{<=t})``, plus the class's log prior; softmax over classes is then
    Bayes' rule.

    Why: where a label shows in the statistics of every base (which genome a read comes from,
    its composition and codon usage), summing each base's evidence uses all of it, as a
    Markov-chain classifier does, where pooling hidden states into one vector has to learn the
    counting. The layers start from the backbone's tied LM head (``shared``) and differ by a
    per-class ``delta`` that starts at zero, so weight decay pulls the classes towards each
    other. Trained by each sequence's per-base negative log-likelihood under its own class
    (:meth:`SequenceModel.training_loss`), the backbone shared by all classes.
    """

    def __init__(self, lm_weight: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        bases, width = lm_weight.shape
        self.shared = nn.Parameter(torch.empty(bases, width, dtype=lm_weight.dtype))
        self.delta = nn.Parameter(torch.empty(num_classes, bases, width, dtype=lm_weight.dtype))
        self.bias = nn.Parameter(torch.empty(num_classes, bases, dtype=lm_weight.dtype))
        self.register_buffer("log_prior", torch.empty(num_classes, dtype=torch.float32))
        self.start_from(lm_weight)

    @torch.no_grad()
    def start_from(self, lm_weight: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        """Every class's layer set to the LM head's A/C/G/T rows ``lm_weight`` (4, D); log priors
        from training label counts (a class never seen gets half a count), uniform without."""
        self.shared.copy_(lm_weight)
        self.delta.zero_()
        self.bias.zero_()
        counts = torch.ones(len(self.log_prior)) if counts is None else torch.as_tensor(counts)
        counts = counts.to(torch.float64).clamp_min(0.5)
        self.log_prior.copy_((counts / counts.sum()).log().to(self.log_prior))

    def forward(self, hidden: torch.Tensor, next_bases: torch.Tensor) -> torch.Tensor:
        """(B, C) logits from hidden states (B, L, D) and the base that follows each position,
        one-hot (B, L - 1, 4) over A/C/G/T (zero rows: not scored; soft rows: expected scores)."""
        dtype = torch.promote_types(hidden.dtype, torch.float32)  # float32, or float64 for a float64 model
        weight = (self.shared + self.delta).to(dtype)
        scores = torch.einsum("bld,cvd->blcv", hidden[:, :-1].to(dtype), weight) + self.bias.to(dtype)
        log_probs = torch.log_softmax(scores, dim=-1)
        return torch.einsum("blcv,blv->bc", log_probs, next_bases.to(dtype)) + self.log_prior.to(dtype)


def lm_base_weight(backbone: HyenaDNA) -> torch.Tensor:
    """The rows of the backbone's tied LM head that score A, C, G and T: (4, D)."""
    return backbone.token_embedding.weight[A_ID : T_ID + 1]


def next_base_onehot(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L - 1, 4): position t holds base t + 1 one-hot where both t and t + 1 are real tokens
    and t + 1 is A/C/G/T; zeros elsewhere (N, special tokens, padding)."""
    is_base = (input_ids >= A_ID) & (input_ids <= T_ID) & attention_mask.bool()
    onehot = F.one_hot(torch.where(is_base, input_ids - A_ID, 0), 4) * is_base.unsqueeze(-1)
    return onehot[:, 1:] * attention_mask.bool()[:, :-1, None]


def positional_states(hidden: torch.Tensor, attention_mask: torch.Tensor, length: int) -> torch.Tensor:
    """(B, length * D): each row's real states from its first base on (either padding side),
    zeros after its last, flattened in position order. Rows longer than ``length`` are refused."""
    first, last = real_token_bounds(attention_mask)
    longest = int((last - first + 1).max())
    if longest > length:
        raise HyenaDNAError(f"a sequence of {longest} tokens is longer than the positional head's {length}")
    positions = torch.arange(length, device=hidden.device)
    index = (first[:, None] + positions).clamp_max(hidden.shape[1] - 1)
    states = hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    real = (first[:, None] + positions) <= last[:, None]
    return (states * real.unsqueeze(-1).to(states.dtype)).flatten(1)


class SequenceModel(TaskModel):
    """Backbone + head (pooling and a linear layer, :class:`ClassLikelihoodHead`, or a linear
    layer on every position's state):
    ``model(input_ids, attention_mask)`` gives (B, outputs) logits."""

    def __init__(self, backbone: HyenaDNA, head: HeadConfig) -> None:
        super().__init__()
        n = backbone.config.n_layer
        if not -n - 1 <= head.layer <= n:
            raise HyenaDNAError(f"layer {head.layer} out of range for a backbone with {n} layers")
        self.backbone = backbone
        self.head_config = head
        self.dropout = nn.Dropout(head.dropout)
        if head.kind == "likelihood":
            self.head = ClassLikelihoodHead(lm_base_weight(backbone), head.num_outputs)
        elif head.kind == "positional":
            if not head.train_length or head.train_length > backbone.config.l_max:
                raise HyenaDNAError(
                    f"the positional head needs train_length in [1, l_max={backbone.config.l_max}], "
                    f"got {head.train_length}"
                )
            self.head = nn.Linear(head.train_length * backbone.config.d_model, head.num_outputs)
            nn.init.normal_(self.head.weight, std=backbone.config.initializer_range / head.train_length**0.5)
            nn.init.zeros_(self.head.bias)
        else:
            self.head = nn.Linear(backbone.config.d_model, head.num_outputs)
            nn.init.normal_(self.head.weight, std=backbone.config.initializer_range)
            nn.init.zeros_(self.head.bias)

    def _one_strand(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, next_bases: torch.Tensor | None = None
    ) -> torch.Tensor:
        # the mask makes padded rows exact (either padding side): a row's logits do not depend on its batch
        hidden = self.backbone.hidden_states(input_ids, layer=self.head_config.layer, attention_mask=attention_mask)
        if self.head_config.kind == "likelihood":
            if next_bases is None:
                next_bases = next_base_onehot(input_ids, attention_mask)
            return self.head(self.dropout(hidden), next_bases)
        if self.head_config.kind == "positional":
            return self.head(self.dropout(positional_states(hidden, attention_mask, self.max_length)))
        pooled = pool(hidden, attention_mask, self.head_config.pooling)
        return self.head(self.dropout(pooled.to(self.head.weight.dtype)))

    def training_loss(self, logits: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The likelihood head's loss is generative: the mean over sequences of the negative
        log-likelihood under the sequence's own class (both strands' mean when conjoined) per
        position (its length less one), which fits each class's model to its own sequences."""
        if self.head_config.kind != "likelihood":
            return super().training_loss(logits, target, attention_mask)
        scored = (attention_mask.sum(dim=1) - 1).clamp_min(1).to(logits.dtype)
        own = (logits - self.head.log_prior).gather(1, target.long().unsqueeze(1)).squeeze(1)
        return -(own / scored).mean()

    def _one_strand_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        aligned, shift = to_right_padding(input_ids, attention_mask)
        if shift is not None:  # the hook below sees the right-aligned rows the backbone runs
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            index = (positions + shift[:, None]) % input_ids.shape[1]
            onehot = onehot.gather(1, index.unsqueeze(-1).expand_as(onehot))
            input_ids, attention_mask = aligned, attention_mask.gather(1, index)
        next_bases = None
        if self.head_config.kind == "likelihood":  # the scored bases are inputs too: differentiable in them
            real = attention_mask.bool()
            next_bases = (onehot * real.unsqueeze(-1))[:, 1:] * real[:, :-1, None]
        with self.backbone.bases_from_onehot(onehot, input_ids):
            return self._one_strand(input_ids, attention_mask, next_bases)

    @property
    def max_length(self) -> int:
        if self.head_config.kind == "positional":
            return int(self.head_config.train_length)
        return self.backbone.config.l_max

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the backbone (our format), the head weights and ``task.json`` into ``path``."""
        from safetensors.torch import save_file

        folder = Path(path)
        self.backbone.save_pretrained(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        atomic_write(folder / HEAD_FILE, lambda tmp: save_file(state, str(tmp)))
        atomic_write_text(folder / TASK_FILE, json.dumps(asdict(self.head_config), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> SequenceModel:
        """Load a folder written by :meth:`save_pretrained`."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(path)
        head = read_head_config(folder)
        head_file = folder / HEAD_FILE
        if not head_file.is_file():  # before the backbone: the folder is incomplete either way
            raise HyenaDNAError(
                f"{folder}: no {HEAD_FILE}; this fine-tuned model folder is incomplete (copy it whole, "
                "or fine-tune again)"
            )
        model = cls(HyenaDNA.from_pretrained(folder, map_location=map_location), head)
        try:
            state = load_file(str(head_file), device=str(map_location))
        except (SafetensorError, OSError) as exc:
            raise HyenaDNAError(f"{head_file}: cannot read head weights: {exc}") from None
        check_finite(state, head_file)
        try:
            model.head.load_state_dict(state)
        except RuntimeError as exc:
            raise HyenaDNAError(f"{head_file}: head weights do not match task.json ({exc})") from None
        return model


def task_outputs(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities (softmax or sigmoid) for classification, values for regression; in float32
    or wider (float64 logits stay float64)."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if task == "multiclass":
        return logits.softmax(-1)
    if task == "multilabel":
        return logits.sigmoid()
    return logits


def task_loss(task: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (multiclass), binary cross-entropy (multilabel) or MSE (regression), in float32."""
    logits = logits.float()
    if task == "multiclass":
        return F.cross_entropy(logits, target)
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, target.float())
    return F.mse_loss(logits, target.float())


def read_head_config(folder: Path) -> HeadConfig:
    """The ``task.json`` of a fine-tuned model folder, every field checked (errors name the file)."""
    task_file = Path(folder) / TASK_FILE
    if not task_file.is_file():
        raise HyenaDNAError(f"{folder}: no {TASK_FILE}; this is not a fine-tuned model folder")
    try:
        values = json.loads(task_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HyenaDNAError(f"{task_file}: not a valid task file ({exc})") from None
    if not isinstance(values, dict):
        raise HyenaDNAError(f"{task_file}: not a valid task file (a JSON object of head settings is needed)")
    try:
        return HeadConfig(**values)
    except TypeError as exc:
        raise HyenaDNAError(f"{task_file}: not a valid task file ({exc})") from None
    except HyenaDNAError as exc:
        raise HyenaDNAError(f"{task_file}: {exc}") from None
