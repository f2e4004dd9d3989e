"""Optimizer state through safetensors: tensors by name, the rest as JSON.

Checkpoints never pickle (a resumed run must not unpickle files), so an
optimizer's ``state_dict`` is split into tensors and plain settings.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch


def optimizer_to_tensors(opt: Optional[torch.optim.Optimizer], prefix: str):
    """An optimizer's state as named tensors (for safetensors) and JSON-able settings."""
    if opt is None:  # nothing of this kind is trained
        return {}, {"param_groups": [], "scalars": {}}
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(opt: Optional[torch.optim.Optimizer], prefix: str, tensors, meta) -> None:
    """The inverse of :func:`optimizer_to_tensors`."""
    if opt is None:
        return
    state: Dict[int, Dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
