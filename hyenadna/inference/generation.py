"""Sampling new DNA from a causal HyenaDNA model: ``model.generate`` and ``hyenadna generate``.

Exact incremental decoding: :class:`IncrementalDecoder` runs the prompt once and then each new
base through the model's own decoding methods (``allocate_inference_cache`` and ``step``, whose
state lives in the operators: :mod:`hyenadna.modules.operator`). A new base costs one position
of every position-wise layer plus, per layer and recurrence step, one dot product of the filter
with the kept inputs, ``O(t d)``: linear in the current length t, the operator's own receptive
field, and no FFT over the whole sequence per base (recomputing the forward would cost
``O(t log t d)`` per base and more for the position-wise layers, ``O(t d^2)``).

The next base is drawn from the model's distribution renormalised over A, C, G and T (the
likelihood convention of :mod:`hyenadna.inference.likelihood`), after temperature, top-k and top-p
(nucleus) filtering; temperature 0 is argmax decoding. Draws come from one seeded
``torch.Generator``, so a seed gives the same bases on every run of the same model and device.

Every setting is checked before any work (:func:`check_sampling`): a temperature is 0 or at
least :data:`MIN_TEMPERATURE` (logits are shifted by their maximum before they are divided, so
no temperature in range overflows; below it float32 would turn the division into NaN), top_k
lies in 0..4, top_p in (0, 1], a seed in 0..2**63-1 and a batch size is at least 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

import hyenadna.checks.values as validate
from hyenadna.data.tokenizer import A_ID, CharacterTokenizer
from hyenadna.errors import HyenaDNAError
from hyenadna.inference.likelihood import BASE_IDS
from hyenadna.modules.modes import eval_mode

if TYPE_CHECKING:
    from hyenadna.model.hyena_dna import HyenaDNA

BASE_LETTERS = "ACGT"
MIN_TEMPERATURE = 1e-4
"""The smallest temperature above 0: logit gaps divided by less reach float32's limits (0/1e-46 is
NaN); at 1e-4 sampling is already argmax decoding for any gap over 0.01 nats."""
MAX_SEED = 2**63 - 1


class IncrementalDecoder:
    """Exact step-by-step evaluation of a HyenaDNA model (module docstring).

    ``prefill(ids)`` runs a batch of prompts of one length (B, L) and returns the next-token
    logits at their last position (B, V); ``step(ids)`` appends one token per row (B,) and
    returns the logits after it. The logits equal those of ``model(whole sequence)`` at the same
    positions, to float rounding. ``total`` bounds prompt plus new tokens (at most ``l_max``).
    """

    def __init__(self, model: HyenaDNA, batch: int, total: int) -> None:
        if not 1 <= total <= model.config.l_max:
            raise HyenaDNAError(f"prompt plus new bases is {total:,}; the model takes at most {model.config.l_max:,}")
        if model.training:
            raise HyenaDNAError("incremental decoding runs in eval mode (call model.eval())")
        self.model = model
        self.total = total
        self.position = 0
        self.cache = model.allocate_inference_cache(batch, total)

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        if self.position:
            raise HyenaDNAError("prefill starts a decoder; make a new one for new prompts")
        if ids.dim() != 2 or not 1 <= ids.shape[1] <= self.total:
            raise HyenaDNAError(f"prompts must be (batch, 1..{self.total}) token ids, got {tuple(ids.shape)}")
        self.model.check_input(ids)
        logits = self.model.step(ids, self.cache)
        self.position = ids.shape[1]
        return logits

    @torch.inference_mode()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        t = self.position
        if t >= self.total:
            raise HyenaDNAError(f"the decoder was made for {self.total:,} positions and has used them")
        logits = self.model.step(ids.view(-1, 1), self.cache)
        self.position = t + 1
        return logits


def next_base_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                    top_p: float = 1.0) -> torch.Tensor:  # fmt: skip
    """The distribution (B, 4) over A/C/G/T that sampling draws from: the model's next-token
    logits renormalised over the four bases, divided by ``temperature``, then cut to the
    ``top_k`` most probable bases (0: all) and to the smallest set whose probability reaches
    ``top_p``, renormalised. Temperature 0 puts all mass on the most probable base."""
    base_logits = logits[..., BASE_IDS].float()
    if temperature == 0:
        return F.one_hot(base_logits.argmax(-1), 4).to(base_logits.dtype)
    # shifted so the largest is 0: a small temperature sends the others to -inf, never to NaN
    shifted = base_logits - base_logits.amax(-1, keepdim=True)
    probs = torch.softmax(shifted / temperature, dim=-1)
    if top_k or top_p < 1:
        ordered, order = probs.sort(dim=-1, descending=True)
        keep = torch.ones_like(ordered, dtype=torch.bool)
        if top_k:
            keep[..., top_k:] = False
        if top_p < 1:  # a base stays while the mass before it is below top_p (the first always does)
            keep &= (ordered.cumsum(-1) - ordered) < top_p
        probs = torch.zeros_like(probs).scatter(-1, order, ordered * keep)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def check_sampling(
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    seed: int | None = None,
    batch_size: int = 1,
    flag: str = "",
    min_new_tokens: int = 0,
) -> None:
    """Refuse a sampling setting out of range, naming it (``flag``: ``"--"`` on the command
    line); module docstring for the rules. ``min_new_tokens``: 1 where an empty result would be
    an empty record."""
    validate.integer(f"{flag}max_new_tokens", max_new_tokens, low=min_new_tokens)
    temperature = validate.number(f"{flag}temperature", temperature, low=0)
    if 0 < temperature < MIN_TEMPERATURE:
        raise HyenaDNAError(
            f"{flag}temperature must be 0 (argmax decoding) or at least {MIN_TEMPERATURE:g}, got {temperature:g}"
        )
    validate.integer(f"{flag}top_k", top_k, 0, 4)
    validate.number(f"{flag}top_p", top_p, 0, 1, open_low=True)
    if seed is not None:
        validate.integer(f"{flag}seed", seed, 0, MAX_SEED)
    validate.positive(f"{flag}batch_size", batch_size)


@torch.inference_mode()
def generate(
    model: HyenaDNA,
    prompts: Sequence[str] | str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    batch_size: int = 8,
) -> list[str] | str:
    """New bases after each prompt (the continuation only), sampled as the module docstring says.

    Prompts of the same length decode together, ``batch_size`` at a time, in input order; a
    string prompt gives a string. Each prompt needs at least one base, and prompt plus
    ``max_new_tokens`` must fit the model's ``l_max``. Settings out of range are refused
    (:func:`check_sampling`).
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p, seed, batch_size)
    if max_new_tokens >= model.config.l_max:  # no prompt length would fit: say so, not "prompts of 1 to -3,974"
        raise HyenaDNAError(
            f"max_new_tokens {max_new_tokens:,} leaves no room for a prompt: prompt plus new bases must fit the "
            f"model's l_max {model.config.l_max:,} (at most {model.config.l_max - 1:,} new bases after a 1-base prompt)"
        )
    single = isinstance(prompts, str)
    prompts = [prompts] if single else list(prompts)
    tokenizer = CharacterTokenizer()
    rows = []
    for i, prompt in enumerate(prompts):
        ids = tokenizer.encode_bases(prompt, name=f"prompt {i}")
        if not 1 <= len(ids) <= model.config.l_max - max_new_tokens:
            raise HyenaDNAError(
                f"prompt {i} has {len(ids):,} bases; with {max_new_tokens:,} new bases the model "
                f"(l_max {model.config.l_max:,}) takes prompts of 1 to {model.config.l_max - max_new_tokens:,}"
            )
        rows.append(ids)
    generator = torch.Generator(device=model.device)
    generator.manual_seed(torch.seed() if seed is None else seed)
    out: list[str] = [""] * len(prompts)
    with eval_mode(model):
        by_length: dict[int, list[int]] = {}
        for i, ids in enumerate(rows):
            by_length.setdefault(len(ids), []).append(i)
        groups = [g[k : k + batch_size] for g in by_length.values() for k in range(0, len(g), batch_size)]
        for group in sorted(groups):
            batch = torch.as_tensor(np.stack([rows[i] for i in group]), device=model.device)
            bases = _sample(model, batch, max_new_tokens, temperature, top_k, top_p, generator)
            for i, row in zip(group, bases):
                out[i] = row
    return out[0] if single else out


def _sample(model, batch, max_new_tokens, temperature, top_k, top_p, generator) -> list[str]:
    if max_new_tokens == 0:
        return [""] * batch.shape[0]
    decoder = IncrementalDecoder(model, batch.shape[0], batch.shape[1] + max_new_tokens)
    logits = decoder.prefill(batch)
    drawn = []
    broken = torch.zeros(batch.shape[0], dtype=torch.bool, device=batch.device)
    for n in range(max_new_tokens):
        # NaN or infinite logits are noted on the device (no sync per step) and refused after
        # the loop; meanwhile their rows sample from zeros, so multinomial never sees a NaN
        finite = torch.isfinite(logits[..., BASE_IDS]).all(-1)
        broken |= ~finite
        probs = next_base_probs(torch.where(finite[..., None], logits, 0.0), temperature, top_k, top_p)
        base = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        drawn.append(base)
        if n + 1 < max_new_tokens:
            logits = decoder.step(base + A_ID)
    if bool(broken.any()):
        raise HyenaDNAError("the model gave NaN or infinite next-base logits; its weights or dtype cannot sample")
    letters = np.frombuffer(BASE_LETTERS.encode(), dtype=np.uint8)
    codes = torch.stack(drawn, dim=1).cpu().numpy()
    return [letters[row].tobytes().decode() for row in codes]
