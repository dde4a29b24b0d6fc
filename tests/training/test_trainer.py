"""A run that Lightning stops on SIGTERM or Ctrl-C is reported as stopped, not as finished or failed."""

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
