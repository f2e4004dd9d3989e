"""Per-paper training recipes, picked with ``plic train --recipe NAME``.

The trainer (:mod:`plic.train.trainer`) owns data, the codec, its optimizers,
checkpoints and logs. A recipe changes what one step optimises: it gives the
codec's loss, may train networks of its own after each codec step (a proxy
metric, a discriminator), and hands the trainer the tensors and settings it
must checkpoint. The default recipe is plain rate-distortion training.
"""

from __future__ import annotations

from typing import Dict, Type

from plic.errors import PlicError
from plic.recipes.base import RateDistortion, Recipe

RECIPES: Dict[str, Type[Recipe]] = {"rd": RateDistortion}


def _register_builtin() -> None:
    from plic.recipes.grow_latent import GrowLatent
    from plic.recipes.po_elic import POELIC
    from plic.recipes.proxiqa import ProxIQA
    from plic.recipes.st_lic import STLIC

    RECIPES["proxiqa"] = ProxIQA
    RECIPES["st-lic"] = STLIC
    RECIPES["po-elic"] = POELIC
    RECIPES["grow-latent"] = GrowLatent


def build_recipe(name: str, **args) -> Recipe:
    _register_builtin()
    if name not in RECIPES:
        raise PlicError(f"unknown recipe {name!r} (known: {', '.join(sorted(RECIPES))})")
    return RECIPES[name](**args)


__all__ = ["Recipe", "RateDistortion", "RECIPES", "build_recipe"]
