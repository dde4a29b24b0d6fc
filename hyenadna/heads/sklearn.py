"""A scikit-learn transformer that embeds DNA strings, so HyenaDNA features drop into a Pipeline.

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from hyenadna.heads.sklearn import HyenaDNAEmbedder

    clf = make_pipeline(HyenaDNAEmbedder("runs/pretrain/model"), LogisticRegression(max_iter=1000))
    clf.fit(train_sequences, train_labels)

``fit`` only loads the model (the backbone stays frozen); ``transform`` returns (N, d_model).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class HyenaDNAEmbedder(TransformerMixin, BaseEstimator):
    """Embed sequences with a HyenaDNA model.

    Args:
        model: a preset (random weights, seeded by ``seed``) or a model folder.
        pooling: ``mean``, ``last``, ``first``, ``max`` or ``center``.
        layer: hidden state to pool (-1: the final one).
        rc_average: average in the reverse complement.
        batch_size: sequences per forward pass.
        device: ``cpu`` or ``cuda``.
        seed: seed for a preset's random initialisation.
    """

    def __init__(
        self,
        model: str = "tiny-1k",
        pooling: str = "mean",
        layer: int = -1,
        rc_average: bool = False,
        batch_size: int = 16,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.layer = layer
        self.rc_average = rc_average
        self.batch_size = batch_size
        self.device = device
        self.seed = seed

    def fit(self, X: Iterable[str], y=None) -> HyenaDNAEmbedder:
        import torch

        from hyenadna.model import load

        torch.manual_seed(self.seed)
        self.model_ = load(self.model).to(self.device).eval()
        self.n_features_out_ = self.model_.config.d_model
        return self

    def transform(self, X: Iterable[str]) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        seqs = [str(x) for x in X]
        return self.model_.embed(seqs, self.pooling, self.layer, self.batch_size, self.rc_average)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray([f"hyenadna_{i}" for i in range(self.n_features_out_)], dtype=object)
