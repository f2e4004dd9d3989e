"""Weights: shipped models by name, and safetensors files by path.

A plic weight file is a safetensors file whose metadata names the registered
model (``plic_model``) and its constructor arguments (``plic_config``, JSON).
It holds the parameters and the entropy models' CDF tables: the tables are
computed once, when the file is written, and never recomputed at load, so that
an encoder and a decoder on different machines use the same integer tables.
Nothing here unpickles anything.

Every file written here also records its fingerprint in the metadata
(``plic_fingerprint``), so that ``plic info`` and the decoder's choice between
shipped variants read a file header instead of loading weights: this module
imports torch only in the functions that build or save models.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from plic.errors import PlicError
from plic.files import cache_dir, plain_file_mode

if TYPE_CHECKING:
    import torch

#: name -> file inside ``plic/weights`` of the default weights of that name.
PRETRAINED: Dict[str, str] = {
    "hyperprior": "hyperprior-mse-vr.safetensors",
    "hyperprior-low": "hyperprior-mse-low-vr.safetensors",
    "hyperprior-mid": "hyperprior-mse-mid-vr.safetensors",
    "hyperprior-perceptual": "hyperprior-perceptual-vr.safetensors",
    "hyperprior-perceptual-low": "hyperprior-perceptual-low-vr.safetensors",
}
DEFAULT_MODEL = "hyperprior"
#: model -> its perceptual variant (``plic compress --perceptual``)
PERCEPTUAL: Dict[str, str] = {"hyperprior": "hyperprior-perceptual"}
#: shipped name -> the rungs below it, lowest rate first, each with the lambda up to which it codes:
#: the name codes as a :class:`plic.ladder.CodecLadder` with its own weights above the last switch
#: (switches measured on training crops: projects/ladder for the MSE rungs, benchmarks/perceptual/ladder for the other)
LADDERS: Dict[str, Tuple[Tuple[str, float], ...]] = {
    "hyperprior": (("hyperprior-low", 0.0058627), ("hyperprior-mid", 0.06)),
    "hyperprior-perceptual": (("hyperprior-perceptual-low", 0.003),),
}

_CACHE: Dict[str, "torch.nn.Module"] = {}
#: metadata key of the weights' fingerprint (hex)
FINGERPRINT_KEY = "plic_fingerprint"
#: a safetensors header larger than this is not a weight file of plic's
_MAX_HEADER = 64 << 20


#: parts renamed since files were first written (old -> new): state-dict prefixes and config keys.
#: The ST-LIC post-decoder network was called "refiner", a word now kept for encode-time refinement.
RENAMED = {"refiner": "post_filter"}
_FIRST_NAMES = {new: old for old, new in RENAMED.items()}


def _renamed_head(key: str, names: Mapping[str, str]) -> str:
    head, dot, rest = key.partition(".")
    return names.get(head, head) + dot + rest


def current_names(mapping: Mapping[str, Any]) -> dict:
    """``mapping`` with keys written before a rename (config keys, model and recipe arguments) under today's names."""
    return {RENAMED.get(k, k): v for k, v in mapping.items()}


def model_config(meta: Mapping[str, str]) -> dict:
    """The constructor arguments a weight file's metadata records, under today's names."""
    return current_names(json.loads(meta.get("plic_config", "{}")))


def fingerprint(state_dict: Mapping[str, torch.Tensor]) -> bytes:
    """8-byte digest of the weights as the model uses them (float32 values).

    Written in every bitstream so that a decoder holding other weights
    refuses the file instead of decoding garbage.
    """
    import torch

    h = hashlib.sha256()
    # under the names keys had when fingerprints were first defined: renames must not change fingerprints
    # (every file written with those weights carries one)
    for name, key in sorted((_renamed_head(k, _FIRST_NAMES), k) for k in state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        if t.is_floating_point():
            t = t.to(torch.float32)
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes())
    return h.digest()[:8]


def shipped_path(name: str) -> Optional[Path]:
    if name not in PRETRAINED:
        return None
    return Path(str(resources.files("plic") / "weights" / PRETRAINED[name]))


def save_derived_weights(model: torch.nn.Module, path: str | Path, source: str | Path, stage: Dict) -> bytes:
    """Write ``model``, made from the weight file ``source`` by a script (no training), with ``source``'s
    training record plus ``stage`` (what the script did), so ship_weights.py lists every stage; returns
    its fingerprint."""
    import json

    earlier = json.loads(read_metadata(source).get("plic_training", "{}")).get("stages", [])
    return save_weights(model, path, metadata={"plic_training": json.dumps({"stages": earlier + [stage]})})


def save_weights(model: torch.nn.Module, path: str | Path, half: bool = False,
                 metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Write ``model`` (CDF tables refreshed) to ``path``; returns its fingerprint.

    With ``half``, parameters are rounded to float16 *before* the CDF tables
    are computed, so the tables match the weights the decoder will load.
    """
    import torch
    from safetensors.torch import save_file

    model = model.cpu().eval()
    if half:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    model.update(force=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    params = {k for k, _ in model.named_parameters()}
    # only parameters are halved; buffers (CDF tables, scale table, GDN
    # bounds) stay exact so the loaded model is the one fingerprinted here
    to_save = {k: v.half() if half and k in params else v for k, v in state.items()}
    digest = fingerprint(state)
    meta = {"plic_model": model.registry_name, "plic_config": json.dumps(model.config())}
    meta.update(metadata or {})
    meta[FINGERPRINT_KEY] = digest.hex()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(to_save, str(tmp), metadata=meta)
    os.chmod(tmp, plain_file_mode())  # safetensors creates files 0600
    tmp.replace(path)
    return digest


def read_metadata(path: str | Path) -> Dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header in plain Python."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError("shorter than a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if not 2 <= n <= min(_MAX_HEADER, os.fstat(f.fileno()).st_size - 8):
                raise ValueError("header length out of range")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ValueError("metadata is not a string table")
        return meta
    except (FileNotFoundError, IsADirectoryError):
        raise PlicError(f"{path}: no such weight file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise PlicError(f"{path}: not a readable safetensors weight file ({exc})") from None


def stored_fingerprint(path: str | Path, meta: Optional[Dict[str, str]] = None) -> Optional[bytes]:
    """The fingerprint a weight file records in its metadata (None for older files); ``meta``: that
    metadata if already read (:func:`read_metadata`), so the header is not read twice."""
    value = (read_metadata(path) if meta is None else meta).get(FINGERPRINT_KEY)
    try:
        return bytes.fromhex(value) if value else None
    except ValueError:
        raise PlicError(f"{path}: malformed {FINGERPRINT_KEY} in its metadata") from None


def load_weights(path: str | Path, device: str = "cpu") -> torch.nn.Module:
    """Build the model named in the file's metadata and load its weights."""
    from safetensors import safe_open

    import plic.models  # noqa: F401  (registers the architectures)
    from plic.registry import MODELS, build_model

    path = Path(path)
    meta = read_metadata(path)  # a missing file fails here in one line
    name = meta.get("plic_model")
    if name not in MODELS:
        raise PlicError(f"{path}: not a plic weight file (model {name!r} unknown)")
    try:
        config = model_config(meta)
        with safe_open(str(path), framework="pt") as f:
            state = {_renamed_head(k, RENAMED): f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise PlicError(f"{path}: unreadable weight file ({exc})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model = build_model(name, **config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PlicError(f"{path}: weights do not fit model {name!r}: {first}") from None
    model.fingerprint = fingerprint(model.state_dict())
    recorded = meta.get(FINGERPRINT_KEY)
    if recorded and recorded != model.fingerprint.hex():
        raise PlicError(f"{path}: the weights do not match the fingerprint in the file's metadata (damaged file?)")
    model.weights_path = str(path)
    return model.to(device).eval()


def perceptual_variant(name: str) -> str:
    if name not in PERCEPTUAL:
        known = ", ".join(sorted(PERCEPTUAL)) or "none"
        raise PlicError(f"no perceptual variant of {name!r} ships with plic (models that have one: {known})")
    return PERCEPTUAL[name]


def shipped_names(model: str) -> List[str]:
    """The shipped names whose weights on this machine are of architecture ``model`` (a name and its
    architecture may differ: the default ``hyperprior`` is a ``hyperprior-checkerboard``)."""
    return [n for n in PRETRAINED if (p := shipped_path(n)) is not None and p.is_file()
            and read_metadata(p).get("plic_model") == model]


def find_shipped(model: str, fingerprint: bytes, device: str = "cpu",
                 names: Optional[List[str]] = None) -> Optional[str]:
    """The shipped weights of architecture ``model`` with this fingerprint, if any.

    A file's header names the architecture and fingerprints the weights; the
    decoder uses it to pick between shipped variants (MSE, perceptual).
    ``names``: :func:`shipped_names` of ``model`` where the caller has them already.
    """
    for name in shipped_names(model) if names is None else names:
        path = shipped_path(name)
        recorded = stored_fingerprint(path)
        if (recorded or load_model(name, device).fingerprint) == fingerprint:
            return name
    return None


def imported_dir() -> Path:
    """Where ``plic import`` keeps a copy of each imported model, named by fingerprint."""
    return cache_dir() / "models"


def find_imported(model: str, fingerprint: bytes) -> Optional[Path]:
    """The weights ``plic import`` kept with this fingerprint ($PLIC_CACHE/models), if any (headers only)."""
    folder = imported_dir()
    for path in sorted(folder.glob(f"{model}-{fingerprint.hex()}*.safetensors")) if folder.is_dir() else []:
        meta = read_metadata(path)
        if meta.get("plic_model") == model and stored_fingerprint(path) == fingerprint:
            return path
    return None


def imported_siblings(path: str | Path) -> List[Path]:
    """The copies ``plic import`` kept of the same source as the imported weight file ``path`` (same
    architecture, class, metric and channels), every quality, by lambda; empty when ``path`` was not imported."""
    def identity(meta):
        try:
            prov = json.loads(meta.get("plic_provenance", "null") or "null")
            config = model_config(meta)
        except ValueError:
            return None
        if not isinstance(prov, dict) or prov.get("lambda") is None:  # None: a variable-rate import, all rates in one
            return None
        key = (meta.get("plic_model"), prov.get("source"), prov.get("class"), prov.get("metric"),
               config.get("N"), config.get("M"))
        return key, float(prov["lambda"])

    mine = identity(read_metadata(Path(path)))
    folder = imported_dir()
    if mine is None or not folder.is_dir():
        return []
    found = []
    for p in folder.glob(f"{mine[0][0]}-*.safetensors"):
        try:
            theirs = identity(read_metadata(p))
        except PlicError:  # an unreadable file in the cache is not this model's sibling
            continue
        if theirs is not None and theirs[0] == mine[0]:
            found.append((theirs[1], p))
    return [p for _, p in sorted(found)]


def load_model(name_or_path: str, device: str = "cpu") -> torch.nn.Module:
    """A shipped model by registry name, or a weight file by path (cached)."""
    key = f"{name_or_path}@{device}"
    if key in _CACHE:
        return _CACHE[key]
    import plic.models  # noqa: F401  (registers the architectures)
    from plic.registry import MODELS

    path = shipped_path(name_or_path)
    if path is None:
        if name_or_path in MODELS:
            raise PlicError(
                f"model {name_or_path!r} has no shipped weights; pass a weight file "
                f"with --model-path (train one with 'plic train', or bring one with 'plic import')"
            )
        path = Path(name_or_path)
    elif not path.is_file():
        raise PlicError(f"shipped weights for {name_or_path!r} are missing from the installation ({path})")
    model = load_weights(path, device)
    _CACHE[key] = model
    return model
