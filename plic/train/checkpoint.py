"""A training run's checkpoint on disk: what is saved, and how it is read back for an exact resume.

Three files in the run folder, each replaced atomically:

- ``checkpoint.safetensors``: the model (a plic weight file, loadable with ``--init``);
- ``optimizer.safetensors``: optimizer moments, random-generator states and the recipe's tensors;
- ``state.json``: the step, the configuration, optimizer and recipe settings, Python's random state.

Ranks other than the first of a data-parallel run keep their own generator
states in ``rng-rank<N>.safetensors``.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any, Dict

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from plic.errors import PlicError
from plic.files import atomic_write_bytes

MODEL, OPTIMIZER, STATE = "checkpoint.safetensors", "optimizer.safetensors", "state.json"


def save_tensors(tensors: Dict[str, torch.Tensor], path: Path, metadata=None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    tmp.replace(path)


def load_tensors(path: Path) -> Dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def write_state(folder: Path, state: Dict[str, Any]) -> None:
    """``state.json``, with Python's random state added (its tuples kept as base64 JSON)."""
    state = {**state, "python_random": base64.b64encode(json.dumps(random.getstate(), default=list).encode()).decode()}
    atomic_write_bytes(folder / STATE, json.dumps(state, indent=1).encode())


def read_state(folder: Path) -> Dict[str, Any] | None:
    path = folder / STATE
    return json.loads(path.read_text()) if path.exists() else None


def restore_python_random(state: Dict[str, Any]) -> None:
    py_state = json.loads(base64.b64decode(state["python_random"]))
    random.setstate((py_state[0], tuple(py_state[1]), py_state[2]))


def rank_rng_file(folder: Path, rank: int) -> Path:
    return folder / f"rng-rank{rank}.safetensors"


def load_rank_rng(folder: Path, rank: int) -> Dict[str, torch.Tensor]:
    path = rank_rng_file(folder, rank)
    if not path.exists():
        raise PlicError(f"{path} is missing: resume with as many processes as the run had")
    return load_tensors(path)
