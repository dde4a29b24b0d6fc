"""A run killed part-way, for the tests of stopped and resumed commands."""

from __future__ import annotations

from collections.abc import Callable


def killed_on_call(real: Callable, n: int) -> Callable:
    """``real``, counting its calls in ``.calls``, that raises KeyboardInterrupt (a kill) on call
    ``n`` instead of running (0: never; a plain counter)."""

    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        if wrapper.calls == n:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    wrapper.calls = 0
    return wrapper
