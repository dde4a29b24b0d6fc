"""The fused MLP (:func:`hyenadna.ops.mlp.gelu_mlp`, a hand-written backward pass) against plain
autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hyenadna.ops.mlp import gelu_mlp


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@pytest.mark.parametrize("recompute", [False, True])
def test_gelu_mlp_matches_autograd(recompute):
    torch.manual_seed(11)
    x = torch.randn(2, 33, 8, dtype=torch.float64, requires_grad=True)

    def param(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    fc1, fc2 = (param(32, 8), param(32)), (param(8, 32), param(8))
    inputs = [x, *fc1, *fc2]
    fused = gelu_mlp(x, fc1, fc2, recompute)
    plain = F.linear(F.gelu(F.linear(x, *fc1), approximate="tanh"), *fc2)
    assert rel(fused, plain) < 1e-14
    grad = torch.randn_like(plain)
    for a, b in zip(torch.autograd.grad(fused, inputs, grad), torch.autograd.grad(plain, inputs, grad), strict=True):
        assert rel(a, b) < 1e-12
