"""``plic train``: rate-distortion training of a registered model."""

from __future__ import annotations

import click

from plic.errors import PlicError


def _device(name: str) -> str:
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PlicError("--device cuda asked for, but no CUDA device is available")
    return name


@click.command("train")
@click.option("--model", "model_name", help="registered architecture [default: --init's, else hyperprior]")
@click.option("--lambda", "lmbda", type=float, help="train a fixed-rate model at this lambda")
@click.option("--lambda-range", nargs=2, type=float, help="train one variable-rate (QVRF) model over [MIN MAX]")
@click.option("--recipe", type=click.Choice(["rd", "proxiqa", "po-elic", "st-lic", "grow-latent"]), default="rd",
              show_default=True,
              help="rd: rate-distortion (train_only=PREFIXES: train those parameters only, e.g. latent_codec; "
                   "balance_rates=1: every rate of a --lambda-range run weighs alike, 0.5 halfway); "
                   "proxiqa: optimise for --metric through a learned proxy (ProxIQA); "
                   "po-elic: perceptual finetuning under a rate target (PO-ELIC; train_only as rd's); st-lic: post-filter and "
                   "semi-decoupled perceptual objective, variable rate (ST-LIC); grow-latent: rate-distortion "
                   "after scripts/widen_latent.py, the new channels' rate phased in (free_from=M_OLD)")
@click.option("--target-bpp", type=click.FloatRange(min=0, min_open=True), help="po-elic: rate target")
@click.option("--recipe-arg", "recipe_kv", multiple=True, metavar="KEY=VALUE",
              help="further recipe settings, e.g. l_adv=0.01 lambda_above=8 (repeatable)")
@click.option("--analyze-gradients", type=click.IntRange(min=1), metavar="N",
              help="print each loss term's share of the gradient norm on each module over N batches, then exit")
@click.option("--metric", type=click.Choice(["mse", "ms-ssim", "vmaf", "ssim"]), default=None,
              help="rd: mse (default) or ms-ssim distortion; proxiqa: vmaf (default), ssim or ms-ssim")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="proxiqa: weight of the proxy term against MSE")
@click.option("--proxy-lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--proxy-warmup", type=click.IntRange(min=0), default=200, show_default=True,
              help="proxiqa: proxy-only steps before the codec learns from it")
@click.option("--data", multiple=True, required=True, type=click.Path(), help="training image folder (repeatable)")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="run folder (resumed if it exists)")
@click.option("--steps", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--crop", type=click.IntRange(min=64), default=128, show_default=True)
@click.option("--crop-stage", "crop_stages", type=(click.FloatRange(0, 1, min_open=True), click.IntRange(min=64),
                                                  click.IntRange(min=1)), multiple=True, metavar="FROM CROP BATCH",
              help="from this fraction of --steps on, crops of CROP pixels in batches of BATCH (repeatable) "
                   "[default for a new model: 0.95, twice --crop, --batch-size: a model that only saw small crops "
                   "codes whole images worse; --crop-stage 1 C B: no stage]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="peak learning rate [default: 5e-4 for a new model, 1e-4 with --init; a resumed run's own]")
@click.option("--lr-milestones", default="0.85", show_default=True, help="fractions of --steps where lr drops")
@click.option("--lr-gamma", type=float, default=0.1, show_default=True)
@click.option("--warmup-steps", type=click.IntRange(min=0),
              help="linear warmup to --lr [default: 50 for a new model, 0 with --init; a resumed run's own]")
@click.option("--clip-grad", type=float, default=1.0, show_default=True)
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="decay of an exponential moving average of the weights, evaluated and written as "
                   "model.safetensors (e.g. 0.999); 0: the last weights")
@click.option("--shortcut/--no-shortcut", default=None,
              help="hyperprior: a linear wavelet path beside both transforms (AuxT), for faster convergence "
                   "[default: on for a new hyperprior; --init's and a resumed run's own setting otherwise]")
@click.option("--rate-film/--no-rate-film", default=None,
              help="hyperprior: the synthesis told the rate (a FiLM of the QVRF step after each GDN); starts "
                   "as no change, so it can be added to an --init; a new hyperprior needs --no-shortcut with it "
                   "[default: --init's and a resumed run's own, else off]")
@click.option("--N", "n_channels", type=int,
              help="transform channels [default: N=64/M=96 for a new hyperprior when neither is given, "
                   "else the model's]")
@click.option("--M", "m_channels", type=int,
              help="latent channels [default: see --N]")
@click.option("--groups", help="elic: channel groups of the latent, comma-separated, summing to --M "
                               "[default: 16,16,32,64,M-128]")
@click.option("--init", type=click.Path(dir_okay=False), help="start from these weights")
@click.option("--eval-data", type=click.Path(), default="../shared/datasets/kodak", show_default=True)
@click.option("--eval-every", type=click.IntRange(min=0), default=2000, show_default=True, help="0: never")
@click.option("--eval-images", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True,
              help="cpu, cuda, cuda:1 ... (under torchrun, cuda means one GPU per process)")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: mixed precision for the transforms (the entropy model stays float32)")
@click.option("--deterministic", is_flag=True, help="deterministic kernels (slower on GPU)")
@click.option("--prefetch", type=click.IntRange(min=0),
              help="batches drawn ahead on a background thread [default: 2 on GPU, 0 on CPU]")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch")
@click.option("--no-progress", is_flag=True, help="no progress bar (logs only)")
def command(**o):
    """Train a codec with the rate-distortion loss (MSE or MS-SSIM).

    A fixed-rate model: --lambda 0.0067. One variable-rate model for all
    rates: --lambda-range 0.0018 0.0932. Killing and rerunning the same
    command resumes exactly where the last checkpoint left off.

    Several GPUs (or CPU processes): torchrun --nproc_per_node 4 -m plic
    train ... --device cuda. --batch-size is per process.
    """
    import torch

    if o["threads"]:
        torch.set_num_threads(o["threads"])
    _train(_config(o), o["out"], _device(o["device"]), o["analyze_gradients"], not o["no_progress"])


def _config(o):
    """The run's TrainConfig from the command's options, every setting checked before a folder exists."""
    import os

    from plic.train.recipe import TrainOptions
    from plic.train.trainer import TrainConfig

    lo, hi = _lambdas(o["recipe"], o["lmbda"], o["lambda_range"], o["init"], o["target_bpp"], o["data"], o["crop"])
    proxy = {k: o[k] for k in ("alpha", "proxy_lr", "proxy_warmup")} if o["recipe"] == "proxiqa" else None
    recipe_args, metric = _recipe_args(o["recipe"], o["recipe_kv"], TrainOptions(
        metric=o["metric"], crop=o["crop"], variable_rate=bool(o["lambda_range"]), target_bpp=o["target_bpp"],
        init=o["init"], extra=proxy))
    try:
        milestones = [float(v) for v in o["lr_milestones"].split(",") if v.strip()]
    except ValueError:
        raise PlicError("--lr-milestones takes comma-separated fractions, e.g. 0.8,0.95") from None
    model_args = {k: v for k, v in (("N", o["n_channels"]), ("M", o["m_channels"])) if v}
    if o["groups"]:
        model_args["groups"] = _groups(o["groups"], o["m_channels"])
    resumed = _resumed_config(o["out"])
    # the --init file's header, read once: its model name, shortcut and rate film decide below
    init_meta = _init_metadata(o["init"])
    if o["init"] and not o["model_name"] and not init_meta["model"]:
        raise PlicError(f"--init {o['init']}: not a plic weight file (no model name in its metadata)")
    # Defaults measured at equal CPU time (benchmarks/rd_per_cpu_hour): a new model learns fastest at a
    # higher peak rate after a short warmup; a finetune (--init) keeps CompressAI's gentler 1e-4. A
    # resumed run keeps what it was started with.
    for key, new_model, finetune in (("lr", 5e-4, 1e-4), ("warmup_steps", 50, 0)):
        if o[key] is None:
            o[key] = resumed.get(key, finetune) if resumed is not None else finetune if o["init"] else new_model
    shortcut = o["shortcut"]
    if shortcut is None and not o["init"]:
        # on for a new hyperprior; a resumed run keeps its architecture
        shortcut = ((resumed.get("model_args") or {}).get("shortcut", False) if resumed is not None
                    else (o["model_name"] or "hyperprior") in MEAN_SCALE_HYPERPRIORS)
    if shortcut is not None and o["init"]:
        has = bool(init_meta["config"].get("shortcut", False))
        if has != shortcut:
            raise PlicError(f"--init {o['init']} {'has' if has else 'has no'} wavelet shortcut: it is part of the "
                            f"architecture, trained from the start (drop --{'no-' if not shortcut else ''}shortcut)")
    if shortcut:
        model_args["shortcut"] = True
    eval_every = o["eval_every"]
    if eval_every and not os.path.exists(o["eval_data"]):
        click.echo(f"plic: evaluation folder {o['eval_data']} not found; periodic evaluation is off", err=True)
        eval_every = 0
    prefetch = (2 if o["device"].startswith("cuda") else 0) if o["prefetch"] is None else o["prefetch"]
    same = ("steps", "batch_size", "crop", "lr", "lr_gamma", "warmup_steps", "clip_grad", "ema", "seed", "checkpoint_every",
            "eval_data", "eval_images", "init", "precision", "deterministic", "recipe")
    model = o["model_name"] or (init_meta["model"] if o["init"] else "hyperprior")
    if model in MEAN_SCALE_HYPERPRIORS and not o["init"] and not (o["n_channels"] or o["m_channels"]):
        # the shipped width, N=64/M=96, not the constructor's 128/192: at equal CPU time it gave 7.8 % lower
        # R+lambda*D (benchmarks/rd_per_cpu_hour, "Width at equal time"). A resumed run keeps its own width.
        width = {"N": 64, "M": 96} if resumed is None else resumed.get("model_args") or {}
        model_args.update({k: width[k] for k in ("N", "M") if k in width})
    if o["groups"] and model not in ("elic", "elic-chandelier"):
        raise PlicError(f"--groups is an option of the elic models, not of {model!r}")
    if o["shortcut"] and model not in MEAN_SCALE_HYPERPRIORS:
        raise PlicError(f"--shortcut is an option of the hyperprior model, not of {model!r}")
    _rate_film(o, model, model_args, resumed, init_meta["config"])
    return TrainConfig(model=model, model_args=model_args, lambda_min=lo, lambda_max=hi, metric=metric,
                       data=list(o["data"]), lr_milestones=milestones, eval_every=eval_every, recipe_args=recipe_args,
                       prefetch=prefetch, crop_stages=_crop_stages(o, resumed), **{k: o[k] for k in same})


def _rate_film(o, model, model_args, resumed, init: dict) -> None:
    """--rate-film into ``model_args``: it may be added to an --init (it starts as no change), not removed.
    ``init``: the --init file's model configuration ({} without one)."""
    film = o["rate_film"]
    if film is None and resumed is not None:
        film = bool((resumed.get("model_args") or {}).get("rate_film", False))
    if film is False and init.get("rate_film", False):
        raise PlicError(f"--init {o['init']} has a rate-conditioned synthesis: it is part of its decoder "
                        + ("(drop --no-rate-film)" if o["rate_film"] is False else f"and the run in {o['out']} has none"))
    if film:
        if model not in MEAN_SCALE_HYPERPRIORS:
            raise PlicError(f"--rate-film is an option of the hyperprior models, not of {model!r}")
        if init.get("shortcut", False):
            raise PlicError(f"--init {o['init']} has the wavelet shortcut, which --rate-film is not built with")
        if model_args.get("shortcut"):
            raise PlicError("--rate-film with the wavelet shortcut is not built (a new hyperprior: add --no-shortcut)")
        model_args["rate_film"] = True


#: the mean-scale hyperprior and its checkerboard variant: the same transforms, so the same defaults and --shortcut
MEAN_SCALE_HYPERPRIORS = ("hyperprior", "hyperprior-checkerboard")


def _groups(text: str, m_channels) -> list:
    """ELIC's channel groups from "16,16,64": positive, and summing to --M, which they need."""
    try:
        groups = [int(v) for v in text.split(",")]
    except ValueError:
        raise PlicError(f"--groups takes comma-separated channel counts, e.g. 16,16,64, not {text!r}") from None
    if not m_channels:
        raise PlicError("--groups needs --M: the groups split the M latent channels")
    if any(g <= 0 for g in groups) or sum(groups) != m_channels:
        raise PlicError(f"--groups {text}: the groups must be positive and sum to --M {m_channels}")
    return groups


def _crop_stages(o, resumed) -> list:
    """The crop schedule: as given; a resumed run's own; else, for a new model, its last 5 % of steps on
    crops twice as large, in batches as large (four times the pixels), where the data has such images.

    Measured (benchmarks/rd_per_cpu_hour, whole_vs_tiles): a model trained only on 128x128 crops codes
    a whole Kodak image for 2-5 % more bits than its 128x128 tiles coded apart; finetuning the default
    on 256x256 crops took 5-8 % off its Kodak BD-rate. Batches of 2 such crops (the same pixels as 8
    of 128) lost the top of the curve, where too few high lambdas reach a step; batches of 8 did not.
    """
    if o["crop_stages"]:
        return [[f, c, b] for f, c, b in o["crop_stages"]]
    if resumed is not None:
        return [list(st) for st in resumed.get("crop_stages", [])]
    if o["init"]:
        return []
    crop = 2 * o["crop"]
    return [[0.95, crop, o["batch_size"]]] if _some_image_at_least(o["data"], crop) else []


def _some_image_at_least(roots, side: int) -> bool:
    """Whether any training image is at least ``side`` pixels on its short side (headers only)."""
    from PIL import Image

    from plic.train.data import find_images

    for path in find_images(list(roots)):
        try:
            with Image.open(path) as im:
                if min(im.size) >= side:
                    return True
        except Exception:
            continue
    return False


def _resumed_config(out):
    """The configuration of the run already in ``out`` (None: no run there yet)."""
    import json
    from pathlib import Path

    state = Path(out) / "state.json"
    if not state.is_file():
        return None
    try:
        return dict(json.loads(state.read_text())["config"])
    except (ValueError, KeyError, TypeError):
        return None  # the trainer reports a damaged run folder in its own words


def _init_metadata(init) -> dict:
    """What the run needs of an --init weight file's header: its registry name ("model", None if it
    records none) and model configuration ("config"); empty without --init. An unreadable file fails
    in one line."""
    if not init:
        return {"model": None, "config": {}}
    from plic import zoo

    meta = zoo.read_metadata(init)  # a missing or unreadable file fails here in one line
    try:
        config = zoo.model_config(meta)
    except (ValueError, TypeError, AttributeError):
        raise PlicError(f"--init {init}: its model configuration (metadata plic_config) is damaged") from None
    return {"model": meta.get("plic_model") or None, "config": config}


def _lambdas(recipe, lmbda, lambda_range, init, target_bpp, data, crop) -> tuple:
    """The run's lambda range; po-elic at one rate may name it by the init model's bpp instead."""
    if recipe == "po-elic" and lmbda is None and not lambda_range:
        if not (init and target_bpp):
            raise PlicError("--recipe po-elic needs --init and --target-bpp (or --lambda)")
        lmbda = _lambda_for_rate(init, data, target_bpp, crop)
        click.echo(f"lambda {lmbda:.5g}: the init model's rate point nearest {target_bpp:g} bpp", err=True)
    if (lmbda is None) == (not lambda_range):
        raise PlicError("give exactly one of --lambda or --lambda-range")
    lo, hi = (lmbda, lmbda) if lmbda is not None else sorted(lambda_range)
    if lo <= 0:
        raise PlicError("lambda must be positive")
    return lo, hi


def _train(cfg, out, device, analyze_gradients, progress) -> None:
    import os
    import sys

    from plic.recipes import make_trainer
    from plic.train import distributed

    try:
        trainer = make_trainer(cfg, out, device=device, log=lambda m: click.echo(m, err=True))
        trainer.log(f"{len(trainer.data)} training images ({trainer.data.skipped} skipped); "
                    f"lambda in [{cfg.lambda_min:g}, {cfg.lambda_max:g}]")
        if analyze_gradients:
            from plic.train import gradients

            norms = gradients.analyze(trainer, analyze_gradients)
            click.echo(gradients.report(norms, getattr(trainer.recipe, "weights", {})))
            return
        trainer.run(progress=progress)
        if trainer.world.distributed:
            # Every file is written and the ranks have met at a final barrier. Tearing
            # gloo down can still abort one rank ("terminate called without an active
            # exception", seen under load), failing a finished run: leave without
            # running C++ destructors instead.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    finally:
        distributed.shutdown()


def _recipe_args(recipe: str, recipe_kv, options) -> tuple:
    """The recipe's settings (its own defaults from the shared options, then --recipe-arg), checked before
    the run folder exists; and the trainer's pixel distortion."""
    from plic.recipes import check_args, recipe_class

    args, metric = recipe_class(recipe).from_options(options)
    for kv in recipe_kv:
        key, sep, value = kv.partition("=")
        if not sep:
            raise PlicError(f"--recipe-arg takes KEY=VALUE, not {kv!r}")
        try:
            args[key.strip()] = float(value)
        except ValueError:
            args[key.strip()] = value.strip()
    if recipe == "rd" and "metric" in args:
        raise PlicError("the rd recipe's distortion is --metric, not --recipe-arg metric")
    check_args(recipe, args)
    return args, metric


def _lambda_for_rate(init: str, data, target_bpp: float, crop: int) -> float:
    """The init model's lambda whose estimated rate on 16 training crops is ``target_bpp`` (bisection)."""

    import torch

    from plic import zoo
    from plic.search import bisect, midpoint
    from plic.train.data import RandomCrops
    from plic.train.loss import bpp_per_item

    model = zoo.load_weights(init)
    if not model.variable_rate:  # a fixed-rate init (an imported CompressAI model): its own lambda
        return model.lambda_max
    x = RandomCrops(list(data), crop=crop, max_images=64).sample(16, torch.Generator().manual_seed(0))
    lo, hi = model.lambda_min, model.lambda_max

    def rate(lam):
        with torch.no_grad():
            out = model(x, lam)
        return float(bpp_per_item(out["likelihoods"], x.shape[-2] * x.shape[-1]).mean())

    if not rate(lo) <= target_bpp <= rate(hi):
        raise PlicError(f"{target_bpp:g} bpp is outside the init model's range on these crops "
                        f"({rate(lo):.3f} .. {rate(hi):.3f} bpp)")
    _, lo, hi = bisect(rate, lo, hi, target_bpp, 20, "log")
    return midpoint(lo, hi, "log")


__all__ = ["command"]
