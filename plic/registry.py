"""Models by name, as CompressAI's ``compressai.registry`` does.

A model class registers itself with :func:`register_model`; the CLI, the zoo and
the bitstream refer to models only by these names.
"""

from __future__ import annotations

from typing import Callable, Dict, Type

from torch import nn

from plic.errors import PlicError

MODELS: Dict[str, Type[nn.Module]] = {}


def register_model(name: str) -> Callable[[Type[nn.Module]], Type[nn.Module]]:
    def decorator(cls: Type[nn.Module]) -> Type[nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = cls
        cls.registry_name = name
        return cls

    return decorator


def model_class(name: str) -> Type[nn.Module]:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise PlicError(f"unknown model {name!r} (known: {known})") from None


def build_model(name: str, **config) -> nn.Module:
    return model_class(name)(**config)
