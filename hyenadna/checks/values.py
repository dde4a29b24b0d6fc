"""Range checks of the options a user types: each refusal names the option and the value.

Commands check every count, length and size before they create a file or load a model, so a
typo costs nothing and leaves nothing behind.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from hyenadna.errors import HyenaDNAError


def integer(option: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (either bound may be None); bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise HyenaDNAError(f"{option} must be a whole number, got {value!r}")
    _bounded(option, int(value), low, high)
    return int(value)


def number(
    option: str, value: object, low: float | None = None, high: float | None = None, open_low: bool = False
) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise HyenaDNAError(f"{option} must be a finite number, got {value!r}")
    value = float(value)
    if open_low and low is not None and value <= low:
        raise HyenaDNAError(f"{option} must be greater than {_show(low)}, got {_show(value)}")
    _bounded(option, value, low, high)
    return value


def positive(option: str, value: object) -> int:
    """A count that must be at least 1 (batch sizes, chunks, steps)."""
    value = integer(option, value)
    if value < 1:
        raise HyenaDNAError(f"{option} must be positive, got {value}")
    return value


def _bounded(option: str, value: float, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            rule = f"be at least {_show(low)}"
        elif low is None:
            rule = f"be at most {_show(high)}"
        else:
            rule = f"lie in {_show(low)}..{_show(high)}"
        raise HyenaDNAError(f"{option} must {rule}, got {_show(value)}")


def _show(value: float | None) -> str:
    """A number as typed: ints exactly (a 19-digit seed is not ``9.22337e+18``), floats by their
    shortest exact form (``-1`` for ``-1.0``), so a refusal never reads as if the value were allowed."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
