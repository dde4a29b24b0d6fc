"""Shared fixtures: deterministic torch threads and seeds per test."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():  # Triton kernels run in its CPU interpreter (tests/ops/test_triton.py)
    os.environ.setdefault("TRITON_INTERPRET", "1")
# every buffer a Triton kernel writes starts as NaN, so an element left unwritten fails a test
os.environ.setdefault("HYENADNA_POISON_OUTPUTS", "1")


@pytest.fixture(autouse=True)
def _torch_defaults():
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def real(tmp_path_factory):
    """The real genomic test files (see tests/real_data.py), unpacked once per session."""
    from real_data import RealData

    return RealData(tmp_path_factory.mktemp("real"))


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Indexes and decompressed genomes that go to the cache land in the test's own folder."""
    monkeypatch.setenv("HYENADNA_CACHE", str(tmp_path / "cache"))
