"""The class-likelihood head: a generative classifier on a causal language model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyenadna.data.tokenizer import A_ID, T_ID
from hyenadna.errors import HyenaDNAError
from hyenadna.heads.base import Head

if TYPE_CHECKING:
    from hyenadna.heads.config import HeadConfig
    from hyenadna.model.hyena_dna import HyenaDNA


class ClassLikelihoodHead(Head):
    """Class ``c`` has its own next-base output layer, and its logit is the log-likelihood of the
    sequence's bases under it, ``sum_t log p_c(x_{t+1} | x_{<=t})``, plus the class's log prior;
    softmax over classes is then Bayes' rule.

    Why: where a label shows in the statistics of every base (which genome a read comes from,
    its composition and codon usage), summing each base's evidence uses all of it, as a
    Markov-chain classifier does, where pooling hidden states into one vector has to learn the
    counting. The layers start from the backbone's tied LM head (``shared``) and differ by a
    per-class ``delta`` that starts at zero, so weight decay pulls the classes towards each
    other. Trained by each sequence's per-base negative log-likelihood under its own class
    (:meth:`loss`), the backbone shared by all classes; the log priors come from the training
    labels (:meth:`start_from_targets`).
    """

    kind = "likelihood"

    @classmethod
    def check(cls, config: HeadConfig) -> None:
        if config.task != "multiclass":
            raise HyenaDNAError(f"the likelihood head classifies (multiclass); task {config.task!r} needs kind linear")
        if config.bidirectional:  # the reverse strand's state at a base has read the bases after it
            raise HyenaDNAError(
                "the likelihood head reads causal states; bidirectional needs kind linear, positional or conv"
            )
        if config.hidden:
            raise HyenaDNAError("the likelihood head has no hidden layer; hidden needs kind linear, positional or conv")

    def __init__(self, backbone: HyenaDNA, config: HeadConfig) -> None:
        super().__init__(backbone, config)
        lm_weight = lm_base_weight(backbone)
        bases, width = lm_weight.shape
        classes = config.num_outputs
        self.shared = nn.Parameter(torch.empty(bases, width, dtype=lm_weight.dtype))
        self.delta = nn.Parameter(torch.empty(classes, bases, width, dtype=lm_weight.dtype))
        self.bias = nn.Parameter(torch.empty(classes, bases, dtype=lm_weight.dtype))
        self.register_buffer("log_prior", torch.empty(classes, dtype=torch.float32))
        self.start_from(lm_weight)

    @torch.no_grad()
    def start_from(self, lm_weight: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        """Every class's layer set to the LM head's A/C/G/T rows ``lm_weight`` (4, D); log priors
        from training label counts (a class never seen gets half a count), uniform without."""
        self.shared.copy_(lm_weight)
        self.delta.zero_()
        self.bias.zero_()
        self.set_priors(counts)

    @torch.no_grad()
    def set_priors(self, counts: torch.Tensor | None = None) -> None:
        """Log priors from label counts (a class never seen gets half a count); uniform without."""
        counts = torch.ones(len(self.log_prior)) if counts is None else torch.as_tensor(counts)
        counts = counts.to(torch.float64).clamp_min(0.5)
        self.log_prior.copy_((counts / counts.sum()).log().to(self.log_prior))

    def start_from_targets(self, targets: np.ndarray) -> None:
        self.set_priors(torch.from_numpy(np.bincount(targets, minlength=len(self.log_prior))))

    def forward(
        self, hidden: Tensor, attention_mask: Tensor, input_ids: Tensor, onehot: Tensor | None = None
    ) -> Tensor:
        """The scored bases come from ``onehot`` when given (differentiable in them), else from the ids."""
        if onehot is None:
            next_bases = next_base_onehot(input_ids, attention_mask)
        else:
            real = attention_mask.bool()
            next_bases = (onehot * real.unsqueeze(-1))[:, 1:] * real[:, :-1, None]
        return self.class_log_likelihoods(self.dropout(hidden), next_bases)

    def class_log_likelihoods(self, hidden: torch.Tensor, next_bases: torch.Tensor) -> torch.Tensor:
        """(B, C) logits from hidden states (B, L, D) and the base that follows each position,
        one-hot (B, L - 1, 4) over A/C/G/T (zero rows: not scored; soft rows: expected scores)."""
        dtype = torch.promote_types(hidden.dtype, torch.float32)  # float32, or float64 for a float64 model
        weight = (self.shared + self.delta).to(dtype)
        scores = torch.einsum("bld,cvd->blcv", hidden[:, :-1].to(dtype), weight) + self.bias.to(dtype)
        log_probs = torch.log_softmax(scores, dim=-1)
        return torch.einsum("blcv,blv->bc", log_probs, next_bases.to(dtype)) + self.log_prior.to(dtype)

    def loss(self, logits: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Generative: the mean over sequences of the negative log-likelihood under the sequence's
        own class (both strands' mean when conjoined) per position (its length less one), which
        fits each class's model to its own sequences."""
        scored = (attention_mask.sum(dim=1) - 1).clamp_min(1).to(logits.dtype)
        own = (logits - self.log_prior).gather(1, target.long().unsqueeze(1)).squeeze(1)
        return -(own / scored).mean()


def lm_base_weight(backbone: HyenaDNA) -> torch.Tensor:
    """The rows of the backbone's tied LM head that score A, C, G and T: (4, D)."""
    return backbone.token_embedding.weight[A_ID : T_ID + 1]


def next_base_onehot(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L - 1, 4): position t holds base t + 1 one-hot where both t and t + 1 are real tokens
    and t + 1 is A/C/G/T; zeros elsewhere (N, special tokens, padding)."""
    is_base = (input_ids >= A_ID) & (input_ids <= T_ID) & attention_mask.bool()
    onehot = F.one_hot(torch.where(is_base, input_ids - A_ID, 0), 4) * is_base.unsqueeze(-1)
    return onehot[:, 1:] * attention_mask.bool()[:, :-1, None]
