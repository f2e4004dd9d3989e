"""Data-parallel training across processes (PyTorch DistributedDataParallel).

``torchrun --nproc_per_node G -m plic train ...`` starts G copies of
``plic train``; each reads its rank from the environment torchrun sets
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``), takes one GPU (``cuda:LOCAL_RANK``)
or, on CPU, joins with the gloo backend. Every rank samples its own crops and
lambdas (seeded from the run's seed and its rank); gradients are averaged by
DDP, so ``--batch-size`` is per process and the effective batch is G times it.
Only rank 0 writes checkpoints, logs and evaluations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The process group torchrun describes in the environment (one process if none)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), size)


def init(world: World, device: torch.device) -> None:
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=world.rank, world_size=world.size)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def mean_over_ranks(stats: Dict[str, float], world: World, device: torch.device) -> Dict[str, float]:
    """Average scalar statistics over the ranks (what the log shows is the global batch)."""
    if not world.distributed:
        return stats
    keys = sorted(stats)
    t = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / world.size for k, v in zip(keys, t.tolist(), strict=True)}


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The module to call for the training forward pass: DDP around ``model`` when distributed.

    The entropy bottleneck's quantiles are trained by the auxiliary loss
    alone, never reached by the rate-distortion backward pass; DDP is told to
    leave them out of its gradient reduction. Their updates stay identical on
    every rank because the auxiliary loss depends only on the quantiles and on
    parameters DDP keeps equal. CDF tables are buffers that only change when
    every rank refreshes them together, so no buffer is broadcast.
    """
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ignored = [n for n, _ in model.named_parameters() if n.endswith("quantiles")]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignored)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def replicas_agree(model: torch.nn.Module, world: World, device: torch.device) -> bool:
    """True when every rank holds the same parameters (a cheap checksum per rank)."""
    if not world.distributed:
        return True
    with torch.no_grad():
        s = torch.stack([p.detach().double().sum() for p in model.parameters()]).to(device)
    gathered = [torch.empty_like(s) for _ in range(world.size)]
    dist.all_gather(gathered, s)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])
