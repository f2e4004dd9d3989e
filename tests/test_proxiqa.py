"""ProxIQA: the proxy network, metric targets, and the alternating recipe with exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plic.errors import PlicError
from plic.iqa.proxy import ProxIQANet, build_proxy
from plic.iqa.targets import get_target, ssim_target
from plic.recipes import make_trainer
from plic.train.trainer import TrainConfig


def test_proxiqa_network_is_the_papers():
    net = build_proxy("proxiqa", scale=100.0)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (6, 16, (5, 5)), (16, 32, (5, 5)), (32, 64, (5, 5))]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 3
    assert isinstance(net.head, torch.nn.Linear) and net.head.out_features == 1
    assert net(torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)).shape == (4,)
    with pytest.raises(PlicError, match="unknown proxy"):
        build_proxy("nope")


def test_difference_proxy_describes_the_same_functions():
    """Weights of the paper's stacked proxy map exactly onto the difference-fed one."""
    torch.manual_seed(0)
    stacked, diff = build_proxy("proxiqa"), build_proxy("proxiqa-diff")
    weights = stacked.state_dict()
    w = weights["features.0.weight"]
    # W_r r + W_d d == (W_r + W_d) r + W_d (d - r)
    weights["features.0.weight"] = torch.cat([w[:, :3] + w[:, 3:], w[:, 3:]], dim=1)
    diff.load_state_dict(weights)
    r, d = torch.rand(3, 3, 40, 48), torch.rand(3, 3, 40, 48)
    torch.testing.assert_close(diff(r, d), stacked(r, d), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(build_proxy("proxiqa-diff")(r, d), stacked(r, d))


def _subtle_pairs(image, n, gen, c=32):
    """Crops of a real photo, lightly blurred and noised: errors of about 1 % of the pixel values."""
    ys = torch.randint(0, image.shape[1] - c, (n,), generator=gen).tolist()
    xs = torch.randint(0, image.shape[2] - c, (n,), generator=gen).tolist()
    x = torch.stack([image[:, a:a + c, b:b + c] for a, b in zip(ys, xs)])
    mix = torch.rand(n, 1, 1, 1, generator=gen)
    d = mix * torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False) + (1 - mix) * x
    d = d + torch.rand(n, 1, 1, 1, generator=gen) * 0.02 * torch.randn(x.shape, generator=gen)
    return x, (d.clamp(0, 1) * 255).round() / 255


def test_default_proxy_learns_subtle_errors(sample_image):
    """The paper's stacked proxy reaches about 0.1 here in the same steps (see the module docstring)."""
    from PIL import Image

    image = torch.from_numpy(np.array(Image.open(sample_image).convert("RGB"))).permute(2, 0, 1).float() / 255
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = build_proxy("proxiqa-diff")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(300):
        x, d = _subtle_pairs(image, 32, gen)
        loss = torch.nn.functional.mse_loss(net(x, d), ssim_target(x, d))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, d = _subtle_pairs(image, 200, gen)
    with torch.no_grad():
        pred = net(x, d).numpy()
    assert np.corrcoef(pred, ssim_target(x, d).numpy())[0, 1] > 0.5


def test_proxy_learns_a_metric():
    """On held-out pairs the trained proxy's scores follow the true SSIM."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    def pairs(n):
        x = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=gen), size=32, mode="bilinear")
        sigma = torch.rand(n, 1, 1, 1, generator=gen) * 0.3
        return x, (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)

    net = ProxIQANet(scale=1.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):
        x, d = pairs(32)
        loss = torch.nn.functional.mse_loss(net(x, d), ssim_target(x, d))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, d = pairs(200)
    with torch.no_grad():
        pred = net(x, d).numpy()
    assert np.corrcoef(pred, ssim_target(x, d).numpy())[0, 1] > 0.9


def test_targets_are_checked_up_front():
    with pytest.raises(PlicError, match="unknown proxy target"):
        get_target("psnr-hvs")


@pytest.fixture(scope="module")
def crops(tmp_path_factory, sample_image):
    from PIL import Image

    d = tmp_path_factory.mktemp("pq")
    im = Image.open(sample_image).convert("RGB")
    for i in range(3):
        im.crop((i * 40, i * 20, i * 40 + 200, i * 20 + 160)).save(d / f"{i}.png")
    return d


def _cfg(folder, steps):
    return TrainConfig(model="hyperprior", model_args={"N": 16, "M": 24}, lambda_min=0.002, lambda_max=0.05,
                       data=[str(folder)], steps=steps, batch_size=2, crop=64, checkpoint_every=2, eval_every=0,
                       recipe="proxiqa", recipe_args={"metric": "ssim", "proxy_warmup": 2})


def test_recipe_logs_true_and_proxy_scores_and_resumes_exactly(crops, tmp_path):
    import csv

    from plic import zoo

    make_trainer(_cfg(crops, 4), tmp_path / "a", log=lambda m: None).run(progress=False)
    make_trainer(_cfg(crops, 2), tmp_path / "b", log=lambda m: None).run(progress=False)
    make_trainer(_cfg(crops, 4), tmp_path / "b", log=lambda m: None).run(progress=False)
    ra = list(csv.DictReader(open(tmp_path / "a" / "train.csv")))
    rb = list(csv.DictReader(open(tmp_path / "b" / "train.csv")))
    assert {"true", "proxy", "proxy_loss"} <= set(ra[0])
    assert [r["proxy"] for r in ra] == [r["proxy"] for r in rb]
    wa = zoo.load_weights(tmp_path / "a" / "model.safetensors").state_dict()
    wb = zoo.load_weights(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_another_proxy(crops, tmp_path):
    make_trainer(_cfg(crops, 2), tmp_path / "r", log=lambda m: None).run(progress=False)
    cfg = _cfg(crops, 3)
    cfg.recipe_args = {**cfg.recipe_args, "proxy": "proxiqa"}
    with pytest.raises(PlicError, match="resume it with --recipe-arg proxy=proxiqa-diff"):
        make_trainer(cfg, tmp_path / "r", log=lambda m: None).run(progress=False)


def test_proxy_warm_up_sees_fresh_lambdas_every_time(crops, tmp_path):
    trainer = make_trainer(_cfg(crops, 1), tmp_path / "w", log=lambda m: None)
    seen = []
    forward = trainer.model.forward

    def recording(x, lmbda, **kw):
        seen.append(torch.as_tensor(lmbda).clone())
        return forward(x, lmbda, **kw)

    trainer.model.forward = recording
    trainer.net = trainer.model
    trainer.train_step()
    # the step's own pass and two warm-up passes, each with its own lambdas
    assert len(seen) == 3
    assert not torch.equal(seen[1], seen[2]) and not torch.equal(seen[0], seen[1])
