"""Process-level settings that make CPU runs fast: the memory allocator.

Why it matters: glibc's malloc hands every block larger than 32 MiB straight back to the kernel
when it is freed and maps a fresh one on the next request, and the kernel fills a fresh mapping
one zeroed 4 KiB page fault at a time (about 1.8 µs per page on the development VM, so a fresh
128 MiB buffer cost 64 ms to fill where a reused one took 7 ms). A HyenaDNA activation at 32k
bases is 32 to 128 MiB, and a training step frees and allocates tens of GB of them. jemalloc
keeps freed extents and reuses them. Measured with benchmarks/long_context.py (`large-1m`,
training step at 32k bases, 2-core VM): ours 26.3 s on glibc, 14.1 s on jemalloc, peak memory
5.77 vs 5.91 GB; the reference algorithm 36.1 s vs 15.8 s. (glibc's own ``M_MMAP_THRESHOLD``
knob gave the speed too, but fragmented the heap: 9.5 GB peak.)

An allocator must be chosen before the process starts, so the ``hyenadna`` command re-executes
itself once with jemalloc preloaded when the library is installed (Debian/Ubuntu:
``apt install libjemalloc2``). ``HYENADNA_ALLOCATOR=system`` keeps the system allocator. In a
notebook or a script of your own, start Python as the command does::

    LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 python train.py

Threads: torch's default (one thread per physical core) was the fastest setting measured on
the development machine; the command leaves it alone.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Sequence

JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
"""Never return freed pages to the kernel: the process's memory stays at its peak, which is
what a training or embedding run holds anyway, and no page is faulted in twice."""
ALLOCATOR_VARIABLE = "HYENADNA_ALLOCATOR"
_REEXECUTED = "HYENADNA_ALLOCATOR_SET"


def find_jemalloc() -> str | None:
    """The jemalloc shared library's name as the dynamic loader finds it, or ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.util.find_library("jemalloc")


def allocator_environment(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """The environment to re-execute with so that jemalloc is the allocator, or ``None``
    when nothing should change: asked not to, already done, or no jemalloc installed."""
    environ = dict(os.environ if environ is None else environ)
    choice = environ.get(ALLOCATOR_VARIABLE) or "jemalloc"
    if choice not in ("jemalloc", "system"):
        from hyenadna.errors import HyenaDNAError

        raise HyenaDNAError(f"{ALLOCATOR_VARIABLE} must be 'jemalloc' or 'system', got {choice!r}")
    if choice == "system" or environ.get(_REEXECUTED) or "jemalloc" in environ.get("LD_PRELOAD", ""):
        return None
    library = find_jemalloc()
    if library is None:
        return None
    preload = " ".join(filter(None, [library, environ.get("LD_PRELOAD", "")]))
    conf = environ.get("MALLOC_CONF", JEMALLOC_CONF)
    return {**environ, "LD_PRELOAD": preload, "MALLOC_CONF": conf, _REEXECUTED: "1"}


def reexec_with_jemalloc(argv: Sequence[str] | None = None) -> None:
    """Replace this process by the same command with jemalloc preloaded, when
    :func:`allocator_environment` says so; otherwise return and carry on. ``argv``: the
    interpreter's own command line (default ``sys.orig_argv``)."""
    environment = allocator_environment()
    if environment is None:
        return
    command = list(sys.orig_argv if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *command[1:]], environment)
