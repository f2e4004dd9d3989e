"""CompressAI checkpoints as plic weight files (``plic import``).

A source is ``compressai:<zoo architecture>`` with a quality: the zoo file
in torch's hub cache under its zoo file name, or any checkpoint given with
``weights`` (a bare state dict, or a training checkpoint holding one under
``state_dict``, as CompressAI's example script writes). Files are read with
``torch.load(weights_only=True)``: tensors and plain containers only, never a
full unpickle, so a crafted file cannot run code. The weights go through
CompressAI's own key renaming and its own model class (a wrong architecture
fails there), then into plic's registry model of the same layers; the CDF
tables are built once and frozen in the plic file, whose metadata records
where the weights came from.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, Optional

from plic.errors import PlicError
from plic.files import write_output

#: zoo architecture -> (compressai.models class name, plic registry name); more as plic's registry grows
IMPORTABLE = {"mbt2018-mean": ("MeanScaleHyperprior", "hyperprior"),
              "bmshj2018-hyperprior": ("ScaleHyperprior", "scale-hyperprior"),
              "mbt2018": ("JointAutoregressiveHierarchicalPriors", "mbt2018"),
              "cheng2020-anchor": ("Cheng2020Anchor", "cheng2020-anchor"),
              "cheng2020-attn": ("Cheng2020Attention", "cheng2020-attn"),
              # not in CompressAI's zoo: checkpoints of its training script (--weights)
              "elic2022-official": ("Elic2022Official", "elic"),
              "elic2022-chandelier": ("Elic2022Chandelier", "elic-chandelier"),
              # variable rate (all eight levels in one file; no --quality)
              "mbt2018-mean-vbr": ("MeanScaleHyperpriorVbr", "hyperprior-vbr"),
              "bmshj2018-hyperprior-vbr": ("ScaleHyperpriorVbr", "scale-hyperprior-vbr"),
              "mbt2018-vbr": ("JointAutoregressiveHierarchicalPriorsVbr", "mbt2018-vbr")}
#: the variable-rate ones
VBR = ("mbt2018-mean-vbr", "bmshj2018-hyperprior-vbr", "mbt2018-vbr")
#: classes whose ``from_state_dict`` assumes M=320 (ELIC's): plic reads M off the checkpoint instead
_M_FROM_CHECKPOINT = ("Elic2022Official", "Elic2022Chandelier")
#: lambdas of CompressAI's zoo qualities 1..8 (its training script's table), by metric
ZOO_LAMBDAS = {
    "mse": (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800),
    "ms-ssim": (2.40, 4.58, 8.73, 16.64, 31.73, 60.50, 115.37, 220.00),
}


def zoo_file(architecture: str, quality: Optional[int], metric: str = "mse") -> Path:
    """Where torch's hub cache keeps CompressAI's zoo file for this model (vbr models: one file, no quality)."""
    import torch.hub
    from compressai.zoo.image import model_urls
    from compressai.zoo.image_vbr import model_urls as vbr_urls

    try:
        url = vbr_urls[architecture][metric] if architecture in VBR else model_urls[architecture][metric][quality]
    except KeyError:
        raise PlicError(f"CompressAI's zoo has no {architecture} {metric} model of quality {quality}") from None
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def read_checkpoint(path: Path) -> Dict:
    """A state dict from a CompressAI checkpoint, without running any pickled code."""
    import pickle

    import torch

    if not path.is_file():
        raise PlicError(f"{path}: no such checkpoint")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PlicError(f"{path}: not a plain tensor checkpoint, refused without loading it ({first[:160]})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PlicError(f"{path}: holds no state dict of tensors (a bare one, or one under 'state_dict')")
    return obj


def import_compressai(source: str, quality: Optional[int], out: Path, weights: Optional[Path] = None, metric: str = "mse",
                      lmbda: Optional[float] = None) -> Dict:
    """Write a plic weight file for a CompressAI model; returns what was done (for the CLI's report)."""
    import compressai.models
    from compressai.zoo.pretrained import load_pretrained

    from plic import zoo
    from plic.models.compressai_interop import from_compressai

    kind, _, architecture = source.partition(":")
    if kind != "compressai" or not architecture:
        raise PlicError(f"unknown source {source!r}: use compressai:<architecture>, e.g. compressai:mbt2018-mean")
    if architecture not in IMPORTABLE:
        raise PlicError(f"compressai:{architecture} cannot be imported yet (importable: {', '.join(IMPORTABLE)})")
    if metric not in ZOO_LAMBDAS:
        raise PlicError(f"unknown metric {metric!r} (mse or ms-ssim)")
    vbr = architecture in VBR
    if vbr and (quality is not None or lmbda is not None):
        raise PlicError(f"compressai:{architecture} is variable-rate: it is imported with all its levels; "
                        f"drop --quality/--lambda (choose them when compressing)")
    if not vbr and quality is None:
        raise PlicError(f"compressai:{architecture} is one model per quality: give --quality 1..8")
    if not vbr and not 1 <= quality <= 8:
        raise PlicError("--quality must be 1..8 (CompressAI's zoo qualities)")
    if weights is None:
        weights = zoo_file(architecture, quality, metric)
        if not weights.is_file():
            raise PlicError(f"no network access here: CompressAI's zoo file {weights.name} is not in {weights.parent}; "
                            f"put it there, or pass a checkpoint with --weights")
    state = load_pretrained(read_checkpoint(weights))
    cls_name, plic_name = IMPORTABLE[architecture]
    cls = getattr(compressai.models, cls_name)
    try:
        twin = twin_of(cls, state)
    except (KeyError, RuntimeError, IndexError, AssertionError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PlicError(f"{weights}: not a CompressAI {architecture} checkpoint ({first[:200]})") from None
    # a vbr model holds every level: no one lambda
    lam = None if vbr else float(lmbda) if lmbda is not None else ZOO_LAMBDAS[metric][quality - 1]
    model = from_compressai(twin, lam)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    provenance = {"source": f"compressai:{architecture}", "class": f"compressai.models.{cls_name}",
                  "quality": quality, "metric": metric, "lambda": lam, "file": weights.name, "sha256": digest}
    fp = zoo.save_weights(model, out, metadata={"plic_provenance": json.dumps(provenance)})
    # decompress finds imported weights by fingerprint, as it finds the shipped ones
    kept = zoo.imported_dir() / f"{plic_name}-{fp.hex()}.safetensors"
    if not kept.exists():
        write_output(kept, Path(out).read_bytes())
    return {"fingerprint": fp.hex(), "model": plic_name, "N": model.N, "M": model.M, "lambda": lam,
            "lambda_range": (model.lambda_min, model.lambda_max),
            "provenance": provenance, "kept": str(kept)}


def twin_of(cls, state: Dict):
    """CompressAI's model of class ``cls`` holding ``state`` (strictly: a wrong architecture raises)."""
    if cls.__name__ == "JointAutoregressiveHierarchicalPriorsVbr":  # its hyper-latent has one step
        return cls.from_state_dict(state)
    if cls.__name__.endswith("Vbr"):
        # the zoo builds its vbr hyperpriors with a variable-step hyper-latent; a checkpoint shows which it has
        return cls.from_state_dict(state, vr_entbttlnck="gayn2zqstep.0.weight" in state)
    if cls.__name__ not in _M_FROM_CHECKPOINT:
        return cls.from_state_dict(state)
    # read N and M off the analysis: its first layer is a conv 3 -> N, its last a conv N -> M
    n = state["g_a.0.weight"].shape[0]
    top = [k for k in state if k.startswith("g_a.") and k.count(".") == 2 and k.endswith(".weight")]
    m = state[max(top, key=lambda k: int(k.split(".")[1]))].shape[0]
    twin = cls(N=n, M=m)
    twin.load_state_dict(state)
    return twin
