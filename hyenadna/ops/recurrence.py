"""The Hyena gate recurrence, written once for every fast form of the operator.

Step 2 of the operator (:mod:`hyenadna.ops.reference`): for o = 0 .. N-2,
``v <- k_o * (g_{N-1-o} ⊙ v) + D_o ⊙ (g_{N-1-o} ⊙ v)``. The forms differ in where a step's
product lives (a fresh tensor, a zero-padded FFT buffer, the value itself in place, one position
of a decoder's cache), so each passes its step as a function, and this loop holds what they must
agree on: which gate meets which filter, in which order. The reference writes its loop out: it
is the independent twin the forms are tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Value = TypeVar("Value")
Gate = TypeVar("Gate")


def gate_recurrence(value: Value, gates: Sequence[Gate], step: Callable[[int, Gate, Value], Value]) -> Value:
    """``value`` after the recurrence: ``value = step(o, g_{N-1-o}, value)`` for o = 0, 1, ...

    ``gates`` are g_1 .. g_{N-1} in that order (the output gate g_0 is the caller's), or a tail
    g_j .. g_{N-1} of them where a form fuses the later steps (gates g_{j-1} .. g_1) itself.
    ``step(o, gate, value)`` multiplies ``value`` by ``gate`` and convolves it with filter
    ``o`` (plus the skip term) as its memory plan allows, and returns the next value."""
    for index, gate in enumerate(reversed(gates)):
        value = step(index, gate, value)
    return value
