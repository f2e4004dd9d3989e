"""File names and atomic writes: what the CLI needs before it knows it will code anything.

Nothing here imports torch, so ``plic --help`` and ``plic info`` stay instant.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from plic.errors import PlicError


def cache_dir() -> Path:
    """plic's cache: converted pretrained weights and imported models (``$PLIC_CACHE`` or ``~/.cache/plic``)."""
    return Path(os.environ.get("PLIC_CACHE") or Path.home() / ".cache" / "plic")


def write_output(path: str | Path, data: bytes) -> None:
    """An output file, written atomically (its folder made if needed); ``-`` is standard output."""
    import sys

    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


#: image files plic reads (folders are searched for these)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pnm", ".tif", ".tiff", ".webp", ".gif"}


def plain_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then rename.

    A failure (full disk, permissions) leaves no partial file behind and does
    not touch an existing file at ``path``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise PlicError(f"{path}: folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would
        # (0666 less the umask) so outputs are readable like any other file.
        os.fchmod(fd, plain_file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise PlicError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
