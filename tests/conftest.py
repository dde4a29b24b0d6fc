"""Shared fixtures: deterministic torch threads and seeds per test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_defaults():
    torch.set_num_threads(2)
    yield
