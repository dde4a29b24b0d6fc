"""The ``hyenadna`` command run through its ``main`` in the test's own process (a subprocess
spends seconds importing torch and Lightning): what the tests of hostile input expect of a
refused command line (one line, exit status 2), and what ``--print_config`` prints."""

from __future__ import annotations

import pytest

from hyenadna.cli import main


def error_line(capsys, argv: list[str]) -> str:
    """The one line ``hyenadna ARGV`` prints on stderr, with exit status 2 and no traceback."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("hyenadna: error: ")
    return err


def printed_config(capsys, argv: list[str]) -> str:
    """What ``hyenadna ARGV --print_config`` prints on stdout (exit status 0)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--print_config"])
    captured = capsys.readouterr()
    assert stop.value.code in (0, None), captured.err[-2000:]
    return captured.out
