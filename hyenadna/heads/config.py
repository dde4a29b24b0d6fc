"""A head's settings, declared once: :class:`HeadOptions` is what a user chooses (the fine-tune
command's ``--head.*`` options), :class:`HeadConfig` adds what the training data decides (task,
labels, training length) and is saved as ``task.json`` beside a fine-tuned model. ``HEADS`` is
the registry of head kinds, looked up by ``kind``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from hyenadna.checks import values as validate
from hyenadna.data.labels import TASKS
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.base import Head
from hyenadna.heads.conv import ConvHead
from hyenadna.heads.likelihood import ClassLikelihoodHead
from hyenadna.heads.linear import LinearHead
from hyenadna.heads.positional import PositionalHead
from hyenadna.io.atomic import atomic_write_text
from hyenadna.io.checkpoint import read_json_object
from hyenadna.modules.pooling import POOLINGS

TASK_FILE = "task.json"
HEADS: dict[str, type[Head]] = {head.kind: head for head in (LinearHead, ClassLikelihoodHead, PositionalHead, ConvHead)}


@dataclass(kw_only=True)
class HeadOptions:
    """The task head.

    Attributes:
        kind: ``linear`` (pooling, then a linear layer), ``likelihood`` (multi-class only: a
            next-base output layer per class, each class scoring the sequence by its
            log-likelihood, trained generatively; see hyenadna.heads.likelihood.ClassLikelihoodHead) or
            ``positional`` (a linear layer on every position's state, inputs up to the longest
            training sequence: for labels at a fixed place in the window) or ``conv`` (the
            positional head with convolution blocks before its output layer: a small CNN on the
            states, as the BEND benchmark reads embeddings; see hyenadna.heads.conv.ConvHead).
        pooling: ``mean`` (over real tokens), ``last``, ``first``, ``max`` or ``center`` (the
            middle real token's state; with ``bidirectional``, one that has read both sides)
            (``linear`` only).
        layer: hidden state to pool (-1: the final one).
        rc_conjoin: average the logits of each sequence and its reverse complement, in
            training and at test time.
        dropout: dropout on what the output layer reads: the pooled vector, the flattened states
            (positional) or feature map (conv); the hidden states, for the likelihood head.
        bidirectional: join each base's state with the reverse strand's state at the same base
            (the backbone run on the reverse complement, its states mirrored back), so that a
            causal backbone's states see the window on both sides of every base: what a label
            at a fixed place needs (a splice site's exon and intron). Twice the cost; not for
            the likelihood head, whose states must not see the bases they predict.
        hidden: units of a hidden layer (GELU, dropout after it) between what the head reads
            and its output layer; 0: none, a linear read-out (``linear``, ``positional``, ``conv``).
        conv_channels: output channels of each convolution block of the ``conv`` head (each
            block pools by 2).
        conv_kernel: width of the ``conv`` head's convolutions (odd: centred on each base).
    """

    kind: str = "linear"
    pooling: str = "mean"
    layer: int = -1
    rc_conjoin: bool = False
    dropout: float = 0.1
    bidirectional: bool = False
    hidden: int = 0
    conv_channels: list[int] = field(default_factory=lambda: [64, 64, 64])
    conv_kernel: int = 9

    where: ClassVar[str] = "--head."  # how refusals name a field: the command's option

    def __post_init__(self) -> None:
        """Every field checked, naming it: a typo on the command line or a hand-edited task.json
        (``dropout: 1.5``) is refused before anything is built."""
        if self.kind not in HEADS:
            raise HyenaDNAError(f"head kind must be one of {tuple(HEADS)}, got {self.kind!r}")
        if self.pooling not in POOLINGS:
            raise HyenaDNAError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        validate.integer(f"{self.where}layer", self.layer)
        for flag in ("rc_conjoin", "bidirectional"):
            if not isinstance(getattr(self, flag), bool):
                raise HyenaDNAError(f"{self.where}{flag} must be true or false, got {getattr(self, flag)!r}")
        validate.integer(f"{self.where}hidden", self.hidden, low=0)
        if isinstance(self.conv_channels, tuple):
            self.conv_channels = list(self.conv_channels)
        if not isinstance(self.conv_channels, list) or not self.conv_channels:
            raise HyenaDNAError(
                f"{self.where}conv_channels must be a non-empty list of widths, got {self.conv_channels!r}"
            )
        for width in self.conv_channels:
            validate.integer(f"{self.where}conv_channels", width, low=1)
        validate.integer(f"{self.where}conv_kernel", self.conv_kernel, low=1)
        if self.conv_kernel % 2 == 0:
            raise HyenaDNAError(
                f"{self.where}conv_kernel must be odd (each convolution centred on its base), got {self.conv_kernel}"
            )
        self.dropout = validate.number(f"{self.where}dropout", self.dropout, 0, 1)
        if self.dropout >= 1:
            raise HyenaDNAError(f"{self.where}dropout must be below 1 (1 drops everything), got {self.dropout:g}")


@dataclass
class HeadConfig(HeadOptions):
    """How a head reads the backbone (the fields of :class:`HeadOptions`) and what it predicts.

    Attributes:
        task: ``multiclass`` (softmax over ``labels``), ``multilabel`` (a sigmoid per label) or
            ``regression`` (one value per name in ``labels``).
        labels: class names, or regression target names, in output order.
        train_length: the longest training sequence in bases (None: not recorded); the
            positional and conv heads' input length, and the window that scoring variants through the
            head uses by default.
    """

    task: str
    labels: list[str]
    train_length: int | None = None

    where: ClassVar[str] = ""  # task.json's keys

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise HyenaDNAError(f"task must be one of {TASKS}, got {self.task!r}")
        super().__post_init__()
        if isinstance(self.labels, tuple):
            self.labels = list(self.labels)
        if not isinstance(self.labels, list) or not all(isinstance(x, str) for x in self.labels):
            raise HyenaDNAError(f"labels must be a list of names, got {self.labels!r}")
        if not self.labels:
            raise HyenaDNAError("a head needs at least one label or target name")
        repeated = sorted({x for x in self.labels if self.labels.count(x) > 1})
        if repeated:
            raise HyenaDNAError(f"labels must be distinct; {repeated} appear more than once")
        if self.train_length is not None:
            validate.integer("train_length", self.train_length, low=1)
        HEADS[self.kind].check(self)

    @property
    def num_outputs(self) -> int:
        return len(self.labels)

    def save(self, folder: Path) -> None:
        """Write ``folder/task.json``."""
        atomic_write_text(Path(folder) / TASK_FILE, json.dumps(asdict(self), indent=2) + "\n")


def read_head_config(folder: Path) -> HeadConfig:
    """The ``task.json`` of a fine-tuned model folder, every field checked (errors name the file)."""
    task_file = Path(folder) / TASK_FILE
    if not task_file.is_file():
        raise HyenaDNAError(f"{folder}: no {TASK_FILE}; this is not a fine-tuned model folder")
    values = read_json_object(task_file, "task file")
    try:
        return HeadConfig(**values)
    except TypeError as exc:
        raise HyenaDNAError(f"{task_file}: not a valid task file ({exc})") from None
    except HyenaDNAError as exc:
        raise HyenaDNAError(f"{task_file}: {exc}") from None
