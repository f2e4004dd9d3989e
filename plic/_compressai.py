"""Import compressai's coding modules without its package ``__init__``.

``import compressai`` runs ``compressai/__init__.py``, which imports every
subpackage: the data sets (point clouds), and a transform registry that
imports ``torch_geometric`` and ``torchvision.transforms``. On this project's
2-core machine that is about 3-4 s of every ``plic compress`` and
``plic decompress``, for modules plic never uses (``python -X importtime``,
benchmarks/speed/README.md).

:func:`install` puts a package object for ``compressai`` in ``sys.modules``
that has the package's path but has not run its ``__init__``: submodules
(``compressai.entropy_models``, ``compressai.latent_codecs``, ...) import as
usual, each with its own dependencies, and any other attribute
(``compressai.datasets``, ``compressai.zoo``) is imported on first use, so a
program that imports plic and then uses compressai sees the same package.
Two things differ, both written here: the entropy-coder selection functions
of the ``__init__`` (the same code), and ``compressai.registry.transforms``,
whose table of transform classes starts empty instead of listing
torchvision's and torch_geometric's (compressai's own transforms still
register themselves when ``compressai.transforms`` is imported).

``scipy.stats`` (about 1 s), which compressai's entropy models import for one
call in ``GaussianConditional.update()`` (building CDF tables: training and
writing weight files, never coding), is deferred by :func:`defer_scipy_stats`:
it loads on first attribute access. That is done after torch is imported,
whose own import registers operators through ``inspect.getmodule`` over every
module in ``sys.modules``.

Nothing happens when compressai was imported before plic.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types


def install() -> None:
    if "compressai" in sys.modules:
        return
    spec = importlib.util.find_spec("compressai")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: the import that needs it reports that
    pkg = importlib.util.module_from_spec(spec)
    coders = ["ans"]
    try:
        importlib.util.find_spec("range_coder") and coders.append("rangecoder")
    except (ImportError, ValueError):
        pass
    state = {"coder": "ans"}

    def set_entropy_coder(entropy_coder: str) -> None:
        if entropy_coder not in coders:
            raise ValueError(f'Invalid entropy coder "{entropy_coder}", choose from({", ".join(coders)}).')
        state["coder"] = entropy_coder

    def __getattr__(name: str):
        if name == "__version__":
            return importlib.import_module("compressai.version").__version__
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return importlib.import_module(f"compressai.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'compressai' has no attribute {name!r}") from None

    pkg.get_entropy_coder = lambda: state["coder"]
    pkg.available_entropy_coders = lambda: list(coders)
    pkg.set_entropy_coder = set_entropy_coder
    pkg.__getattr__ = __getattr__
    sys.modules["compressai"] = pkg

    transforms = types.ModuleType("compressai.registry.transforms")
    transforms.TRANSFORMS = {}

    def register_transform(name: str):
        def decorator(cls):
            transforms.TRANSFORMS[name] = cls
            return cls

        return decorator

    transforms.register_transform = register_transform
    transforms.__all__ = ["TRANSFORMS", "register_transform"]
    sys.modules["compressai.registry.transforms"] = transforms


def defer_scipy_stats() -> None:
    """Make ``scipy.stats`` load on first use (call after ``import torch``, before compressai's entropy models)."""
    if "torch" in sys.modules and "compressai.entropy_models" not in sys.modules:
        _defer("scipy.stats")


class _Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module until one of its attributes is asked for.

    The import system and ``inspect`` read only attributes set here (``__spec__``,
    ``__file__``...), so ``import scipy.stats`` binds it without loading; the
    first other attribute loads the real module, which then replaces it.
    """

    def __getattr__(self, attr: str):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, real)
        return getattr(real, attr)


def _defer(name: str) -> None:
    if name in sys.modules:
        return
    parent, _, _ = name.rpartition(".")
    try:
        pspec = importlib.util.find_spec(parent)  # a top-level package: found, not imported
        if pspec is None or not pspec.submodule_search_locations:
            return
        spec = importlib.machinery.PathFinder.find_spec(name, pspec.submodule_search_locations)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    stub = _Deferred(name)
    stub.__spec__, stub.__file__, stub.__path__ = spec, spec.origin, list(spec.submodule_search_locations or [])
    stub.__loader__, stub.__package__ = spec.loader, name
    sys.modules[name] = stub


def padded_for_rans(stream: bytes, symbols: int) -> bytes:
    """``stream`` followed by the zero bytes compressai's rANS decoder may over-read decoding ``symbols``.

    compressai's rANS decoder reads 32-bit words without bounds checks; a
    stream that is not what the encoder wrote (a crafted file with a valid
    checksum) would make it read past the buffer. Per stream it reads at
    most the stream itself, 15 more bytes per stream byte through the
    bypass (escape) path, and one word per symbol once the stream is
    exhausted; that much zero padding makes every read land inside the
    buffer. A genuine stream never reaches the padding, so decoding is
    unchanged.
    """
    return bytes(stream) + bytes(16 * len(stream) + 4 * symbols + 64)
