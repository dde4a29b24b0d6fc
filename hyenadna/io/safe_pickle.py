"""Load PyTorch/Lightning checkpoints without running code from the file.

A ``.ckpt`` is a pickle, and unpickling can call any importable function. The released
HyenaDNA checkpoints also hold OmegaConf objects (the training run's hyper-parameters), which
``torch.load(weights_only=True)`` refuses and which we do not want to import. So we pass torch
a restricted unpickler: tensors, storages and plain containers resolve as usual; OmegaConf and
``typing`` objects become inert placeholders that only record their state; every other
global is refused with an error naming it, before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import collections
import os
import pickle
from typing import Any

import torch

from hyenadna.errors import HyenaDNAError

_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "bool"): bool,
    ("builtins", "str"): str,
    ("builtins", "bytes"): bytes,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
}
for _dtype in (
    torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
    torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128,
):  # fmt: skip
    _ALLOWED[("torch", str(_dtype).removeprefix("torch."))] = _dtype

_PLACEHOLDER_MODULES = ("omegaconf", "typing", "pathlib")
"""Globals from these modules load as inert placeholders: they describe hyper-parameters,
never weights, and we have no use for their behaviour."""


class Placeholder:
    """Stands in for an object we do not import; keeps what the pickle gave it, runs nothing."""

    qualified_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {self.qualified_name}>"


_placeholders: dict[str, type[Placeholder]] = {}


def _placeholder(module: str, name: str) -> type[Placeholder]:
    key = f"{module}.{name}"
    if key not in _placeholders:
        _placeholders[key] = type(name, (Placeholder,), {"qualified_name": key, "__module__": __name__})
    return _placeholders[key]


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # protocol 2 files name Python 2 modules (__builtin__.dict); map them as pickle does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module.split(".")[0] in _PLACEHOLDER_MODULES:
            return _placeholder(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


class _RestrictedPickleModule:
    """What ``torch.load(pickle_module=...)`` needs: an ``Unpickler`` and ``load``."""

    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` of ``path`` through the restricted unpickler above.

    Raises :class:`HyenaDNAError` naming the file and the global when the file would import
    anything outside the allow-list (a pickle that runs code is refused, not executed).
    """
    try:
        return torch.load(
            path,
            map_location=map_location,
            pickle_module=_RestrictedPickleModule,
            weights_only=False,  # our own restricted unpickler does the vetting
            mmap=None,
        )
    except pickle.UnpicklingError as exc:
        raise HyenaDNAError(f"{path}: not loaded, the file is unsafe or not a checkpoint: {exc}") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise HyenaDNAError(f"{path}: cannot read checkpoint: {exc}") from exc
