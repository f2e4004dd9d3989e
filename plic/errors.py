"""The one exception type that the CLI turns into a one-line message."""


class PlicError(Exception):
    """A user-facing failure: bad input, a corrupt file, a mismatched model.

    The CLI prints ``plic: <message>`` and exits non-zero; it never shows a
    traceback for these.
    """


class BitstreamError(PlicError):
    """A ``.plic`` file that cannot be decoded (corrupt, truncated, foreign)."""
