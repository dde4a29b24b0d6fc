"""The allocator choice of the hyenadna command (hyenadna/cli/runtime.py)."""

from __future__ import annotations

import pytest

from hyenadna.cli.runtime import JEMALLOC_CONF, allocator_environment, find_jemalloc
from hyenadna.errors import HyenaDNAError


def test_jemalloc_is_installed_for_the_command():
    """.ci/install-test-data installs Debian's libjemalloc2; without it the command runs on
    the system allocator, correct but slower (see the runtime module)."""
    assert find_jemalloc() is not None


def test_allocator_environment_preloads_jemalloc_once():
    env = allocator_environment({"PATH": "/bin", "LD_PRELOAD": "libother.so"})
    assert env is not None and env["PATH"] == "/bin"
    assert env["LD_PRELOAD"].split() == [find_jemalloc(), "libother.so"]
    assert env["MALLOC_CONF"] == JEMALLOC_CONF
    assert allocator_environment(env) is None  # the re-executed process does not loop
    assert allocator_environment({"MALLOC_CONF": "narenas:2"})["MALLOC_CONF"] == "narenas:2"  # the user's wins


def test_allocator_environment_respects_the_users_choice():
    assert allocator_environment({"HYENADNA_ALLOCATOR": "system"}) is None
    assert allocator_environment({"LD_PRELOAD": "/opt/lib/libjemalloc.so"}) is None
    with pytest.raises(HyenaDNAError, match="HYENADNA_ALLOCATOR must be 'jemalloc' or 'system', got 'tcmalloc'"):
        allocator_environment({"HYENADNA_ALLOCATOR": "tcmalloc"})
