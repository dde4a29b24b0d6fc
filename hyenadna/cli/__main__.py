"""``python -m hyenadna.cli ...``: the ``hyenadna`` command, for scripts that want the interpreter
they run under rather than whatever ``hyenadna`` is first on the PATH (benchmarks/tasks.py)."""

from hyenadna.cli import main

if __name__ == "__main__":
    main()
