"""The channel-row helpers (:mod:`hyenadna.ops.rows`) against plain torch on fresh random inputs:
spans, batched products with shared and transposed operands, and the workspace buffers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hyenadna.ops.rows import padded_rows, rows_product, spans, workspace_buffer, zero_padded


@pytest.mark.parametrize("length,chunk", [(0, 4), (1, 4), (10, 4), (12, 4), (7, 100)])
def test_spans_cover_the_range_in_order(length, chunk):
    pieces = spans(length, chunk)
    assert [i for piece in pieces for i in range(length)[piece]] == list(range(length))
    assert all(0 < piece.stop - piece.start <= chunk for piece in pieces)


@pytest.mark.parametrize("shared", ["left", "right", "none"])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("bias", [None, "rows", "columns"])
def test_rows_product_is_a_batched_matmul(shared, transposed, bias):
    """``out[i] = a[i] @ b[i] + bias`` whichever operand is a shared matrix or a transposed view."""
    torch.manual_seed(0)
    batch, m, k, n = 3, 5, 7, 4

    def operand(rows: int, cols: int, is_shared: bool) -> torch.Tensor:
        shape = (cols, rows) if is_shared else (batch, cols, rows)
        stored = torch.randn(*shape, dtype=torch.float64)
        if transposed:  # a view whose last two axes are swapped: BLAS reads it as stored
            return stored.transpose(-1, -2)
        return stored.transpose(-1, -2).contiguous()

    a, b = operand(m, k, shared == "left"), operand(k, n, shared == "right")
    add = {None: None, "rows": torch.randn(m, 1, dtype=torch.float64), "columns": torch.randn(n, dtype=torch.float64)}
    out = torch.full((batch, m, n), float("nan"), dtype=torch.float64)
    rows_product(a, b, out, add[bias])
    expected = torch.matmul(a, b) + (0 if add[bias] is None else add[bias])
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=1e-13)


def test_workspace_buffer_is_kept_until_too_small_or_of_another_kind():
    workspace: dict = {}
    first = workspace_buffer(workspace, "w", (2, 8), torch.float32, torch.device("cpu"))
    smaller = workspace_buffer(workspace, "w", (3, 4), torch.float32, torch.device("cpu"))
    assert first.shape == (2, 8) and smaller.shape == (3, 4)
    assert smaller.data_ptr() == first.data_ptr()  # the same memory, viewed anew
    larger = workspace_buffer(workspace, "w", (5, 8), torch.float32, torch.device("cpu"))
    assert larger.numel() == 40 and workspace["w"].numel() == 40
    wider = workspace_buffer(workspace, "w", (2, 2), torch.float64, torch.device("cpu"))
    assert wider.dtype == torch.float64 and workspace["w"].dtype == torch.float64
    other = workspace_buffer(workspace, "v", (2, 2), torch.float32, torch.device("cpu"))
    assert other.data_ptr() != wider.data_ptr()


@pytest.mark.parametrize("length,n", [(1, 2), (5, 9), (16, 32)])
def test_padded_rows_and_zero_padded_equal_f_pad(length, n):
    torch.manual_seed(length)
    rows = torch.randn(2, 3, length, dtype=torch.float64)
    padded = padded_rows((2, 3), length, n, rows)
    assert padded.shape == (2, 3, n) and padded.dtype == rows.dtype
    padded[..., :length] = rows
    torch.testing.assert_close(padded, F.pad(rows, (0, n - length)), rtol=0, atol=0)

    workspace = {"padded": torch.full((2 * 3 * n,), float("nan"), dtype=torch.float64)}  # a dirty buffer
    again = zero_padded(workspace, "padded", rows, n, torch.float64)
    torch.testing.assert_close(again, F.pad(rows, (0, n - length)), rtol=0, atol=0)
    assert again.data_ptr() == workspace["padded"].data_ptr()
    narrowed = zero_padded({}, "padded", rows.float(), n, torch.float64)  # cast on the way in
    assert narrowed.dtype == torch.float64
