"""Model configuration: one dataclass per model, the published presets, and a JSON round trip.

The field names say what they hold; the released HyenaDNA configs (a nested ``layer`` dict in
the training code's vocabulary) are translated to these fields by :mod:`hyenadna.io.checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyenadna.errors import HyenaDNAError

if TYPE_CHECKING:
    import torch

IMPLEMENTATIONS = ("auto", "torch", "ref", "triton")  # values of HyenaConfig.fftconv_impl


@dataclass
class HyenaConfig:
    """Everything needed to build a :class:`hyenadna.HyenaDNA` model.

    Defaults are those of the released HyenaDNA checkpoints; the presets differ only in width,
    depth and maximum length.
    """

    d_model: int = 128
    n_layer: int = 2
    l_max: int = 1026
    d_inner: int | None = None
    """Width of the MLP hidden layer; ``None`` means 4 * d_model."""
    vocab_size: int = 12
    pad_vocab_size_multiple: int = 8
    """The embedding table is padded to a multiple of this (12 -> 16), as released."""

    # Hyena operator
    order: int = 2
    """Depth of the Hyena recurrence: order-1 long convolutions, order gates."""
    short_filter_order: int = 3
    filter_order: int = 64
    """Width of the implicit filter's MLP."""
    emb_dim: int = 5
    """Positional-embedding features fed to the filter MLP: time plus (emb_dim-1)/2 bands."""
    num_inner_mlps: int = 2
    sin_freq: float = 10.0
    """Initial frequency of the filter MLP's Sin activation (``w`` in the released configs)."""
    modulate: bool = True
    modulation_shift: float = 0.0
    """Added to the exponential decay window: 0.0 in the training code that produced the
    released weights, 0.05 in the hub's standalone port."""
    fast_decay_pct: float = 0.3
    slow_decay_pct: float = 1.5
    decay_target: float = 1e-2
    filter_bias: bool = True
    """Use the D skip term (``bias`` of the released filter) in the long convolution."""
    learn_pos_emb: bool = False
    """Train the filter's positional embedding (a parameter, as with lr_pos_emb > 0)."""
    store_pos_emb: bool = False
    """Keep the positional embedding with the weights instead of recomputing it from l_max.
    Set on import when a checkpoint's stored values differ in any bit from this machine's
    recomputation: the filter MLP amplifies such rounding differences, and an imported model
    must give the reference's numbers."""

    # residual blocks
    layer_norm_epsilon: float = 1e-5
    residual_in_fp32: bool = True
    embed_dropout: float = 0.1
    resid_dropout: float = 0.0
    initializer_range: float = 0.02

    # execution (no effect on the numbers)
    checkpoint_mixer: bool = False
    checkpoint_mlp: bool = False
    fftconv_impl: str = "auto"
    """Long-convolution kernel: ``auto`` (fused Triton kernels on CUDA when triton is installed
    and the input fits them, else torch.fft), ``torch``, ``triton`` or ``ref`` (the plain
    reference, hyenadna.ops.reference); hyenadna.ops.dispatch tells which path each takes."""
    inference_chunk: int = 2048
    """Grad-free eval-mode passes over inputs longer than this run their position-wise layers
    in chunks of this many positions and the long convolution a channel group at a time
    (hyenadna.modules.block.Block.forward_chunked_): bounded memory, the same numbers. 0 turns
    chunking off. On the CPU only: see ``cuda_inference_chunk``."""
    cuda_inference_chunk: int = 0
    """The same threshold on CUDA, where it is off by default (0): the chunked path is built for
    a CPU's caches and runs 2.5-7x slower than the whole-length kernels on a GPU, so set it only
    as a memory budget, to fit inputs whose whole-length activations do not fit the card."""
    filter_cache_mb: int = 1024
    """Memory for the long filters' spectra kept between grad-free calls (MiB, the whole model;
    each layer gets an equal share, most recently used lengths first). With frozen weights the
    filter MLP and its FFT give the same spectrum on every call of one length, so embedding many
    inputs of one length computes it once: about 12% of a 32k-base pass of ``large-1m``, whose
    spectra take 64 MiB per layer at that length (512 MiB in all). Lengths whose spectra exceed
    a layer's share are recomputed on each call. 0 keeps nothing."""

    def __post_init__(self) -> None:
        if self.d_inner is None:
            self.d_inner = 4 * self.d_model
        self.validate()

    def validate(self) -> None:
        """Raise :class:`HyenaDNAError` naming the first field whose value cannot work."""
        positive = ("d_model", "n_layer", "l_max", "vocab_size", "filter_order", "d_inner")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise HyenaDNAError(f"HyenaConfig.{name} must be a positive integer, got {value!r}")
        if self.l_max > MAX_L_MAX:
            raise HyenaDNAError(f"HyenaConfig.l_max must be at most {MAX_L_MAX:,}, got {self.l_max:,}")
        if self.d_model > 65536 or self.n_layer > 4096 or self.d_inner > 1 << 20:
            raise HyenaDNAError(
                f"HyenaConfig: d_model {self.d_model:,}, n_layer {self.n_layer:,}, d_inner {self.d_inner:,} "
                "are beyond any model this package can build"
            )
        if self.order < 2:
            raise HyenaDNAError(f"HyenaConfig.order must be at least 2, got {self.order!r}")
        if self.emb_dim < 3 or self.emb_dim % 2 == 0:
            raise HyenaDNAError(
                f"HyenaConfig.emb_dim must be odd and at least 3 (time, cos, sin), got {self.emb_dim!r}"
            )
        if self.short_filter_order < 1:
            raise HyenaDNAError(f"HyenaConfig.short_filter_order must be at least 1, got {self.short_filter_order!r}")
        for name in ("inference_chunk", "cuda_inference_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise HyenaDNAError(f"HyenaConfig.{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.filter_cache_mb, int) or self.filter_cache_mb < 0:
            raise HyenaDNAError(f"HyenaConfig.filter_cache_mb must be an integer >= 0, got {self.filter_cache_mb!r}")
        if self.fftconv_impl not in IMPLEMENTATIONS:
            raise HyenaDNAError(f"HyenaConfig.fftconv_impl must be one of {IMPLEMENTATIONS}, got {self.fftconv_impl!r}")

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the embedding table and columns of the logits."""
        m = self.pad_vocab_size_multiple
        return -(-self.vocab_size // m) * m

    @property
    def filter_channels(self) -> int:
        """Channels of the implicit filter: one long filter per channel and recurrence step."""
        return self.d_model * (self.order - 1)

    # ---- presets and serialisation ----

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> HyenaConfig:
        """The published HyenaDNA shape called ``name`` (see :data:`PRESETS`), with overrides."""
        if name not in PRESETS:
            known = ", ".join(sorted(PRESETS))
            raise HyenaDNAError(f"unknown model preset {name!r}; known presets: {known}")
        return cls.from_dict({**PRESETS[name], **overrides}, source=f"overrides of {name}")

    def chunk_for(self, device: torch.device) -> int:
        """The chunking threshold that applies on ``device``: ``cuda_inference_chunk`` on CUDA,
        else ``inference_chunk``."""
        return self.cuda_inference_chunk if device.type == "cuda" else self.inference_chunk

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> HyenaConfig:
        """Build from a dict, refusing unknown fields by name (a typo must not pass silently)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise HyenaDNAError(f"{source}: unknown HyenaConfig field(s) {unknown}")
        return cls(**values)

    def save_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> HyenaConfig:
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HyenaDNAError(f"cannot read model config {path}: {exc}") from exc
        if not isinstance(values, dict):
            raise HyenaDNAError(f"{path}: a model config must be a JSON object")
        config = cls.from_dict(values, source=str(path))
        missing = [name for name in REQUIRED_FIELDS if name not in values]
        if missing:  # a default would give other weights shapes or other numbers, silently
            raise HyenaDNAError(f"{path}: the model config lacks {missing}, which the weights depend on")
        return config


REQUIRED_FIELDS = ("d_model", "n_layer", "l_max", "d_inner", "vocab_size", "order", "filter_order", "emb_dim")
"""Fields a saved config.json must state: the weights' shapes and the filters' numbers depend on them."""
MAX_L_MAX = 1 << 25
"""Longest l_max accepted (33,554,432; 32 times the largest published model): the positional
embedding alone is l_max x emb_dim floats, allocated when the model is built."""

PRESETS: dict[str, dict[str, Any]] = {
    "tiny-1k": {"d_model": 128, "n_layer": 2, "l_max": 1026},
    "tiny-1k-d256": {"d_model": 256, "n_layer": 2, "l_max": 1026},
    "tiny-16k": {"d_model": 128, "n_layer": 2, "l_max": 16386},
    "small-32k": {"d_model": 256, "n_layer": 4, "l_max": 32770},
    "medium-160k": {"d_model": 256, "n_layer": 8, "l_max": 160002},
    "medium-450k": {"d_model": 256, "n_layer": 8, "l_max": 450002},
    "large-1m": {"d_model": 256, "n_layer": 8, "l_max": 1000002},
}
"""Published HyenaDNA shapes; every other field keeps the released default."""
