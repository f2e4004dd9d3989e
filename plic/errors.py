"""The exception types that the CLI turns into a one-line message (PlicError and its kinds)."""


class PlicError(Exception):
    """A user-facing failure: bad input, a corrupt file, a mismatched model.

    The CLI prints ``plic: <message>`` and exits non-zero; it never shows a
    traceback for these.
    """


class BitstreamError(PlicError):
    """A ``.plic`` file that cannot be decoded (corrupt, truncated, foreign)."""


class OutOfReach(PlicError):
    """A target no file of the model reaches, or a refined encoding that misses its target
    (a bpp by more than 5 % over, a PSNR by more than 0.1 dB under).

    ``below``: the target lies under the model's lowest file (a lower-rate model may reach it).
    """

    def __init__(self, message: str, below: bool = False):
        super().__init__(message)
        self.below = below


def exit_in_one_line(run) -> None:
    """Run a script's ``run()``; a PlicError or OSError (a bad weight file, an output that cannot be written)
    ends it with one line, ``error: <message>``, and exit status 1 instead of a traceback."""
    try:
        run()
    except (PlicError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from None
