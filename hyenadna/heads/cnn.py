"""A small convolutional baseline for sequence tasks, trained by the same loop as the Hyena heads.

The Genomic Benchmarks paper measures its tasks against a plain CNN: a few convolution layers
with batch norm and max pooling over one-hot bases, then dense layers. A DNA language model
earns its cost only where it beats that, so ``hyenadna finetune --model.name_or_path cnn``
trains this network on the same splits, with the same optimiser, schedule, early stopping and
metrics as a Hyena model.

The dense layers read the flattened feature map, so the network knows *where* a motif sits (a
splice site at the window's centre); inputs are therefore padded (with zero vectors) to the
fixed ``length`` the network was built for, and longer ones are refused. At long windows that
map is huge (64 x 2,048 values at 16 kb, one dense weight each) and what matters may sit anywhere:
``readout: max`` takes each channel's maximum over the positions that hold a base instead, as
the long-window CNNs of Basenji and gReLU pool globally.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hyenadna.data.tokenizer import A_ID, T_ID
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.config import HeadConfig, HeadOptions, read_head_config
from hyenadna.heads.conv import conv_blocks
from hyenadna.heads.task_model import TaskModel
from hyenadna.io.atomic import atomic_write, atomic_write_text

CNN_FILE, WEIGHTS_FILE = "cnn.json", "cnn.safetensors"
READOUTS = ("flatten", "max")
HYENA_ONLY_HEAD = {"kind": "linear", "bidirectional": False, "hidden": 0}
"""Head options that only a Hyena backbone reads, at the values the CNN's own dense head stands for."""


def check_cnn_head(head: HeadOptions) -> None:
    """Refuse head options the CNN cannot serve, naming them (:data:`HYENA_ONLY_HEAD`)."""
    if head.kind != "linear":
        raise HyenaDNAError(f"head kind {head.kind!r} needs a Hyena backbone; the CNN has its own dense head")
    if head.bidirectional:
        raise HyenaDNAError("bidirectional joins a causal backbone's two strands; the CNN reads both sides already")
    if head.hidden:
        raise HyenaDNAError("the CNN's dense layer is sized by --model.overrides.hidden, not --head.hidden")


def cnn_head(head: HeadOptions) -> HeadOptions:
    """``head`` with its Hyena-only options reset: what a CNN trained beside a Hyena model takes."""
    return replace(head, **HYENA_ONLY_HEAD)


@dataclass
class ConvConfig:
    """Shape of the baseline CNN.

    Attributes:
        length: input length in bases (shorter inputs are zero-padded on the right).
        channels: output channels of each convolution layer (each followed by batch norm,
            ReLU and max pooling by ``pool``).
        kernel_size: width of every convolution.
        pool: max-pooling factor after each layer.
        hidden: width of the dense layer before the output.
        dropout: dropout before each dense layer.
        readout: ``flatten`` (the dense layer reads every position of the last feature map) or
            ``max`` (each channel's maximum over the positions of the last map that any base fed:
            a block of ``pool ** len(channels)`` bases of only N or padding is left out; a lone N
            inside a block is a zero vector the convolutions read, as with ``flatten``).
    """

    length: int
    channels: list[int] = field(default_factory=lambda: [64, 64, 64])
    kernel_size: int = 9
    pool: int = 2
    hidden: int = 64
    dropout: float = 0.2
    readout: str = "flatten"

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            raise HyenaDNAError(f"CNN readout must be one of {READOUTS}, got {self.readout!r}")
        if self.length < 1 or not self.channels or self.kernel_size < 1 or self.pool < 1:
            raise HyenaDNAError(f"bad CNN shape: {self}")
        if self.flat_length < 1:
            raise HyenaDNAError(f"a length of {self.length} leaves nothing after {len(self.channels)} poolings")

    @property
    def flat_length(self) -> int:
        length = self.length
        for _ in self.channels:
            length //= self.pool
        return length


def one_hot(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L) token ids to (B, 4, L) one-hot A/C/G/T; N, specials and padding are zero vectors."""
    is_base = (input_ids >= A_ID) & (input_ids <= T_ID)
    if attention_mask is not None:
        is_base &= attention_mask.bool()
    codes = (input_ids - A_ID).clamp(0, 3)
    return F.one_hot(codes, 4).to(torch.float32).mul_(is_base.unsqueeze(-1)).transpose(1, 2)


class ConvClassifier(TaskModel):
    """One-hot bases -> conv blocks -> flatten -> dense -> outputs; the heads' interface
    (``forward(input_ids, attention_mask)``, ``predict_outputs``, ``save_pretrained``)."""

    def __init__(self, config: ConvConfig, head: HeadConfig) -> None:
        super().__init__()
        check_cnn_head(head)
        self.config = config
        self.head_config = head
        self.backbone = conv_blocks(4, config.channels, config.kernel_size, config.pool)
        channels_in = config.channels[-1]
        flat = config.readout == "flatten"
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(channels_in * (config.flat_length if flat else 1), config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, head.num_outputs),
        )

    def _one_strand(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._from_onehot(one_hot(input_ids, attention_mask))

    def _one_strand_onehot(
        self, onehot: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        is_base = (input_ids >= A_ID) & (input_ids <= T_ID) & attention_mask.bool()
        return self._from_onehot((onehot * is_base.unsqueeze(-1)).transpose(1, 2))

    def _from_onehot(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs from one-hot bases (B, 4, L), zero vectors where no base is."""
        x = x.to(self.backbone[0].weight.dtype)
        if x.shape[-1] > self.config.length:
            raise HyenaDNAError(f"a sequence of {x.shape[-1]} bases is longer than the CNN's {self.config.length}")
        x = F.pad(x, (0, self.config.length - x.shape[-1]))
        features = self.backbone(x)
        if self.config.readout == "flatten":
            return self.head(features)
        holds_base = x.abs().sum(1, keepdim=True)  # (B, 1, L): zero where N or padding
        for _ in self.config.channels:  # a pooled position holds a base if any of its inputs did
            holds_base = F.max_pool1d(holds_base, self.config.pool)
        features = features.masked_fill(holds_base[..., : features.shape[-1]] == 0, float("-inf")).amax(-1)
        return self.head(features.masked_fill(features.isinf(), 0.0))  # a window of no base at all: zeros

    @property
    def max_length(self) -> int:
        return self.config.length

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """``cnn.json`` (shape), ``cnn.safetensors``, ``task.json`` (labels) and any
        ``calibration.json`` into ``path``."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write(folder / WEIGHTS_FILE, lambda tmp: save_file(state, str(tmp)))
        atomic_write_text(folder / CNN_FILE, json.dumps(asdict(self.config), indent=2) + "\n")
        self.head_config.save(folder)
        self.save_calibration(folder)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, map_location: str | torch.device = "cpu", calibrated: bool = True
    ) -> ConvClassifier:
        from safetensors.torch import load_file

        folder = Path(path)
        try:
            config = ConvConfig(**json.loads((folder / CNN_FILE).read_text()))
        except (OSError, TypeError, json.JSONDecodeError) as exc:
            raise HyenaDNAError(f"{folder / CNN_FILE}: not a valid CNN config ({exc})") from None
        model = cls(config, read_head_config(folder))
        try:
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE), device=str(map_location)))
        except (OSError, RuntimeError) as exc:
            raise HyenaDNAError(f"{folder / WEIGHTS_FILE}: weights do not match {CNN_FILE} ({exc})") from None
        if calibrated:  # else the raw model, its calibration.json unread
            model.load_calibration(folder)
        return model
