"""HyenaDNA: token embedding, a stack of Hyena blocks, final LayerNorm, tied LM head.

Read top to bottom: ``__init__`` builds the layers, ``all_hidden_states`` runs them, and the
public methods pick what to return. The model never touches files or tokenizers; loading and
saving live in :mod:`hyenadna.io.checkpoint`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import hyenadna.io.checkpoint as checkpoint
from hyenadna.checks.devices import check_device, check_dtype
from hyenadna.config import HyenaConfig
from hyenadna.data.tokenizer import A_ID, T_ID
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.embedding import embed_sequences
from hyenadna.inference.generation import generate
from hyenadna.inference.masking import restore_positions, to_right_padding
from hyenadna.inference.scoring import score_sequences
from hyenadna.inference.tiling import Tiling
from hyenadna.modules.block import Block, add_norm
from hyenadna.modules.operator import OperatorCache
from hyenadna.ops.dispatch import choose_path
from hyenadna.ops.rows import spans


class HyenaDNA(nn.Module):
    """A causal DNA language model over single-nucleotide tokens.

    ``model(input_ids)`` gives logits (B, L, V) with V the padded vocabulary (16 for the
    released models); ``model.hidden_states(input_ids)`` gives the final normalised hidden
    states (B, L, d_model).
    """

    def __init__(self, config: HyenaConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.padded_vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.final_dropout = nn.Dropout(config.resid_dropout)
        self.final_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style initialisation, as in HyenaDNA.

        Every linear layer (the filter MLPs included) and the embedding draw from
        N(0, initializer_range) with zero biases; the projections that write into the residual
        stream (mixer ``out_proj``, MLP ``fc2``) are scaled down by sqrt(2 * n_layer).
        """
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for linear in (block.mixer.out_proj, block.mlp.fc2):
                nn.init.normal_(linear.weight, std=std / math.sqrt(2 * self.config.n_layer))

    # ---- forward passes ----

    def check_input(self, input_ids: torch.Tensor) -> None:
        """Refuse token ids the model cannot run: not (batch, length) integers, longer than
        ``l_max``, or outside the vocabulary (on CUDA checked on the device, asynchronously)."""
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.int64, torch.int32):
            raise HyenaDNAError(
                f"input_ids must be a (batch, length) integer tensor, got {tuple(input_ids.shape)} {input_ids.dtype}"
            )
        length = input_ids.shape[1]
        if length > self.config.l_max:
            raise HyenaDNAError(f"sequence of length {length} is longer than the model's l_max {self.config.l_max}")
        vocab = self.config.padded_vocab_size
        if not input_ids.numel():
            return
        if input_ids.is_cuda:  # checked on the device, without stopping the host for the answer
            torch._assert_async(((input_ids >= 0) & (input_ids < vocab)).all(), f"token ids must lie in [0, {vocab})")
            return
        lo, hi = (int(v) for v in torch.aminmax(input_ids))
        if lo < 0 or hi >= vocab:
            raise HyenaDNAError(f"token ids must lie in [0, {vocab}), got {lo}..{hi}")

    def all_hidden_states(self, input_ids: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Hidden states after each layer, as in Hugging Face's ``output_hidden_states``.

        Index 0 is the embedding output, index i (1 <= i < n_layer) the residual stream after
        block i, and index n_layer the final normalised output. ``upto`` stops after that
        index, skipping the blocks that follow.
        """
        self.check_input(input_ids)
        n = self.config.n_layer
        upto = n if upto is None else upto
        hidden = self.token_embedding(input_ids)
        states = [hidden]
        residual = None
        for i, block in enumerate(self.blocks[:upto], start=1):
            hidden, residual = block(hidden, residual)
            if i < n:
                states.append(hidden + residual)
        if upto == n:
            states.append(self._final_states(hidden, residual))
        return states

    def _final_states(self, hidden: torch.Tensor | None, residual: torch.Tensor | None) -> torch.Tensor:
        """The final norm of the stream plus the last block's output ``hidden`` (None: the stream
        holds it, the chunked path): the one place it is applied."""
        return add_norm(hidden, residual, self.final_dropout, self.final_norm)[0]

    def hidden_states(
        self, input_ids: torch.Tensor, layer: int = -1, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden states (B, L, d_model) of one layer; -1 (default) is the final normalised one.

        ``attention_mask`` (B, L), True on real tokens, makes padded rows exact: each row gives
        the states of its unpadded sequence, whichever side the padding is on, and zeros at
        padding (see :mod:`hyenadna.inference.masking`). Without it, padding is read as tokens.
        """
        n = self.config.n_layer
        index = layer + n + 1 if layer < 0 else layer
        if not 0 <= index <= n:
            raise HyenaDNAError(f"layer {layer} out of range for a model with {n} layers (use -{n + 1}..{n})")
        if attention_mask is not None:
            aligned, shift = to_right_padding(input_ids, attention_mask)
            return restore_positions(self.hidden_states(aligned, layer), shift, attention_mask)
        if self._chunked(input_ids):
            self.check_input(input_ids)
            return self._chunked_hidden_states(input_ids, index)
        return self.all_hidden_states(input_ids, upto=index)[index]

    def _chunked(self, input_ids: torch.Tensor) -> bool:
        """Whether :meth:`hidden_states` runs the blocks chunk by chunk
        (:meth:`Block.forward_chunked_`), as :func:`hyenadna.ops.dispatch.choose_path` decides
        for the first block's input."""
        if input_ids.dim() != 2:
            return False
        probe = self.token_embedding.weight[:1].expand(*input_ids.shape, -1)  # the input's shape, dtype and device
        config = self.config
        return choose_path(probe, self.token_embedding.weight, config.fftconv_impl, config.inference_chunk,
                           self.training, config.cuda_inference_chunk).chunked  # fmt: skip

    @torch.no_grad()
    def _chunked_hidden_states(self, input_ids: torch.Tensor, index: int) -> torch.Tensor:
        """Hidden states of layer ``index`` (0 .. n_layer, as in :meth:`all_hidden_states`), the
        blocks run in place on one residual stream, ``config.chunk_for(device)`` positions at a
        time (``inference_chunk`` on the CPU, ``cuda_inference_chunk`` on CUDA)."""
        hidden = self.token_embedding(input_ids)
        if index == 0:
            return hidden
        chunks = spans(input_ids.shape[1], self.config.chunk_for(input_ids.device))
        residual = hidden  # the embedding's own buffer becomes the stream
        if self.config.residual_in_fp32:  # float64 activations keep a float64 stream
            residual = hidden.to(torch.promote_types(hidden.dtype, torch.float32))
        buffers: dict = {}
        for block in self.blocks[:index]:
            block.forward_chunked_(residual, chunks, buffers)
        buffers.clear()
        if index < self.config.n_layer:
            return residual
        out = None
        for cols in chunks:  # the stream after the last block, normalised
            state = self._final_states(None, residual[:, cols])
            if out is None:
                same = state.dtype == residual.dtype
                out = residual if same else residual.new_empty(residual.shape, dtype=state.dtype)
            out[:, cols] = state
        return out

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (B, L, padded vocabulary); the head is tied to the embedding.
        ``attention_mask``: as in :meth:`hidden_states` (zeros at padding)."""
        return F.linear(self.hidden_states(input_ids, attention_mask=attention_mask), self.token_embedding.weight)

    # ---- decoding (hyenadna.inference.generation; the state lives in the operators) ----

    def allocate_inference_cache(
        self, batch: int, max_length: int, dtype: torch.dtype | None = None
    ) -> list[OperatorCache]:
        """An empty decoding state for ``batch`` rows of up to ``max_length`` positions, one
        cache per block (:meth:`HyenaOperator.allocate_inference_cache`), in ``dtype`` (default:
        the model's)."""
        dtype = self.dtype if dtype is None else dtype
        return [block.allocate_inference_cache(batch, max_length, dtype) for block in self.blocks]

    def step(self, input_ids: torch.Tensor, cache: list[OperatorCache]) -> torch.Tensor:
        """Next-token logits (B, padded vocabulary) after ``input_ids`` (B, n) continue the
        positions ``cache`` holds: a whole prompt into an empty cache, then one token per row
        (n = 1). They equal the full forward's at the same positions, to float rounding. The ids
        are not checked here, so that a step never waits for the device: check the prompt
        (:meth:`check_input`)."""
        hidden, residual = self.token_embedding(input_ids), None
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            hidden, residual = block(hidden, residual, layer_cache)
        return F.linear(self._final_states(hidden, residual)[:, -1], self.token_embedding.weight)

    @contextlib.contextmanager
    def bases_from_onehot(self, onehot: torch.Tensor, input_ids: torch.Tensor):
        """Within the block, the embedding of each A/C/G/T token of ``input_ids`` (B, L) is
        ``onehot`` (B, L, 4) times those four embedding rows: a differentiable function of the
        bases, equal to the lookup for a true one-hot, and defined between bases (the paths of
        integrated gradients). Other tokens (N, specials, padding) keep their lookup."""
        embedding = self.token_embedding
        is_base = ((input_ids >= A_ID) & (input_ids <= T_ID)).unsqueeze(-1)

        def from_onehot(module, args, tokens):
            if tokens.shape[:2] != input_ids.shape:
                raise HyenaDNAError(f"bases_from_onehot: the model ran on {tuple(tokens.shape[:2])}, not the "
                                    f"ids given, {tuple(input_ids.shape)}")  # fmt: skip
            return torch.where(is_base, onehot.to(tokens.dtype) @ embedding.weight[A_ID : T_ID + 1], tokens)

        handle = embedding.register_forward_hook(from_onehot)
        try:
            yield
        finally:
            handle.remove()

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self.token_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype."""
        return self.token_embedding.weight.dtype

    def embed(
        self,
        seqs: Sequence[str] | str,
        pooling: str = "mean",
        layer: int = -1,
        batch_size: int = 8,
        rc_average: bool = False,
        tiling: Tiling | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """Embeddings of DNA strings as a float32 numpy array (N, d_model), in input order.

        ``pooling`` is ``mean``, ``last``, ``first``, ``max`` or ``center`` over each sequence's own bases,
        or ``none`` for a list of per-base arrays (L_i, d_model). ``layer`` picks the hidden
        state (-1: the final normalised one; 0: the embedding). ``rc_average`` averages in the
        reverse complement. Results do not depend on ``batch_size`` (see hyenadna.inference.embedding).
        ``tiling`` (``hyenadna.Tiling(window, stride)``) embeds sequences longer than ``l_max``
        window by window (see hyenadna.inference.tiling); without it they are refused.
        """
        return embed_sequences(self, seqs, pooling, layer, batch_size, rc_average, tiling=tiling)

    def score(
        self,
        seqs: Sequence[str] | str,
        reduce: str = "mean",
        rc_average: bool = False,
        batch_size: int = 8,
        return_entropy: bool = False,
        tiling: Tiling | None = None,
    ):
        """Log-likelihood (nats) of each sequence under the model: ``mean`` or ``sum`` over its
        scored bases as a float64 array (N,), or per-base arrays (L_i,) with ``none``.

        Base i is scored as log p(x_i | x_<i) over A/C/G/T; the first base and non-ACGT bases
        are NaN and left out of sums and means. ``rc_average`` averages in the reverse strand;
        ``return_entropy`` also returns per-position entropies in bits (see hyenadna.inference.scoring).
        ``tiling`` scores sequences longer than ``l_max`` window by window (hyenadna.inference.tiling).
        """
        return score_sequences(self, seqs, reduce, rc_average, batch_size, return_entropy, tiling)

    def generate(
        self,
        prompt: Sequence[str] | str,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
        batch_size: int = 8,
    ) -> list[str] | str:
        """New bases sampled after each prompt (the continuation alone; a string for a string).

        Each base is drawn from the model's next-base distribution over A/C/G/T, after
        ``temperature`` (0: argmax), ``top_k`` (0: no cut) and ``top_p`` (nucleus) filtering;
        ``seed`` makes the draws repeatable. Decoding is exact and incremental: each new base
        costs one position of every layer, not a forward pass over the sequence (see
        hyenadna.inference.generation).
        """
        return generate(self, prompt, max_new_tokens, temperature, top_k, top_p, seed, batch_size)

    # ---- persistence (implemented in hyenadna.io.checkpoint) ----

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        map_location: str | torch.device = "cpu",
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        **overrides,
    ) -> HyenaDNA:
        """Load our format (``model.safetensors`` + ``config.json``) or a released HyenaDNA
        checkpoint directory (``weights.ckpt`` + ``config.json``), in eval mode (as Hugging
        Face's ``from_pretrained``; training code sets train mode itself). ``device`` / ``dtype``
        move it; ``overrides`` replace config fields (``modulation_shift=0.05`` reproduces the
        hub's standalone port)."""
        device, dtype = check_device(device), check_dtype(dtype)
        model = checkpoint.load_pretrained(cls, path, map_location=device or map_location, **overrides)
        return model.to(device=device, dtype=dtype).eval()

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into the folder ``path``."""
        checkpoint.save_pretrained(self, path)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
