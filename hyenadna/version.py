"""The package's version, in a module of its own at the bottom of the layers: any room can
record it (a run's ``runtime`` in ``metrics.json``) without importing the package's face, and
``pyproject.toml`` reads it from here, so there is one copy."""

__version__ = "0.1.0"
