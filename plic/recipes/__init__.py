"""Per-paper training recipes, picked with ``plic train --recipe NAME``.

The trainer (:mod:`plic.train.trainer`) owns data, the codec, its optimizers,
checkpoints and logs. A recipe changes what one step optimises: it gives the
codec's loss, may train networks of its own after each codec step (a proxy
metric, a discriminator), and hands the trainer the tensors and settings it
must checkpoint. The default recipe is plain rate-distortion training.
"""

from __future__ import annotations

import inspect
from typing import Dict, Type

from plic.errors import PlicError
from plic.train.recipe import RateDistortion, Recipe

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


def recipe_class(name: str) -> Type[Recipe]:
    _register_builtin()
    if name not in RECIPES:
        raise PlicError(f"unknown recipe {name!r} (known: {', '.join(sorted(RECIPES))})")
    return RECIPES[name]


def check_args(name: str, args: Dict) -> None:
    """Refuse settings the recipe does not take, and missing required ones, with one line each.

    Called by the CLI before a run folder exists, and by :func:`build_recipe`.
    """
    _register_builtin()
    if name not in RECIPES:
        raise PlicError(f"unknown recipe {name!r} (known: {', '.join(sorted(RECIPES))})")
    params = dict(inspect.signature(RECIPES[name].__init__).parameters)
    params.pop("self", None)
    unknown = sorted(set(args) - set(params))
    if unknown:
        raise PlicError(f"--recipe {name} has no setting {unknown[0]!r} (it takes: {', '.join(params)})")
    missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty and p not in args]
    if missing:
        raise PlicError(f"--recipe {name} needs --recipe-arg {missing[0]}=VALUE")


def build_recipe(name: str, **args) -> Recipe:
    check_args(name, args)
    return RECIPES[name](**args)


def make_trainer(cfg, out, **kwargs):
    """A :class:`plic.train.trainer.Trainer` for ``cfg``, handed the recipe ``cfg.recipe`` names."""
    from plic.train.trainer import Trainer

    args = cfg.recipe_args if cfg.recipe != "rd" else {**cfg.recipe_args, "metric": cfg.metric}
    return Trainer(cfg, out, recipe=build_recipe(cfg.recipe, **args), **kwargs)


__all__ = ["Recipe", "RateDistortion", "RECIPES", "build_recipe", "check_args", "make_trainer"]
