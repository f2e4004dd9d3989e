"""Training: loss, data, exact resume after an interruption."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from plic.errors import PlicError
from plic.train.data import RandomCrops
from plic.train.loss import RateDistortionLoss, bpp_per_item
from plic.train.trainer import TrainConfig, Trainer


def _noise_images(folder, shapes, seed):
    """Random-noise PNGs of the given (height, width) in ``folder``: 0.png, 1.png, ... and the last as small.png."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    names = [f"{i}.png" for i in range(len(shapes) - 1)] + ["small.png"]
    for name, (h, w) in zip(names, shapes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    d = _noise_images(tmp_path_factory.mktemp("imgs"), [(90, 100), (91, 100), (92, 100), (20, 20)], 0)
    (d / "notes.txt").write_text("not an image")
    return d


def test_bpp_is_bits_per_pixel():
    lik = {"y": torch.full((2, 1, 4, 4), 0.5)}
    assert bpp_per_item(lik, 16).tolist() == pytest.approx([1.0, 1.0])


def test_loss_uses_each_items_lambda():
    x = torch.zeros(2, 3, 8, 8)
    out = {"x_hat": torch.full_like(x, 0.1), "likelihoods": {"y": torch.ones(2, 1, 2, 2)}}
    loss = RateDistortionLoss("mse")(out, x, torch.tensor([1.0, 3.0]))
    assert float(loss["loss"]) == pytest.approx(2.0 * 255**2 * 0.01)


def test_crops_skip_small_and_unreadable_images(image_folder):
    data = RandomCrops([image_folder], crop=64)
    assert len(data) == 3 and data.skipped == 1
    batch = data.sample(4, torch.Generator().manual_seed(0))
    assert batch.shape == (4, 3, 64, 64) and 0 <= batch.min() and batch.max() <= 1
    with pytest.raises(PlicError, match="no usable training images"):
        RandomCrops([image_folder / "notes.txt"], crop=64)
    empty = image_folder / "empty"
    empty.mkdir(exist_ok=True)
    with pytest.raises(PlicError, match="no images found"):
        RandomCrops([empty], crop=64)


def _cfg(folder, steps):
    return TrainConfig(model="hyperprior", model_args={"N": 16, "M": 24}, lambda_min=0.002,
                       lambda_max=0.05, data=[str(folder)], steps=steps, batch_size=2, crop=64,
                       checkpoint_every=2, eval_every=0, lr_milestones=[0.5])


def test_resume_is_exact(image_folder, tmp_path):
    Trainer(_cfg(image_folder, 6), tmp_path / "a", log=lambda m: None).run(progress=False)
    # the same run, stopped after step 3 (checkpoint at 2) as a kill would, then resumed
    t = Trainer(_cfg(image_folder, 6), tmp_path / "b", log=lambda m: None)
    for _ in range(2):
        t.train_step()
    t.save_checkpoint()
    t.train_step()  # lost work: after the checkpoint, before the "kill"
    Trainer(_cfg(image_folder, 6), tmp_path / "b", log=lambda m: None).run(progress=False)
    ra = list(csv.DictReader(open(tmp_path / "a" / "train.csv")))
    rb = list(csv.DictReader(open(tmp_path / "b" / "train.csv")))
    assert [r["loss"] for r in ra][2:] == [r["loss"] for r in rb]
    from plic import zoo

    wa = zoo.load_weights(tmp_path / "a" / "model.safetensors").state_dict()
    wb = zoo.load_weights(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_another_configuration(image_folder, tmp_path):
    Trainer(_cfg(image_folder, 2), tmp_path / "r", log=lambda m: None).run(progress=False)
    cfg = _cfg(image_folder, 4)
    cfg.lambda_max = 0.09
    with pytest.raises(PlicError, match="lambda_max"):
        Trainer(cfg, tmp_path / "r", log=lambda m: None).run(progress=False)


def test_learning_rate_schedule():
    cfg = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, lr_milestones=[0.5], lr_gamma=0.1)
    assert cfg.lr_at(0) == pytest.approx(1e-4)
    assert cfg.lr_at(20) == pytest.approx(1e-3)
    assert cfg.lr_at(60) == pytest.approx(1e-4)
    assert math.isclose(cfg.lr_at(99), 1e-4)


def test_resume_a_run_that_started_from_init_weights(image_folder, tmp_path):
    # The model is first loaded from --init, then from the checkpoint, whose
    # CDF tables have another length once the quantiles have moved in training.
    from plic import zoo
    from plic.train.checkpoint import save_tensors

    Trainer(_cfg(image_folder, 2), tmp_path / "base", log=lambda m: None).run(progress=False)
    cfg = _cfg(image_folder, 4)
    cfg.init = str(tmp_path / "base" / "model.safetensors")
    run = tmp_path / "ft"
    t = Trainer(cfg, run, log=lambda m: None)
    t.train_step()
    t.step = 1
    t.save_checkpoint()
    ckpt = run / "checkpoint.safetensors"
    moved = zoo.load_weights(ckpt)
    with torch.no_grad():
        moved.latent_codec["hyper"].entropy_bottleneck.quantiles.mul_(4)
    moved.update(force=True)
    save_tensors(moved.state_dict(), ckpt, zoo.read_metadata(ckpt))
    name = "latent_codec.hyper.entropy_bottleneck._quantized_cdf"
    assert t.model.state_dict()[name].shape != moved.state_dict()[name].shape

    resumed = Trainer(cfg, run, log=lambda m: None)
    assert resumed.try_resume() and resumed.step == 1
    assert torch.equal(resumed.model.state_dict()[name], moved.state_dict()[name])
    resumed.run(progress=False)
    assert (run / "model.safetensors").exists()


def test_mixed_precision_keeps_the_entropy_model_in_float32(image_folder, tmp_path):
    cfg = _cfg(image_folder, 2)
    cfg.precision = "bf16"
    t = Trainer(cfg, tmp_path / "bf16", log=lambda m: None)
    x = t.data.sample(2, t.gen)
    out = t.model(x, torch.tensor([0.002, 0.05]), autocast_dtype=torch.bfloat16)
    assert out["x_hat"].dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in out["likelihoods"].values())
    t.run(progress=False)
    rows = list(csv.DictReader(open(tmp_path / "bf16" / "train.csv")))
    assert len(rows) == 2 and all(math.isfinite(float(r["loss"])) for r in rows)
    cfg.precision = "fp8"
    with pytest.raises(PlicError, match="unknown precision"):
        Trainer(cfg, tmp_path / "fp8", log=lambda m: None)


def _torchrun(image_folder, out, steps):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "plic", "train", "--lambda-range", "0.002", "0.05", "--data", str(image_folder),
           "--out", str(out), "--steps", str(steps), "--batch-size", "2", "--crop", "64",
           "--N", "16", "--M", "24", "--eval-every", "0", "--checkpoint-every", "2", "--threads", "1",
           "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-8000:]
    return p.stderr


def test_data_parallel_training_with_torchrun_on_cpu(image_folder, tmp_path):
    """Two gloo processes: replicas stay equal, and a resumed run equals an uninterrupted one."""
    from plic import zoo

    log = _torchrun(image_folder, tmp_path / "a", 4)
    assert "data-parallel over 2 processes (cpu): 4 crops per step" in log
    assert "2 replicas in agreement" in log
    _torchrun(image_folder, tmp_path / "b", 2)
    assert (tmp_path / "b" / "rng-rank1.safetensors").exists()
    assert "resuming" in _torchrun(image_folder, tmp_path / "b", 4)
    wa = zoo.load_weights(tmp_path / "a" / "model.safetensors").state_dict()
    wb = zoo.load_weights(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = list(csv.DictReader(open(tmp_path / "b" / "train.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]


def test_training_curves_are_plotted(image_folder, tmp_path):
    from PIL import Image

    from plic.train.curves import plot_runs, smooth

    assert smooth([1, 2, 3, 4], 2).tolist() == [1, 1.5, 2.5, 3.5]  # trailing, shorter at the start
    Trainer(_cfg(image_folder, 3), tmp_path / "s1", log=lambda m: None).run(progress=False)
    Trainer(_cfg(image_folder, 2), tmp_path / "s2", log=lambda m: None).run(progress=False)
    png = plot_runs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "c.png", window=2)
    assert Image.open(png).size[0] > 1000
    with pytest.raises(PlicError, match="no train.csv"):
        plot_runs([tmp_path / "empty"], tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()


def test_prefetching_draws_the_same_batches_and_resumes_exactly(image_folder, tmp_path):
    plain = Trainer(_cfg(image_folder, 6), tmp_path / "plain", log=lambda m: None)
    cfg = _cfg(image_folder, 6)
    cfg.prefetch = 3
    ahead = Trainer(cfg, tmp_path / "ahead", log=lambda m: None)
    for _ in range(3):
        (xa, la), (xb, lb) = plain.next_batch(), ahead.next_batch()
        assert torch.equal(xa, xb) and torch.equal(la, lb)
    # the thread is batches ahead, but the saved state is after the third batch
    assert torch.equal(ahead.gen.get_state(), plain.gen.get_state())
    ahead.save_checkpoint()
    ahead.close()
    resumed = Trainer(cfg, tmp_path / "ahead", log=lambda m: None)
    assert resumed.try_resume()
    xa, la = plain.next_batch()
    xb, lb = resumed.next_batch()
    assert torch.equal(xa, xb) and torch.equal(la, lb)
    resumed.close()


@pytest.fixture(scope="module")
def large_images(tmp_path_factory):
    return _noise_images(tmp_path_factory.mktemp("large"), [(130, 140), (131, 140), (70, 90)], 1)


def test_crop_stages_reshape_the_batches_and_resume_exactly(large_images, tmp_path):
    cfg = _cfg(large_images, 6)
    cfg.crop_stages = [[0.5, 128, 1]]  # the last half on larger crops, one at a time
    assert [cfg.shape_at(s) for s in range(6)] == [(64, 2)] * 3 + [(128, 1)] * 3
    plain = Trainer(cfg, tmp_path / "plain", log=lambda m: None)
    ahead_cfg = _cfg(large_images, 6)
    ahead_cfg.crop_stages, ahead_cfg.prefetch = cfg.crop_stages, 3
    ahead = Trainer(ahead_cfg, tmp_path / "ahead", log=lambda m: None)
    for step in range(6):
        (xa, la), (xb, lb) = plain.next_batch(), ahead.next_batch()
        crop, batch = cfg.shape_at(step)
        assert xa.shape == (batch, 3, crop, crop) and la.shape == (batch,)
        assert torch.equal(xa, xb) and torch.equal(la, lb)  # the thread draws each step's shape too
        plain.step += 1
        ahead.step += 1
    ahead.close()
    # killed after the switch (checkpoint at step 4, step 5 lost), then resumed: the same run
    Trainer(cfg, tmp_path / "a", log=lambda m: None).run(progress=False)
    t = Trainer(cfg, tmp_path / "b", log=lambda m: None)
    for _ in range(4):
        t.train_step()
    t.save_checkpoint()
    t.train_step()
    Trainer(cfg, tmp_path / "b", log=lambda m: None).run(progress=False)
    ra = list(csv.DictReader(open(tmp_path / "a" / "train.csv")))
    rb = list(csv.DictReader(open(tmp_path / "b" / "train.csv")))
    assert [r["loss"] for r in ra][4:] == [r["loss"] for r in rb]


def test_crop_stages_are_checked(large_images, tmp_path):
    cfg = _cfg(large_images, 4)
    cfg.crop_stages = [[0.5, 192, 1]]  # every image here is under 192 pixels high
    with pytest.raises(PlicError, match="no training image is that large"):
        Trainer(cfg, tmp_path / "big", log=lambda m: None)
    cfg.crop_stages = [[0.5, 96, 1]]
    with pytest.raises(PlicError, match="multiple of 64"):
        Trainer(cfg, tmp_path / "odd", log=lambda m: None)
    cfg.crop_stages = [[0.75, 128, 1], [0.5, 64, 2]]
    with pytest.raises(PlicError, match="increasing fractions"):
        Trainer(cfg, tmp_path / "order", log=lambda m: None)
    cfg.crop_stages = [[0.5, 128, 1]]
    Trainer(cfg, tmp_path / "ok", log=lambda m: None).run(progress=False)
    cfg.crop_stages = [[0.75, 128, 1]]  # a resumed run keeps its schedule
    with pytest.raises(PlicError, match="crop_stages"):
        Trainer(cfg, tmp_path / "ok", log=lambda m: None).run(progress=False)
    data = RandomCrops([large_images], crop=64)
    assert len(data) == 3 and len(data.usable(131)) == 1
    assert data.sample(2, torch.Generator().manual_seed(0), 131).shape == (2, 3, 131, 131)
    with pytest.raises(ValueError, match="at least 64"):
        data.sample(1, torch.Generator(), 32)


def test_a_run_written_before_newer_settings_existed_still_resumes(image_folder, tmp_path):
    import json

    Trainer(_cfg(image_folder, 2), tmp_path / "old", log=lambda m: None).run(progress=False)
    state_path = tmp_path / "old" / "state.json"
    state = json.loads(state_path.read_text())
    for key in ("recipe", "recipe_args", "precision", "prefetch", "deterministic"):
        state["config"].pop(key)  # as written by an earlier plic
    state_path.write_text(json.dumps(state))
    t = Trainer(_cfg(image_folder, 3), tmp_path / "old", log=lambda m: None)
    assert t.try_resume() and t.step == 2


def test_a_run_written_before_the_post_filter_rename_resumes(image_folder, tmp_path):
    """state.json of older runs names the post-filter "refiner" in model_args: the run still resumes."""
    import json

    cfg = _cfg(image_folder, 2)
    cfg.model_args["post_filter"] = 4
    Trainer(cfg, tmp_path / "r", log=lambda m: None).run(progress=False)
    state_path = tmp_path / "r" / "state.json"
    state = json.loads(state_path.read_text())
    state["config"]["model_args"]["refiner"] = state["config"]["model_args"].pop("post_filter")
    state_path.write_text(json.dumps(state))
    again = _cfg(image_folder, 3)
    again.model_args["post_filter"] = 4
    t = Trainer(again, tmp_path / "r", log=lambda m: None)
    assert t.try_resume() and t.step == 2


def test_rd_train_only_freezes_every_other_parameter(image_folder, tmp_path):
    """--recipe-arg train_only=latent_codec: the entropy model learns, the transforms stay as they were."""
    from plic.recipes import make_trainer

    cfg = _cfg(image_folder, 2)
    cfg.recipe_args = {"train_only": "latent_codec"}
    t = make_trainer(cfg, tmp_path / "entropy", log=lambda m: None)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.train_step()
    t.train_step()
    after = t.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("latent_codec.") for k in changed)
    assert any(k.startswith("latent_codec.hyper.h_s") for k in changed)
    with pytest.raises(PlicError, match="has no setting 'trains'"):
        make_trainer(TrainConfig(recipe_args={"trains": "g_s"}, data=[str(image_folder)]), tmp_path / "bad")
