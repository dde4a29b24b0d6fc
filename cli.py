"""Run the ``hyenadna`` command from a source checkout: ``python cli.py --help``."""

from hyenadna.cli import main

if __name__ == "__main__":
    main()
