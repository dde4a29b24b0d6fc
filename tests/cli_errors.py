"""What the tests of hostile input expect of a refused command line: one line, exit status 2."""

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
