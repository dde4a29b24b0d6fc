"""The one exception type for mistakes a user can cause.

Bad files, bad coordinates, an unknown preset, a sequence longer than the model: all raise
:class:`HyenaDNAError` with a message that names the file, record or value at fault, so that a
notebook or a pipeline can catch our errors apart from bugs. It subclasses ``ValueError`` so
code that already catches ``ValueError`` keeps working.
"""

from __future__ import annotations


class HyenaDNAError(ValueError):
    """A problem with the user's input, named precisely in the message."""
