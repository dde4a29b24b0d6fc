"""Every kernel specialisation the Triton paths launch, compiled ahead of time for real GPUs.

The CPU interpreter runs the kernels' arithmetic but none of the compiler's rules: it never
refuses a module global that is not a ``tl.constexpr``, and it has no shared memory, so a tile
that needs more than a multiprocessor holds runs there and fails on the card. This module
closes that gap without a GPU:

* :func:`record_launches` runs the real launchers (forward and backward, on ``meta`` tensors:
  no memory, any length) with every kernel replaced by a recorder, so the list of
  specialisations is what the code launches, not a second copy of its plans;
* :func:`compile_for_target` compiles one of them with Triton's own compiler for a named
  architecture (``GPUTarget("cuda", cc, 32)``; the compiler and LLVM ship in the triton wheel)
  as far as PTX, which is where the frontend's checks and the shared-memory allocation
  happen, and returns the shared memory the kernel asks for. ptxas, the slow last step (tens
  of seconds per kernel), only turns that PTX into machine code.

``tests/ops/test_compile_check.py`` compiles every specialisation for sm_89 and sm_90 (sm_80
asked for sm_89's shared memory byte for byte, under a larger limit; ``make compile-check``
adds it) and holds each to :data:`SHARED_MEMORY_LIMITS`.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

# bytes of shared memory one block may use (the opt-in maximum), by compute capability
SHARED_MEMORY_LIMITS = {80: 166_912, 86: 101_376, 87: 166_912, 89: 101_376, 90: 232_448}

# the kernels the launchers call by module-global name, by module (helpers that kernels call
# are never replaced: a kernel compiled meanwhile must find them)
LAUNCHED_KERNELS = {
    "hyenadna.ops.triton.gated_conv": ("_gated_conv_fwd", "_gated_conv_bwd"),
    "hyenadna.ops.triton.long_conv": ("_fused_fwd", "_fused_bwd", "_outer_fwd", "_outer_inv", "_inner_conv",
                                      "_inner_bwd"),
    "hyenadna.ops.triton.short_conv": ("_short_conv_fwd", "_short_conv_bwd"),
}  # fmt: skip
_RECORDING = threading.RLock()  # one recording at a time; other threads keep launching for real

POINTER_TYPES = {
    torch.float32: "*fp32",
    torch.float16: "*fp16",
    torch.bfloat16: "*bf16",
    torch.float64: "*fp64",
    torch.int64: "*i64",
    torch.int32: "*i32",
}


@dataclass(frozen=True)
class Specialisation:
    """One compiled form of a kernel: its module and name, argument types (Triton's
    signature strings, ``constexpr`` for compile-time arguments) and compile-time values."""

    module: str
    kernel: str
    signature: tuple[tuple[str, str], ...]
    constexprs: tuple[tuple[str, object], ...]
    num_warps: int = 4
    values: tuple = field(default=(), compare=False, hash=False)  # one launch's arguments, in order

    def describe(self) -> str:
        values = ", ".join(f"{k}={v}" for k, v in self.constexprs)
        pointers = sorted({t for _, t in self.signature if t.startswith("*")})
        return f"{self.kernel}[{values}; {'/'.join(pointers)}; warps={self.num_warps}]"


def _type_of(value) -> str:
    if isinstance(value, torch.Tensor):
        return POINTER_TYPES[value.dtype]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"no Triton type for a kernel argument {value!r}")


class _Recorder:
    """Stands in for a JIT kernel: ``kernel[grid](*args, **kwargs)`` records the
    specialisation and launches nothing, in the recording thread; in any other thread it
    launches the kernel as usual."""

    def __init__(self, module: str, name: str, kernel, found: set[Specialisation]):
        self.module, self.name, self.kernel, self.found = module, name, kernel, found
        self.thread = threading.get_ident()

    def __getitem__(self, grid):
        return self._record if threading.get_ident() == self.thread else self.kernel[grid]

    def _record(self, *args, num_warps: int = 4, num_stages: int | None = None, **kwargs) -> None:
        params = _parameters(self.kernel)
        values = dict(zip([name for name, _, _ in params], args))
        values.update(kwargs)
        signature, constexprs, given = [], [], []
        for name, is_constexpr, default in params:
            value = values.get(name, default)
            if is_constexpr:
                value = getattr(value, "value", value)
                signature.append((name, "constexpr"))
                constexprs.append((name, value))
            else:
                signature.append((name, _type_of(value)))
            given.append(None if isinstance(value, torch.Tensor) else value)
        spec = Specialisation(self.module, self.name, tuple(signature), tuple(constexprs), num_warps, tuple(given))
        self.found.add(spec)


def _kernel_types() -> tuple[type, ...]:
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    return JITFunction, InterpretedFunction


def _parameters(kernel) -> list[tuple[str, bool, object]]:
    """(name, is compile-time, default) of each parameter of a compiled or interpreted kernel
    (the interpreter keeps no parameter list: read the annotations, as the compiler does)."""
    import inspect

    if hasattr(kernel, "params"):
        return [(p.name, p.is_constexpr, p.default) for p in kernel.params]
    return [(p.name, "constexpr" in str(p.annotation), None if p.default is p.empty else p.default)
            for p in inspect.signature(kernel.fn).parameters.values()]  # fmt: skip


@contextlib.contextmanager
def record_launches() -> Iterator[set[Specialisation]]:
    """Within the block, every Triton kernel the launchers call from this thread is recorded,
    not run (compiled kernels, and interpreted ones under ``TRITON_INTERPRET=1``)."""
    kernel_types = _kernel_types()
    found: set[Specialisation] = set()
    with _RECORDING:
        saved = []
        for name, kernels in LAUNCHED_KERNELS.items():
            module = importlib.import_module(name)
            for attr in kernels:
                value = getattr(module, attr)
                kernel = value.kernel if isinstance(value, _Recorder) else value  # recorders nest
                if isinstance(kernel, kernel_types):
                    saved.append((module, attr, value))
                    setattr(module, attr, _Recorder(name, attr, kernel, found))
        try:
            yield found
        finally:
            for module, attr, value in reversed(saved):
                setattr(module, attr, value)


def gated_conv_specialisations(
    lengths: Iterable[int], dtypes: Iterable[torch.dtype], grad: bool = True, batch: int = 2, channels: int = 3
) -> set[Specialisation]:
    """What the gated long convolution and the short convolution launch for (batch, channels,
    length) inputs of each length and dtype, forward and, with ``grad``, backward (on ``meta``
    tensors: nothing is allocated)."""
    from hyenadna.ops.triton.gated_conv import gated_fftconv_triton
    from hyenadna.ops.triton.short_conv import short_conv_split_triton

    dtypes = list(dtypes)
    with record_launches() as found:
        for length in lengths:
            for dtype in dtypes:
                with torch.set_grad_enabled(grad):
                    z = torch.empty(batch, length, 3 * channels, device="meta", dtype=dtype, requires_grad=grad)
                    w = torch.empty(3 * channels, 1, 3, device="meta", requires_grad=grad)
                    b = torch.empty(3 * channels, device="meta", requires_grad=grad)
                    x0, x1, v = short_conv_split_triton(z, w, b, channels)
                    h = torch.empty(channels, length, device="meta", requires_grad=grad)
                    d = torch.empty(channels, device="meta", requires_grad=grad)
                    y = gated_fftconv_triton(x0, x1, v, h, d)
                    if grad:
                        torch.autograd.grad(y, [z, w, b, h, d], torch.empty_like(y))
    return found


def compile_for_target(spec: Specialisation, capability: int) -> int:
    """Compile ``spec`` for ``sm_<capability>`` as far as PTX and return the shared memory (bytes)
    one block asks for. Raises the compiler's own error where the kernel does not compile."""
    from triton._C.libtriton import ir
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.compiler.compiler import make_backend

    kernel = getattr(importlib.import_module(spec.module), spec.kernel)
    target = GPUTarget("cuda", capability, 32)
    backend = make_backend(target)
    source = ASTSource(kernel, dict(spec.signature), constexprs=dict(spec.constexprs))
    options = backend.parse_options({"num_warps": spec.num_warps})
    context = ir.context()
    ir.load_dialects(context)
    backend.load_dialects(context)
    module = source.make_ir(target, options, backend.get_codegen_implementation(options),
                            backend.get_module_map(), context)  # fmt: skip
    stages: dict = {}
    backend.add_stages(stages, options, source.language)
    metadata: dict = {}
    for name, stage in stages.items():
        module = stage(module, metadata)
        if name == "ptx":
            break
    return int(metadata["shared"])


def every_length_class(limit: int) -> list[int]:
    """One length per plan the planner can make up to ``limit``: each power of two and the one
    after it (the transform sizes change only there)."""
    return sorted({n for k in range(limit.bit_length()) for n in (1 << k, (1 << k) + 1) if n <= limit})


def _compile_job(job: tuple[Specialisation, int]) -> tuple[Specialisation, int, int | str]:
    spec, capability = job
    try:
        return spec, capability, compile_for_target(spec, capability)
    except Exception as error:  # reported with the specialisation that raised it
        return spec, capability, f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"


def kernel_shared_bytes(spec: Specialisation, device: torch.device) -> int:
    """Shared memory of ``spec`` compiled for ``device``: Triton compiles it (or finds it in
    its cache) without launching it, with the same argument values as the launch."""
    kernel = getattr(importlib.import_module(spec.module), spec.kernel)
    placeholders = {kind: dtype for dtype, kind in POINTER_TYPES.items()}
    args = [placeholders[kind] if kind.startswith("*") else value
            for (_, kind), value in zip(spec.signature, spec.values) if kind != "constexpr"]  # fmt: skip
    with torch.cuda.device(device):
        compiled = kernel.warmup(*args, grid=(1,), num_warps=spec.num_warps, **dict(spec.constexprs))
    return int(compiled.metadata.shared)


def _warm_job(job: tuple[Specialisation, str]) -> int | str:
    spec, device = job
    try:
        return kernel_shared_bytes(spec, torch.device(device))
    except Exception as error:  # the launch will raise it again, where it is reported
        return f"{type(error).__name__}: {error}"


def warm(specs: list[Specialisation], device: torch.device, jobs: int) -> list[int | str]:
    """Compile ``specs`` for ``device`` into Triton's cache on ``jobs`` processes at once (the
    launches that follow find them there): a cold start of a long-context run compiles dozens of
    kernels, one after another, in the launching process. Returns each one's shared memory."""
    if not specs:
        return []
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    with _compiling_pool(min(jobs, len(specs))) as pool:
        return list(pool.map(_warm_job, [(spec, str(device)) for spec in specs]))


def _compiling_pool(jobs: int):
    """``jobs`` fresh processes that compile, never interpret (spawned: no CUDA state forked)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max(1, jobs), mp_context=context, initializer=_worker_setup)


def _worker_setup() -> None:
    import os
    import warnings

    os.environ["TRITON_INTERPRET"] = "0"  # compile, never interpret, in the workers
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    warnings.filterwarnings("ignore", category=UserWarning)


def main(argv: list[str] | None = None) -> int:
    """``python -m hyenadna.ops.triton.compile_check``: compile every specialisation for the
    targets, print one line per kernel and target with its shared memory against the limit,
    and exit 1 if any fails to compile or does not fit."""
    import argparse
    import json
    import time

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--targets", type=int, nargs="+", default=[80, 89, 90])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=None, help="default: the four-step kernels' limit")
    parser.add_argument("--json", default=None, help="write every result here")
    args = parser.parse_args(argv)

    _worker_setup()
    from hyenadna.ops.triton.long_conv import max_length

    start = time.perf_counter()
    lengths = every_length_class(args.max_length or max_length())
    specs = sorted(gated_conv_specialisations(lengths, [torch.float32, torch.bfloat16, torch.float16]),
                   key=Specialisation.describe)  # fmt: skip
    jobs = [(spec, cc) for cc in args.targets for spec in specs]
    print(f"{len(specs)} specialisations for lengths 1 to {lengths[-1]:,}, float32/bfloat16/float16, forward and "
          f"backward; {len(jobs)} compilations for sm_{', sm_'.join(map(str, args.targets))}", flush=True)  # fmt: skip
    failures, rows = 0, []
    with _compiling_pool(args.jobs) as pool:
        for spec, cc, result in pool.map(_compile_job, jobs):
            limit = SHARED_MEMORY_LIMITS[cc]
            ok = isinstance(result, int) and result <= limit
            failures += not ok
            shown = f"{result:>8,} / {limit:,} bytes" if isinstance(result, int) else result
            print(f"{'ok  ' if ok else 'FAIL'} sm_{cc} {spec.describe()}: {shown}", flush=True)
            rows.append({"target": cc, "kernel": spec.describe(), "shared": result, "limit": limit, "ok": ok})
    if args.json:
        partial = Path(f"{args.json}.partial")  # complete or absent, as every output of the package
        partial.write_text(json.dumps(rows, indent=1) + "\n")
        partial.replace(args.json)
    print(f"{len(jobs) - failures} passed, {failures} failed ({time.perf_counter() - start:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
