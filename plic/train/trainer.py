"""Rate-distortion training with exact resume.

A run folder holds:

* ``checkpoint.safetensors``: model weights (float32, CDF tables fresh);
* ``optimizer.safetensors``: both optimizers' tensors;
* ``state.json``: step, configuration, RNG states, optimizer hyper-parameters;
* ``train.csv`` / ``eval.csv``: training curves and Kodak evaluations with real
  bitstreams;
* ``model.safetensors``: the final weights, loadable with ``--model-path``;
* ``rng-rank<R>.safetensors``: the random state of each further rank of a
  data-parallel run (see :mod:`plic.train.distributed`).

Every file is written to a temporary name and renamed, so a kill at any
moment leaves the previous checkpoint intact; restarting the same command
continues from it and produces the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from plic import bitstream, zoo
from plic.codec import Codec, psnr
from plic.errors import PlicError
from plic.files import atomic_write_bytes
from plic.image_io import quantize_rgb, read_image
from plic.models.base import load_state_resizing
from plic.registry import build_model
from plic.train import checkpoint, distributed, run_log
from plic.train.data import Prefetcher, RandomCrops, find_images
from plic.train.distributed import World
from plic.train.ema import WeightAverage
from plic.train.optim_state import optimizer_from_tensors, optimizer_to_tensors
from plic.train.recipe import RateDistortion, Recipe
from plic.units import psnr_from_mse


@dataclass
class TrainConfig:
    model: str = "hyperprior"
    model_args: Dict = field(default_factory=dict)
    lambda_min: float = 0.0067
    lambda_max: float = 0.0067
    metric: str = "mse"
    data: List[str] = field(default_factory=list)
    steps: int = 100_000
    batch_size: int = 8
    crop: int = 128
    # later stages of a crop schedule: [from_fraction, crop, batch_size], the fraction of --steps where
    # each takes over (a model trained only on small crops can fail on whole images; see shape_at)
    crop_stages: List[List] = field(default_factory=list)
    lr: float = 1e-4
    aux_lr: float = 1e-3
    lr_milestones: List[float] = field(default_factory=lambda: [0.85])
    lr_gamma: float = 0.1
    warmup_steps: int = 0
    clip_grad: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    eval_every: int = 2000
    eval_data: Optional[str] = None
    eval_images: int = 4
    init: Optional[str] = None
    precision: str = "fp32"  # or "bf16": mixed precision for the transforms
    prefetch: int = 0  # batches drawn ahead on a background thread (0: in the step)
    ema: float = 0.0  # decay of the weight average written as model.safetensors; 0: none (the last weights)
    recipe: str = "rd"  # see plic.recipes
    recipe_args: Dict = field(default_factory=dict)
    deterministic: bool = False

    def lr_at(self, step: int) -> float:
        lr = self.lr
        if self.warmup_steps and step < self.warmup_steps:
            lr *= (step + 1) / self.warmup_steps
        for m in self.lr_milestones:
            if step >= m * self.steps:
                lr *= self.lr_gamma
        return lr

    def shape_at(self, step: int) -> Tuple[int, int]:
        """(crop, batch size) of the batch of ``step``.

        Why a schedule: a hyperprior trained only on 128x128 crops sees a hyper-latent of 2x2, every
        cell of it at the border; with the wavelet shortcut at peak lr the hyper-synthesis learned to
        rely on that (20k steps: 0.02 bpp on Kodak's 128x128 tiles, 0.7 bpp on the whole image).
        A late stage on large crops fixes it in a few hundred steps (benchmarks/rd_per_cpu_hour).
        """
        shape = (self.crop, self.batch_size)
        for start, crop, batch in self.crop_stages:
            if step >= start * self.steps:
                shape = (int(crop), int(batch))
        return shape

    # fields that must not change when a run is resumed
    IMMUTABLE = ("model", "model_args", "lambda_min", "lambda_max", "metric", "batch_size", "crop", "seed", "recipe",
                 "ema", "crop_stages")


#: --precision -> autocast dtype of the transforms
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


class Trainer:
    def __init__(self, cfg: TrainConfig, out: str | Path, device: str = "cpu", log=print,
                 world: Optional[World] = None, recipe: Optional[Recipe] = None):
        """``recipe``: what a step optimises, named ``cfg.recipe``; the plain ``rd`` one is built here,
        any other is handed in (:func:`plic.recipes.make_trainer` builds it from ``cfg``)."""
        if cfg.precision not in PRECISIONS:
            raise PlicError(f"unknown precision {cfg.precision!r} (known: {', '.join(PRECISIONS)})")
        self.cfg = cfg
        self.out = Path(out)
        self.world = distributed.world_from_env() if world is None else world
        device = torch.device(device)
        if self.world.distributed and device.type == "cuda":
            device = torch.device("cuda", self.world.local_rank)  # one GPU per process
        self.device = device
        self.log = log if self.world.main else (lambda msg: None)
        distributed.init(self.world, self.device)
        # the same seed on every rank gives every replica the same initial
        # weights; the data generator below differs per rank
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels
        if cfg.recipe != "rd" and self.world.distributed:
            raise PlicError(f"the {cfg.recipe} recipe trains in one process (no torchrun)")
        if recipe is None:
            if cfg.recipe != "rd":
                raise ValueError(f"hand the trainer its {cfg.recipe!r} recipe (plic.recipes.make_trainer)")
            recipe = RateDistortion(cfg.metric, **cfg.recipe_args)
        elif getattr(recipe, "name", None) != cfg.recipe:
            raise ValueError(f"the recipe handed in is {recipe.name!r}, the configuration names {cfg.recipe!r}")
        self.recipe = recipe
        cfg.model_args.update(self.recipe.model_args())
        if cfg.init:
            self._inherit_architecture(cfg.init)
        args = dict(cfg.model_args, lambda_min=cfg.lambda_min, lambda_max=cfg.lambda_max)
        self.model = build_model(cfg.model, **args).to(self.device)
        if cfg.init:
            self._load_init(cfg.init)
        # a recipe may freeze part of the model (e.g. train a post-filter behind a
        # fixed codec); frozen parameters build no graph and get no optimizer
        for n, p in self.model.named_parameters():
            p.requires_grad_(self.recipe.trains(n))
        trained = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not trained:
            raise PlicError(f"the {cfg.recipe} recipe leaves no parameter of the model to train")
        main = [p for n, p in trained if not n.endswith("quantiles")]
        aux = [p for n, p in trained if n.endswith("quantiles")]
        self.opt = torch.optim.Adam(main, lr=cfg.lr)
        self.ema = WeightAverage(self.model, cfg.ema) if cfg.ema > 0 else None
        self.aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr) if aux else None
        self.net = distributed.wrap(self.model, self.world, self.device)
        # rank 0 keeps the plain seed, so a one-process run is unchanged
        self.gen = torch.Generator().manual_seed(cfg.seed + 1_000_003 * self.world.rank)
        self.step = 0
        starts = [float(st[0]) for st in cfg.crop_stages]
        if any(not 0 < f <= 1 for f in starts) or starts != sorted(starts):
            raise PlicError("crop stages start at increasing fractions of --steps, each in (0, 1]")
        crops = [cfg.crop] + [int(st[1]) for st in cfg.crop_stages]
        for crop in crops:
            if crop % self.model.stride:
                raise PlicError(f"crops of {crop} pixels: this model needs a multiple of {self.model.stride}")
        self.data = RandomCrops(cfg.data, crop=min(crops))
        for crop in crops[1:]:
            if not self.data.usable(crop):
                raise PlicError(f"a crop stage asks for {crop}x{crop} crops: no training image is that large")
        self._prefetcher: Optional[Prefetcher] = None
        self.recipe.setup(self)
        self.eval_files = []
        if cfg.eval_data and cfg.eval_every > 0:
            self.eval_files = find_images([cfg.eval_data])[: cfg.eval_images]
        self.out.mkdir(parents=True, exist_ok=True)  # only once every setting has been checked

    # ----------------------------------------------------------- lambdas
    def sample_lambdas(self, n: int, gen: Optional[torch.Generator] = None) -> torch.Tensor:
        lo, hi = math.log(self.cfg.lambda_min), math.log(self.cfg.lambda_max)
        u = torch.rand(n, generator=self.gen if gen is None else gen)
        return torch.exp(lo + (hi - lo) * u)

    def draw_batch(self, gen: torch.Generator, step: Optional[int] = None):
        """Crops and their lambdas, both from ``gen`` (one stream: exact resume), shaped for ``step``
        (default: the current one)."""
        crop, batch = self.cfg.shape_at(self.step if step is None else step)
        x = self.data.sample(batch, gen, crop)
        return x, self.sample_lambdas(x.shape[0], gen)

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None

    def next_batch(self):
        if self.cfg.prefetch <= 0:
            return self.draw_batch(self.gen)
        if self._prefetcher is None:
            # the thread draws from a copy; self.gen stays at the consumed position
            gen = torch.Generator().set_state(self.gen.get_state())
            steps = itertools.count(self.step)  # the thread draws the batches of the next steps in order
            self._prefetcher = Prefetcher(lambda g: self.draw_batch(g, next(steps)), gen, self.cfg.prefetch)
        batch = self._prefetcher.next()
        self.gen.set_state(self._prefetcher.state)
        return batch

    # ------------------------------------------------------- checkpoints
    def _inherit_architecture(self, path: str) -> None:
        """Take what ``--init`` fixes (channels, the QVRF step reference) from its file.

        The lambda range may change (finetuning onto a wider range), but the
        step reference stays the init model's, so every lambda it was trained
        for keeps its quantization step.
        """
        meta = zoo.read_metadata(path)
        if meta.get("plic_model") != self.cfg.model:
            raise PlicError(f"--init {path} holds a {meta.get('plic_model')!r} model, not {self.cfg.model!r}")
        config = zoo.model_config(meta)
        config.setdefault("lambda_ref", config.get("lambda_max"))
        for key, value in config.items():
            if key not in ("lambda_min", "lambda_max"):
                self.cfg.model_args.setdefault(key, value)

    def _load_init(self, path: str) -> None:
        init = zoo.load_weights(path)
        missing, unexpected = self.model.load_state_dict(init.state_dict(), strict=False)
        self.log(f"initialised from {path} (missing {len(missing)}, unexpected {len(unexpected)})")

    def _rng_state(self) -> Dict[str, torch.Tensor]:
        rng = {"rng.torch": torch.get_rng_state(), "rng.data": self.gen.get_state()}
        if self.device.type == "cuda":
            rng["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _set_rng_state(self, tensors: Dict[str, torch.Tensor]) -> None:
        self.close()  # batches drawn ahead from the old state are void
        torch.set_rng_state(tensors["rng.torch"])
        self.gen.set_state(tensors["rng.data"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)

    def save_checkpoint(self) -> None:
        # every rank refreshes its CDF tables, so the replicas stay identical
        self.model.update(force=True)
        if not self.world.main:
            checkpoint.save_tensors(self._rng_state(), checkpoint.rank_rng_file(self.out, self.world.rank))
            distributed.barrier(self.world)
            return
        t_main, m_main = optimizer_to_tensors(self.opt, "main")
        t_aux, m_aux = optimizer_to_tensors(self.aux_opt, "aux")
        checkpoint.save_tensors(self.model.state_dict(), self.out / checkpoint.MODEL,
                                {"plic_model": self.model.registry_name,
                                 "plic_config": json.dumps(self.model.config())})
        t_recipe, m_recipe = self.recipe.state()
        t_ema = self.ema.state() if self.ema is not None else {}
        checkpoint.save_tensors({**t_main, **t_aux, **self._rng_state(), **t_recipe, **t_ema},
                                self.out / checkpoint.OPTIMIZER)
        checkpoint.write_state(self.out, {"step": self.step, "recipe": m_recipe, "config": asdict(self.cfg),
                                          "optim": {"main": m_main, "aux": m_aux}})
        distributed.barrier(self.world)

    def try_resume(self) -> bool:
        state = checkpoint.read_state(self.out)
        if state is None:
            return False
        old = state["config"]
        # runs written before a rename (zoo.RENAMED) resume under today's names
        for key in ("model_args", "recipe_args"):
            if isinstance(old.get(key), dict):
                old[key] = zoo.current_names(old[key])
        defaults = asdict(TrainConfig())
        for key in TrainConfig.IMMUTABLE:
            # a field added after the run was written takes its default value
            if old.get(key, defaults.get(key)) != asdict(self.cfg).get(key):
                raise PlicError(
                    f"{self.out} holds a run with {key}={old.get(key)!r}; this command asks for "
                    f"{asdict(self.cfg).get(key)!r} (use another --out)"
                )
        # the tables' length at the checkpoint may differ from the --init model's
        load_state_resizing(self.model, zoo.load_weights(self.out / checkpoint.MODEL).state_dict())
        tensors = checkpoint.load_tensors(self.out / checkpoint.OPTIMIZER)
        optimizer_from_tensors(self.opt, "main", tensors, state["optim"]["main"])
        optimizer_from_tensors(self.aux_opt, "aux", tensors, state["optim"]["aux"])
        self.recipe.load_state(tensors, state.get("recipe", {}))
        if self.ema is not None:
            self.ema.load_state(tensors)
        self._set_rng_state(tensors if self.world.main else checkpoint.load_rank_rng(self.out, self.world.rank))
        checkpoint.restore_python_random(state)
        self.step = int(state["step"])
        return True

    def averaged(self):
        """A block in which the model holds the weight average (the live weights without --ema)."""
        return self.ema.swapped_in(self.model) if self.ema is not None else contextlib.nullcontext()

    # ------------------------------------------------------------ steps
    def train_step(self) -> Dict[str, float]:
        self.model.train()
        x, lmbda = self.next_batch()
        x = x.to(self.device, non_blocking=True)
        lmbda = lmbda.to(self.device)
        for g in self.opt.param_groups:
            g["lr"] = self.cfg.lr_at(self.step)
        out = self.net(x, lmbda, autocast_dtype=PRECISIONS[self.cfg.precision])
        losses = self.recipe.codec_loss(out, x, lmbda)
        penalty = self.model.regularization()
        if penalty is not None:
            losses = {**losses, "loss": losses["loss"] + penalty,
                      "terms": {**losses.get("terms", {}), "regularization": penalty.detach()}}
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if self.cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.opt.param_groups for p in g["params"]], self.cfg.clip_grad)
        self.opt.step()
        aux = self.model.aux_loss()
        if self.aux_opt is not None:
            self.aux_opt.zero_grad(set_to_none=True)
            aux.backward()
            self.aux_opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        extra = self.recipe.after_step(out, x, lmbda)
        self.step += 1
        stats = distributed.mean_over_ranks(
            {"loss": float(losses["loss"]), "bpp": float(losses["bpp"]), "mse": float(losses["mse"]),
             "aux": float(aux), **extra,
             **{f"term_{k}": float(v) for k, v in losses.get("terms", {}).items()}}, self.world, self.device)
        return {
            "loss": stats["loss"], "bpp": stats["bpp"], "mse": stats["mse"],
            "psnr": psnr_from_mse(max(stats["mse"], 1e-12)), "aux": stats["aux"],
            "lr": self.opt.param_groups[0]["lr"],
            **{k: v for k, v in stats.items() if k in extra or k.startswith("term_")},
        }

    @torch.no_grad()
    def evaluate(self) -> List[Dict[str, float]]:
        """Real bitstreams on the evaluation images at the ends and middle of the range."""
        if not self.eval_files:
            return []
        self.model.eval()
        self.model.update(force=True)
        self.model.fingerprint = zoo.fingerprint(self.model.state_dict())
        codec = Codec(self.model, device=str(self.device), exact=False)  # speed over last-bit exactness
        lo, hi = self.cfg.lambda_min, self.cfg.lambda_max
        lambdas = sorted({lo, math.sqrt(lo * hi), hi})
        rows = []
        for lam in lambdas:
            bpps, psnrs = [], []
            for path in self.eval_files:
                img = read_image(path)
                enc = codec.encode(img, lmbda=lam)
                rec = codec.decode_file(bitstream.parse(enc.data))
                bpps.append(enc.bpp)
                psnrs.append(psnr(quantize_rgb(rec).cpu(), img.rgb))
            rows.append({"step": self.step, "lambda": lam, "bpp": float(np.mean(bpps)),
                         "psnr": float(np.mean(psnrs)), "images": len(self.eval_files)})
        return rows

    def run(self, progress: bool = True) -> None:
        from tqdm import tqdm

        main = self.world.main
        resumed = self.try_resume()
        if resumed:
            self.log(f"resuming {self.out} at step {self.step}")
            if main:
                run_log.truncate_after(self.out / "train.csv", self.step)
                run_log.truncate_after(self.out / "eval.csv", self.step)
        if main:
            atomic_write_bytes(self.out / "config.json", json.dumps(asdict(self.cfg), indent=1).encode())
        if self.world.distributed:
            self.log(f"data-parallel over {self.world.size} processes ({self.device.type}): "
                     f"{self.cfg.batch_size * self.world.size} crops per step")
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not (progress and main),
                   dynamic_ncols=True, desc="train")
        pending: List[Dict] = []
        t0 = time.time()
        while self.step < self.cfg.steps:
            stats = self.train_step()
            if not all(math.isfinite(v) for v in stats.values()):
                raise PlicError(f"training diverged at step {self.step} (loss {stats['loss']}); lower --lr")
            stats["step"] = self.step
            stats["seconds"] = round(time.time() - t0, 2)
            pending.append(stats)
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", bpp=f"{stats['bpp']:.3f}", psnr=f"{stats['psnr']:.2f}")
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                if main:
                    run_log.append_rows(self.out / "train.csv", pending)
                pending = []
                self.save_checkpoint()
            if self.cfg.eval_every > 0 and (self.step % self.cfg.eval_every == 0 or self.step == self.cfg.steps):
                if main:
                    with self.averaged():
                        rows = self.evaluate()
                    run_log.append_rows(self.out / "eval.csv", rows)
                    for r in rows:
                        bar.write(f"step {r['step']}: lambda {r['lambda']:.4g} -> {r['bpp']:.3f} bpp, "
                                  f"{r['psnr']:.2f} dB (real bitstreams, {r['images']} images)")
                distributed.barrier(self.world)
        bar.close()
        self.close()
        if main:
            run_log.append_rows(self.out / "train.csv", pending)
        self.save_checkpoint()
        if not distributed.replicas_agree(self.model, self.world, self.device):
            raise PlicError("data-parallel replicas ended with different weights (please report this)")
        if main:
            training = {"steps": self.step, "data": self.cfg.data, "processes": self.world.size,
                        "device": self.device.type, "precision": self.cfg.precision}
            with self.averaged():
                self.model.update(force=True)  # the CDF tables of the weights written
                zoo.save_weights(self.model, self.out / "model.safetensors",
                                 metadata={"plic_training": json.dumps({**training, "ema": self.cfg.ema})})
            self.log(f"wrote {self.out / 'model.safetensors'}" +
                     (f" ({self.world.size} replicas in agreement)" if self.world.distributed else ""))
        distributed.barrier(self.world)  # leave together: a rank tearing down gloo early can abort the others
