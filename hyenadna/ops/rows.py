"""Small helpers for channel rows (B, C, L): spans of positions, batched products, and
workspace buffers that callers keep from call to call.

On a CPU a fresh buffer of hundreds of MB is page-faulted in anew by the kernel at every call,
and a transposing copy runs at about a tenth of a plain copy's bandwidth; these helpers let the
fast paths reuse buffers and read transposed operands as BLAS flags instead of copies.
"""

from __future__ import annotations

import math

import torch


def spans(length: int, chunk: int) -> list[slice]:
    """Consecutive slices of at most ``chunk`` covering ``range(length)``."""
    return [slice(start, min(start + chunk, length)) for start in range(0, length, chunk)]


def rows_product(
    a: torch.Tensor,
    b: torch.Tensor,
    out: torch.Tensor,
    bias: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """``out[i] = a[i] @ b[i] (+ bias)`` per batch entry; ``a`` or ``b`` may be a 2-D matrix
    shared by all entries, and any operand a transposed view (BLAS reads it as stored).
    ``dtype``: multiply in that dtype (bfloat16 under CPU autocast, :mod:`hyenadna.ops.precision`),
    all entries in one batched product, each rounded once and written into ``out``'s dtype."""
    if dtype is not None and dtype != out.dtype:  # bmm: matmul's broadcasting copies a 3-D transposed operand
        batch = out.shape[0]
        a, b = (t.to(dtype) if t.dim() == 3 else t.to(dtype).expand(batch, *t.shape) for t in (a, b))
        product = torch.bmm(a, b)
        if bias is None:
            out.copy_(product)
        else:
            torch.add(product, bias, out=out)
        return
    for i in range(out.shape[0]):
        left = a if a.dim() == 2 else a[i]
        right = b if b.dim() == 2 else b[i]
        if bias is None:
            torch.mm(left, right, out=out[i])
        else:
            torch.addmm(bias, left, right, out=out[i])


def summed_products(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``sum_i a[i] @ b[i]`` over the batch (a weight's gradient), in ``a``'s dtype; ``dtype``
    as in :func:`rows_product`, the sum taken in ``a``'s dtype."""
    if dtype is not None and dtype != a.dtype:
        return torch.bmm(a.to(dtype), b.to(dtype)).sum(0, dtype=a.dtype)
    total = a.new_zeros(a.shape[1], b.shape[2])
    for i in range(a.shape[0]):
        total.addmm_(a[i], b[i])
    return total


def workspace_buffer(
    workspace: dict, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The workspace's buffer ``name`` viewed as ``shape``, made anew only when too small or
    of another dtype or device: large buffers kept by the caller are not page-faulted in again."""
    size = math.prod(shape)
    held = workspace.get(name)
    if held is None or held.numel() < size or held.dtype != dtype or held.device != device:
        held = workspace[name] = torch.empty(size, dtype=dtype, device=device)
    return held[:size].view(shape)


def padded_rows(shape: tuple[int, ...], length: int, n: int, like: torch.Tensor) -> torch.Tensor:
    """A fresh (*shape, n) buffer of ``like``'s dtype whose positions ``length..n`` are zero; the
    caller writes the first ``length``."""
    padded = like.new_empty(*shape, n)
    padded[..., length:].zero_()
    return padded


def zero_padded(workspace: dict, name: str, rows: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``rows`` (..., L) copied into the workspace's buffer ``name`` (..., n), zeros after L: one
    copy, where torch.fft's own padding would zero-fill and copy the whole input once more."""
    padded = workspace_buffer(workspace, name, (*rows.shape[:-1], n), dtype, rows.device)
    length = rows.shape[-1]
    padded[..., length:].zero_()
    padded[..., :length].copy_(rows)
    return padded
