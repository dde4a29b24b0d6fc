"""The Trainer helpers: a run Lightning stops on SIGTERM or Ctrl-C is reported as stopped, not as
finished or failed; the precision a run asks for is resolved, with a warning where it would be slow."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from lightning.pytorch.utilities.exceptions import SIGTERMException

from hyenadna.training.trainer import timed_fit


def stopping_trainer(exc: BaseException) -> SimpleNamespace:
    def fit(*args, **kwargs):
        raise exc

    return SimpleNamespace(fit=fit)


def test_lightnings_sigterm_exit_becomes_an_interrupt(tmp_path):
    """SIGTERMException is a SystemExit without a code: the process ended with status 0 and a
    script went on as if the run had finished; the command line now says it stopped (130)."""
    with pytest.raises(KeyboardInterrupt, match="^signal 15$"):
        timed_fit(stopping_trainer(SIGTERMException()), None, None, tmp_path, False)
    try:  # Ctrl-C: Lightning catches the KeyboardInterrupt and calls sys.exit(1)
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        ctrl_c = SystemExit(1)
        ctrl_c.__context__ = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        timed_fit(stopping_trainer(ctrl_c), None, None, tmp_path, False)
    with pytest.raises(SystemExit) as other:  # any other exit keeps its code
        timed_fit(stopping_trainer(SystemExit(3)), None, None, tmp_path, False)
    assert other.value.code == 3


@pytest.mark.parametrize("amx", [True, False, None])
def test_bf16_on_a_cpu_without_amx_warns(monkeypatch, amx):
    """bf16-mixed asked for on a CPU runs as asked; where torch's probe says the CPU has no AMX,
    one warning says its products are emulated. auto stays 32-true on a CPU."""
    import warnings

    import torch

    from hyenadna.training import runtime
    from hyenadna.training.trainer import resolve_precision

    monkeypatch.setattr(runtime, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
        assert resolve_precision("32-true", "cpu") == "32-true"
        assert resolve_precision("auto", "auto") == "32-true"
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert messages == (["precision 'bf16-mixed' on a CPU without AMX: its bfloat16 products are emulated and "
                         "likely slower than 32-true's"] if amx is False else [])  # fmt: skip
