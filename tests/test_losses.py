"""Loss library: pixel, adversarial, discriminator, rate target, patched style, Wasserstein."""

from __future__ import annotations

import math

import pytest
import torch

from plic.losses.adversarial import ADVERSARIAL
from plic.losses.discriminator import ConditionalDiscriminator
from plic.losses.pixel import charbonnier, l1, l2, lowpass_mse, periodic_mse
from plic.losses.rate_target import rate_weight


def test_charbonnier_is_a_smooth_l1():
    x = torch.zeros(1, 3, 8, 8)
    y = torch.full_like(x, 0.5).requires_grad_(True)
    assert float(charbonnier(y, x)) == pytest.approx(float(l1(y, x)), rel=1e-6)
    same = x.clone().requires_grad_(True)
    loss = charbonnier(same, x)
    loss.backward()
    assert float(loss) == pytest.approx(1e-6) and torch.isfinite(same.grad).all()
    assert float(l2(y, x)) == pytest.approx(0.25)


def test_lowpass_mse_sees_a_colour_cast_and_not_texture():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 48)
    cast = x.clone()
    cast[:, 2] += 4 / 255  # four levels more blue everywhere
    # texture changed without moving any 16x16 block's mean: a +-0.1 checkerboard
    sign = (torch.arange(64)[:, None] + torch.arange(48)[None, :]) % 2 * 2 - 1
    texture = x + 0.1 * sign
    assert float(lowpass_mse(cast, x)) == pytest.approx((4 / 255) ** 2 / 3, rel=1e-4)
    assert float(lowpass_mse(texture, x)) < 1e-12 < float(l2(texture, x))
    # a 40x40 image has 3x3 blocks, the last row and column of them 8 pixels wide: they count, as their own means
    small = x[..., :40, :40]
    edge = small.clone()
    edge[..., 32:, :] += 0.01
    edge[..., :32, 32:] += 0.01
    assert float(lowpass_mse(edge, small)) == pytest.approx(5 / 9 * 1e-4, rel=1e-3)


def test_periodic_mse_sees_a_repeated_pattern_and_little_else():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 128, 136)  # 8 columns of 16-pixel cells, and 8 pixels that are no whole cell
    dots = torch.zeros(16, 16)
    dots[::4, ::4] = 0.02  # a dot every 4 pixels, repeated in every 16x16 cell: a faint dot grid
    grid = x + dots.repeat(8, 9)[:, :136]
    expected = float(((dots - dots.mean()) ** 2).mean())
    assert float(periodic_mse(grid, x)) == pytest.approx(expected, rel=1e-4)
    # a colour cast and the pixels past the last whole cell are not its business
    cast = grid + 4 / 255
    cast[..., 128:] += 0.5
    assert float(periodic_mse(cast, x)) == pytest.approx(expected, rel=1e-4)
    # noise of the same mean square as the grid: averaged over 64 cells, 64 times smaller (within sampling)
    noise = x + torch.randn_like(x) * expected ** 0.5
    assert float(periodic_mse(noise, x)) == pytest.approx(expected / 64 * 255 / 256, rel=0.15)
    with pytest.raises(ValueError, match="16x16"):
        periodic_mse(x[..., :8, :], x[..., :8, :])


def test_adversarial_losses_at_their_reference_points():
    d_hinge, g_hinge = ADVERSARIAL["hinge"]
    assert float(d_hinge(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0  # a confident, correct D
    assert float(g_hinge(torch.full((4,), 3.0))) == -3
    d_bce, g_bce = ADVERSARIAL["bce"]
    zero = torch.zeros(4)
    # the equilibrium ST-LIC plots: D cannot tell, each term is log 2
    assert float(d_bce(zero, zero)) == pytest.approx(2 * math.log(2))
    assert float(g_bce(zero)) == pytest.approx(math.log(2))
    d_ls, g_ls = ADVERSARIAL["ls"]
    assert float(d_ls(torch.ones(4), torch.zeros(4))) == 0 and float(g_ls(torch.ones(4))) == 0


@pytest.mark.parametrize("sn", [True, False])
def test_conditional_discriminator(sn):
    d = ConditionalDiscriminator(latent_channels=24, spectral_norm=sn)
    x = torch.rand(2, 3, 64, 96)
    y_hat = torch.randn(2, 24, 4, 6, requires_grad=True)
    logits = d(x, y_hat)
    assert logits.shape == (2, 1, 4, 6)
    logits.sum().backward()
    assert y_hat.grad is None  # the condition does not train the codec through D
    has_sn = any(hasattr(m, "weight_orig") for m in d.modules())
    assert has_sn == sn


def test_conditional_discriminator_learns_despite_a_large_latent():
    # a variable-rate codec's latent reaches values near 100: scaled raw into the
    # condition, it swamped the image and the logit gap stayed near zero
    torch.manual_seed(0)
    d = ConditionalDiscriminator(latent_channels=8, channels=(16, 32, 32, 32), spectral_norm=True)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    d_loss = ADVERSARIAL["hinge"][0]

    def batch():
        real = torch.rand(4, 3, 32, 32)
        fake = torch.nn.functional.avg_pool2d(real, 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
        return real, fake, 100 * torch.randn(4, 8, 2, 2)

    for _ in range(60):
        real, fake, y = batch()
        loss = d_loss(d(real, y), d(fake, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        real, fake, y = batch()
        assert float((d(real, y) - d(fake, y)).mean()) > 0.5


def test_rate_target_multiplexer():
    w = rate_weight(torch.tensor([0.10, 0.20, 0.15]), 0.15, lambda_above=8.0, lambda_below=0.5)
    assert w.tolist() == [0.5, 8.0, 0.5]


def _texture(seed, freq):
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, freq * math.pi, 64)
    stripes = 0.5 + 0.4 * torch.sin(t)[None, :].expand(64, 64)
    return (stripes + 0.05 * torch.randn(64, 64, generator=g)).clamp(0, 1).expand(3, 64, 64)


def test_patched_style_loss_sees_where_texture_is():
    """Two textures swapped between the halves: a global Gram matrix barely notices, patches do."""
    from plic.losses.style import PatchedStyleLoss, patch_gram

    a = torch.cat([_texture(0, 8), _texture(1, 30)], dim=2)[None]
    b = torch.cat([_texture(2, 30), _texture(3, 8)], dim=2)[None]
    loss = PatchedStyleLoss(patch=16)
    assert float(loss(a, a)) == 0
    patched = float(loss(b, a))
    feats_a, feats_b = loss.vgg(a), loss.vgg(b)
    whole = sum(float((patch_gram(fa, 10**6) - patch_gram(fb, 10**6)).abs().mean())
                for fa, fb in zip(feats_a, feats_b, strict=True)) / len(feats_a)
    assert patched > 3 * whole


def test_wasserstein_distortion_spans_fidelity_and_texture():
    from plic.losses.wasserstein import WassersteinDistortion, wasserstein_map

    x = torch.rand(1, 3, 32, 32)
    y = torch.rand(1, 3, 32, 32)
    # sigma 0 on the image plane is the squared difference
    m = wasserstein_map(x, y, torch.zeros(1, 1, 32, 32), levels=5)
    assert torch.allclose(m, ((x - y) ** 2).mean(1, keepdim=True))
    wd = WassersteinDistortion(levels=5)
    a, b = _texture(0, 8)[None], _texture(5, 8)[None]  # same texture, another noise draw
    b = torch.roll(b, shifts=3, dims=-1)  # and shifted
    assert float(wd(a, a, 0.0)) == 0
    assert float(wd(b, a, 4.0)) < 0.5 * float(wd(b, a, 0.0))  # large pooling: only statistics must match


def test_feature_discriminator_tells_blurred_maps_apart():
    # VGG maps of a blurred image lose their fine variation; the heads must see that within
    # a few dozen steps (the point of reading pretrained features), whatever the latent's scale
    from plic.losses.discriminator import FeatureDiscriminator

    torch.manual_seed(0)
    d = FeatureDiscriminator(latent_channels=8, feature_channels=(16, 32), width=16)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    d_loss = ADVERSARIAL["hinge"][0]

    def batch():
        real = [torch.rand(4, 16, 16, 16), torch.rand(4, 32, 8, 8)]
        fake = [torch.nn.functional.avg_pool2d(f, 3, 1, 1) for f in real]
        return real, fake, 100 * torch.randn(4, 8, 2, 2)

    for _ in range(60):
        real, fake, y = batch()
        s = FeatureDiscriminator.scales(real)
        loss = d_loss(d(real, y, s), d(fake, y, s))
        opt.zero_grad()
        loss.backward()
        opt.step()
    real, fake, y = batch()
    y.requires_grad_(True)
    fake = [f.requires_grad_(True) for f in fake]
    s = FeatureDiscriminator.scales(real)
    logits = d(fake, y, s)
    assert logits.shape == (4, 2, 8, 8)  # one map per stage, on the coarsest stage's grid
    assert float((d(real, y, s) - logits).mean()) > 0.5
    logits.sum().backward()
    assert y.grad is None and all(f.grad is not None for f in fake)  # the codec learns through the maps only


def _po_cfg(folder, init, steps, **recipe_args):
    from plic.train.trainer import TrainConfig

    return TrainConfig(model="hyperprior", lambda_min=0.01, lambda_max=0.01, data=[str(folder)], steps=steps,
                       batch_size=2, crop=64, checkpoint_every=2, eval_every=0, init=str(init),
                       recipe="po-elic", recipe_args={"target_bpp": 0.1, **recipe_args})


@pytest.fixture(scope="module")
def po_setup(tmp_path_factory, tiny_model_path, sample_image):
    from PIL import Image

    d = tmp_path_factory.mktemp("po")
    im = Image.open(sample_image).convert("RGB")
    for i in range(2):
        im.crop((i * 60, 0, i * 60 + 160, 160)).save(d / f"{i}.png")
    return d, tiny_model_path


@pytest.mark.parametrize("discriminator", ["pixels", "vgg16"])
def test_po_elic_recipe_trains_alternately_and_resumes_exactly(po_setup, tmp_path, discriminator):
    import csv

    from plic import zoo
    from plic.recipes import make_trainer

    folder, init = po_setup
    # with a discriminator warm-up: a resumed run must not warm up again
    args = {"d_warmup": 2, "discriminator": discriminator}
    make_trainer(_po_cfg(folder, init, 4, **args), tmp_path / "a", log=lambda m: None).run(progress=False)
    make_trainer(_po_cfg(folder, init, 2, **args), tmp_path / "b", log=lambda m: None).run(progress=False)
    make_trainer(_po_cfg(folder, init, 4, **args), tmp_path / "b", log=lambda m: None).run(progress=False)
    ra = list(csv.DictReader(open(tmp_path / "a" / "train.csv")))
    rb = list(csv.DictReader(open(tmp_path / "b" / "train.csv")))
    assert {"d_loss", "g_loss", "term_lpips", "term_style", "term_adversarial", "term_rate"} <= set(ra[0])
    assert [r["d_loss"] for r in ra] == [r["d_loss"] for r in rb]
    wa = zoo.load_weights(tmp_path / "a" / "model.safetensors").state_dict()
    wb = zoo.load_weights(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_po_elic_discriminator_warm_up_trains_only_the_discriminator(po_setup, tmp_path):
    from plic.recipes import make_trainer

    folder, init = po_setup
    t = make_trainer(_po_cfg(folder, init, 1, d_warmup=3), tmp_path / "w", log=lambda m: None)
    codec = [p.detach().clone() for p in t.model.parameters()]
    disc = [p.detach().clone() for p in t.recipe.adversary.disc.parameters()]
    t.recipe.warm_up_discriminator()
    assert t.recipe.warmed == 3
    assert all(torch.equal(a, b) for a, b in zip(codec, t.model.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(disc, t.recipe.adversary.disc.parameters()))
    assert t.recipe.adversary.opt.state_dict()["state"][0]["step"] == 3
    t.recipe.warm_up_discriminator()  # done once only
    assert t.recipe.adversary.opt.state_dict()["state"][0]["step"] == 3


def test_po_elic_train_only_keeps_the_synthesis_and_trains_the_encoder(po_setup, tmp_path):
    """train_only=g_a,latent_codec: files from the finetune decode with the decoder users already have."""
    from plic.recipes import make_trainer

    folder, init = po_setup
    t = make_trainer(_po_cfg(folder, init, 2, train_only="g_a,latent_codec", l_adv=0), tmp_path / "enc",
                     log=lambda m: None)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.train_step()
    changed = {k for k, v in t.model.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("g_a.") for k in changed) and any(k.startswith("latent_codec.") for k in changed)
    assert not any(k.startswith("g_s.") for k in changed)


def test_po_elic_cheap_variant_uses_lpips_alex_and_no_discriminator(po_setup, tmp_path):
    import csv

    from plic.errors import PlicError
    from plic.losses.distortion import distortion_fn
    from plic.recipes import make_trainer

    folder, init = po_setup
    cheap = {"lpips_net": "alexnet", "l_style": 0, "l_adv": 0}
    t = make_trainer(_po_cfg(folder, init, 2, **cheap), tmp_path / "c", log=lambda m: None)
    assert t.recipe.adversary is None
    x, x_hat = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    terms = t.recipe.terms({"x_hat": x_hat, "y_hat": None}, x)
    assert set(terms) == {"lpips", "charbonnier"}
    assert torch.allclose(terms["lpips"], distortion_fn("lpips-alex")(x_hat, x).mean())
    t.run(progress=False)
    rows = list(csv.DictReader(open(tmp_path / "c" / "train.csv")))
    assert len(rows) == 2 and "d_loss" not in rows[0] and "term_style" not in rows[0]
    # resuming the finished run finds its state (no discriminator tensors to look for)
    make_trainer(_po_cfg(folder, init, 3, **cheap), tmp_path / "c", log=lambda m: None).run(progress=False)
    assert len(list(csv.DictReader(open(tmp_path / "c" / "train.csv")))) == 3
    with pytest.raises(PlicError, match="l_style=0"):
        make_trainer(_po_cfg(folder, init, 1, lpips_net="alexnet"), tmp_path / "d", log=lambda m: None)
    with pytest.raises(PlicError, match="needs lpips_net=vgg16"):
        make_trainer(_po_cfg(folder, init, 1, discriminator="vgg16", **cheap), tmp_path / "e", log=lambda m: None)
    with pytest.raises(PlicError, match="pixels or vgg16"):
        make_trainer(_po_cfg(folder, init, 1, discriminator="alex"), tmp_path / "f", log=lambda m: None)
    # the colour anchor and the grid penalty are terms of their own when asked for, weighted like the others
    t = make_trainer(_po_cfg(folder, init, 1, l_lowpass=500, l_grid=300, **cheap), tmp_path / "g", log=lambda m: None)
    terms = t.recipe.terms({"x_hat": x_hat, "y_hat": None}, x)
    assert set(terms) == {"lpips", "charbonnier", "lowpass", "grid"}
    assert torch.allclose(terms["lowpass"], 500 * lowpass_mse(x_hat, x))
    assert torch.allclose(terms["grid"], 300 * periodic_mse(x_hat, x))


def test_gradient_analysis_splits_terms_by_module(po_setup, tmp_path):
    from plic.recipes import make_trainer
    from plic.train import gradients

    folder, init = po_setup
    t = make_trainer(_po_cfg(folder, init, 1), tmp_path / "g", log=lambda m: None)
    norms = gradients.analyze(t, 1)
    assert set(norms) == {"rate", "lpips", "charbonnier", "adversarial", "style"}
    assert norms["rate"]["g_s"] == 0 and norms["rate"]["latent_codec"] > 0  # the rate never reaches the decoder
    assert norms["charbonnier"]["g_s"] > 0 and norms["charbonnier"]["g_a"] > 0
    text = gradients.report(norms, t.recipe.weights)
    assert "suggested coefficients" in text and "lpips=" in text


def test_unet_refiner_starts_as_identity_and_learns():
    from plic.models.post_filter import UNetPostFilter

    torch.manual_seed(0)
    r = UNetPostFilter(channels=8)
    x = torch.rand(2, 3, 30, 45)  # any size: padded inside, cropped back
    assert torch.equal(r(x), x)
    target = (x * 0.8 + 0.1).clamp(0, 1)
    opt = torch.optim.Adam(r.parameters(), lr=3e-3)
    first = float(((r(x) - target) ** 2).mean())
    for _ in range(200):
        loss = ((r(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.3 * first


def test_st_lic_recipe_trains_codec_and_refiner_and_resumes(po_setup, tmp_path):
    import csv

    from plic import zoo
    from plic.recipes import make_trainer
    from plic.train.trainer import TrainConfig

    folder, init = po_setup

    def cfg(steps):
        return TrainConfig(model="hyperprior", lambda_min=0.002, lambda_max=0.05, data=[str(folder)], steps=steps,
                           batch_size=2, crop=64, checkpoint_every=2, eval_every=0, init=str(init),
                           recipe="st-lic", recipe_args={"post_filter": 8})

    make_trainer(cfg(4), tmp_path / "a", log=lambda m: None).run(progress=False)
    make_trainer(cfg(2), tmp_path / "b", log=lambda m: None).run(progress=False)
    make_trainer(cfg(4), tmp_path / "b", log=lambda m: None).run(progress=False)
    ra = list(csv.DictReader(open(tmp_path / "a" / "train.csv")))
    rb = list(csv.DictReader(open(tmp_path / "b" / "train.csv")))
    assert {"d_loss", "g_loss", "term_lpips", "term_wasserstein", "term_adversarial"} <= set(ra[0])
    assert [r["g_loss"] for r in ra] == [r["g_loss"] for r in rb]
    model = zoo.load_weights(tmp_path / "a" / "model.safetensors")
    assert model.post_filter is not None and model.config()["post_filter"] == 8
    wb = zoo.load_weights(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(v, wb[k]) for k, v in model.state_dict().items())


def test_st_lic_with_a_frozen_codec_trains_the_refiner_alone_and_resumes(po_setup, tmp_path):
    from plic import zoo
    from plic.recipes import make_trainer
    from plic.train.trainer import TrainConfig

    folder, init = po_setup

    def cfg(steps):
        return TrainConfig(model="hyperprior", lambda_min=0.002, lambda_max=0.05, data=[str(folder)], steps=steps,
                           batch_size=2, crop=64, checkpoint_every=2, eval_every=0, init=str(init), recipe="st-lic",
                           recipe_args={"post_filter": 8, "freeze_codec": 1, "c_mse": 0.00234})

    make_trainer(cfg(4), tmp_path / "a", log=lambda m: None).run(progress=False)
    make_trainer(cfg(2), tmp_path / "b", log=lambda m: None).run(progress=False)
    make_trainer(cfg(4), tmp_path / "b", log=lambda m: None).run(progress=False)
    start = zoo.load_weights(init).state_dict()
    trained = zoo.load_weights(tmp_path / "a" / "model.safetensors").state_dict()
    codec_keys = [k for k in start if not k.startswith("post_filter.")]
    # the codec -- parameters, quantiles and CDF tables -- is the init model's, bit for bit
    assert codec_keys and all(torch.equal(start[k], trained[k]) for k in codec_keys)
    assert any(trained[k].abs().sum() > 0 for k in ("post_filter.out.weight", "post_filter.out.bias"))
    resumed = zoo.load_weights(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(v, resumed[k]) for k, v in trained.items())
    from plic.train.curves import plot_runs

    assert plot_runs([tmp_path / "a"], tmp_path / "curves.png").stat().st_size > 10_000  # with the GAN panel


def test_refiner_runs_after_decoding_only_when_the_file_says_so(tmp_path, sample_image):
    from plic import bitstream, zoo
    from plic.codec import Codec
    from plic.errors import BitstreamError
    from plic.image_io import read_image
    from plic.models import MeanScaleHyperprior

    torch.manual_seed(0)
    model = MeanScaleHyperprior(N=16, M=24, lambda_min=0.002, lambda_max=0.05, post_filter=8)
    torch.nn.init.normal_(model.post_filter.out.weight, std=0.05)  # a post-filter that does something
    path = tmp_path / "r.safetensors"
    zoo.save_weights(model, path)
    codec = Codec(zoo.load_weights(path))
    img = read_image(sample_image)
    f = bitstream.parse(codec.encode(img, quality=3).data)
    assert f.header.flags & bitstream.FLAG_POST_FILTER
    refined = codec.decode_file(f)
    f.header.flags &= ~bitstream.FLAG_POST_FILTER
    plain = codec.decode_file(f)
    assert not torch.equal(refined, plain)
    # a model without a post-filter refuses a file that asks for one
    plain_model = MeanScaleHyperprior(N=16, M=24, lambda_min=0.002, lambda_max=0.05)
    other = Codec(zoo.load_weights(path))
    other.post_filter = None
    other.model.fingerprint = codec.model.fingerprint
    f.header.flags |= bitstream.FLAG_POST_FILTER
    with pytest.raises(BitstreamError, match="post-filter"):
        other.decode_file(f)
    assert plain_model.config().get("post_filter") is None


def test_grow_latent_phases_in_the_new_channels_rate():
    from types import SimpleNamespace

    from plic.errors import PlicError
    from plic.recipes import build_recipe
    from plic.train.loss import RateDistortionLoss

    recipe = build_recipe("grow-latent", free_from=4.0, hold=10.0, ramp=20.0)  # CLI values arrive as floats
    trainer = SimpleNamespace(step=0, model=SimpleNamespace(M=6))
    recipe.setup(trainer)
    assert [recipe.rate_weight(s) for s in (0, 9, 10, 20, 30, 99)] == [0, 0, 0, 0.5, 1, 1]
    x = torch.rand(2, 3, 16, 16)
    lik_y = torch.rand(2, 6, 1, 1).clamp(0.01, 1)
    out = {"x_hat": x * 0.9, "likelihoods": {"y": lik_y, "z": torch.full((2, 2, 1, 1), 0.5)}}
    lmbda = torch.tensor([0.01, 0.1])
    full = RateDistortionLoss()(out, x, lmbda)
    new_bpp = float(-lik_y[:, 4:].log2().sum() / (2 * 16 * 16))
    for step, w in ((0, 0.0), (20, 0.5), (30, 1.0)):
        trainer.step = step
        got = recipe.codec_loss(out, x, lmbda)
        assert float(got["loss"]) == pytest.approx(float(full["loss"]) - (1 - w) * new_bpp, rel=1e-5)
        assert float(got["bpp"]) == pytest.approx(float(full["bpp"]))  # the log always shows the full rate
    with pytest.raises(PlicError):
        build_recipe("grow-latent", free_from=6).setup(trainer)


def test_lpips_and_style_from_one_vgg_pass_equal_the_separate_losses():
    from plic.losses.distortion import distortion_fn
    from plic.losses.perceptual import LPIPSAndStyle
    from plic.losses.style import PatchedStyleLoss

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g)
    x_hat = (x + 0.1 * torch.randn(2, 3, 64, 64, generator=g)).clamp(0, 1).requires_grad_(True)
    both = LPIPSAndStyle()(x_hat, x)
    assert torch.allclose(both["lpips"], distortion_fn("lpips")(x_hat, x), rtol=1e-5, atol=1e-6)
    assert torch.allclose(both["style"], PatchedStyleLoss()(x_hat, x), rtol=1e-5, atol=1e-7)
    (both["lpips"].sum() + both["style"]).backward()  # the reconstruction gets the gradient
    assert x_hat.grad is not None and float(x_hat.grad.abs().sum()) > 0


def test_po_elic_variable_rate_holds_each_crop_at_the_init_models_rate(po_setup, tmp_path):
    import csv

    from plic.recipes import make_trainer
    from plic.train.loss import bpp_per_item
    from plic.train.trainer import TrainConfig

    folder, init = po_setup
    cfg = TrainConfig(model="hyperprior", lambda_min=0.002, lambda_max=0.05, data=[str(folder)], steps=2,
                      batch_size=2, crop=64, checkpoint_every=1, eval_every=0, init=str(init),
                      recipe="po-elic", recipe_args={"target_bpp": 0.0})
    t = make_trainer(cfg, tmp_path / "vr", log=lambda m: None)
    x, lam = t.next_batch()
    lam = torch.tensor([0.002, 0.05])
    torch.manual_seed(5)
    target = t.recipe.anchor_bpp(x, lam)
    torch.manual_seed(5)  # the same noise draw: before training the model is its own anchor
    t.model.train()
    y = t.model.g_a(x)
    own = bpp_per_item(t.model.latent_codec(y / t.model.quant_step(lam).to(y))["likelihoods"], 64 * 64)
    assert target.shape == (2,) and torch.allclose(target, own)  # one target per crop, at its own lambda
    assert t.recipe.anchor.g_s is None  # only its rate is kept
    t.run(progress=False)
    rows = list(csv.DictReader(open(tmp_path / "vr" / "train.csv")))
    assert len(rows) == 2 and {"d_acc_real", "d_acc_fake"} <= set(rows[0])
    # the anchor stays the init model's while the codec trains
    assert not all(torch.equal(a, b) for a, b in zip(t.recipe.anchor.g_a.parameters(), t.model.g_a.parameters()))


@pytest.mark.parametrize("loss", ["hinge", "bce"])
def test_adversary_item_weights_weigh_each_crops_own_loss(loss):
    from plic.recipes.adversary import Adversary

    torch.manual_seed(0)
    adv = Adversary(8, "cpu", loss, spectral_norm=True)
    adv.disc.eval()  # spectral norm's power iteration would move between the calls compared
    fake, y = torch.rand(3, 3, 32, 32), torch.randn(3, 8, 2, 2)
    whole = adv.generator_loss(fake, y)
    each = torch.stack([adv.generator_loss(fake[i:i + 1], y[i:i + 1]) for i in range(3)])
    assert torch.allclose(adv.generator_loss(fake, y, torch.ones(3)), whole, atol=1e-6)
    w = torch.tensor([2.0, 0.0, 1.0])
    assert torch.allclose(adv.generator_loss(fake, y, w), (w * each).mean(), atol=1e-6)


def test_po_elic_adv_slope_weighs_low_rate_crops_more(po_setup, tmp_path):
    from plic.recipes import make_trainer
    from plic.train.trainer import TrainConfig

    folder, init = po_setup
    cfg = TrainConfig(model="hyperprior", lambda_min=0.0001, lambda_max=0.01, data=[str(folder)], steps=1,
                      batch_size=2, crop=64, checkpoint_every=1, eval_every=0, init=str(init),
                      recipe="po-elic", recipe_args={"target_bpp": 0.0, "adv_slope": 0.5})
    t = make_trainer(cfg, tmp_path / "slope", log=lambda m: None)
    w = t.recipe.adversarial_item_weights(torch.tensor([0.0001, 0.001, 0.01]))
    assert torch.allclose(w, torch.tensor([10 ** 0.5, 1.0, 10 ** -0.5]))  # the range's geometric middle gets l_adv
    t.run(progress=False)
    flat = make_trainer(_po_cfg(folder, init, 1), tmp_path / "flat", log=lambda m: None)
    assert flat.recipe.adversarial_item_weights(torch.tensor([0.01, 0.01])) is None


def test_dists_distortion_keeps_the_reference_and_matches_the_metric():
    from plic.losses.distortion import distortion_fn
    from plic.metrics.dists import dists_network

    torch.manual_seed(0)
    x, x_hat = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64).requires_grad_(True)
    net = dists_network("cpu")
    calls = []
    real = net.features
    net.features = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        fn = distortion_fn("dists", keep_reference=True)
        for passes in (2, 1):  # the same original again: its features kept
            calls.clear()
            ours = fn(x_hat, x)
            assert len(calls) == passes
            assert torch.allclose(ours, net(x_hat, x), atol=1e-6)
    finally:
        del net.features


@pytest.mark.parametrize("name", ["lpips", "dists"])
def test_a_bf16_loss_network_runs_its_trunk_in_bf16_and_stays_close(name):
    """bf16 halves an encode-time step on CPUs that do bfloat16; the value and its gradient stay near float32's."""
    from plic.losses.distortion import distortion_fn

    torch.manual_seed(0)
    x = torch.rand(1, 3, 96, 128)
    x_hat = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    values, grads = [], []
    for bf16 in (False, True):
        seen = []
        conv = torch.nn.Conv2d.forward
        def counted(self, inp, _c=conv, _seen=seen):
            out = _c(self, inp)
            _seen.append(out.dtype)
            return out

        torch.nn.Conv2d.forward = counted
        try:
            a = x_hat.clone().requires_grad_(True)
            d = distortion_fn(name, keep_reference=True, bf16=bf16)(a, x)
        finally:
            torch.nn.Conv2d.forward = conv
        (g,) = torch.autograd.grad(d.sum(), a)
        assert d.dtype == g.dtype == torch.float32
        if bf16:
            assert seen.count(torch.bfloat16) >= 10  # the trunk's convolutions; the comparison's stay float32
        else:
            assert torch.bfloat16 not in seen
        values.append(float(d))
        grads.append(g.flatten())
    assert values[1] == pytest.approx(values[0], rel=0.03)
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0.97


def test_lpips_distortion_keeps_the_reference_and_matches_the_package():
    """The encode-time LPIPS keeps the original's features between steps, and is the package's forward."""
    from plic.losses.distortion import distortion_fn
    from plic.metrics.lpips import lpips_network

    torch.manual_seed(0)
    x = torch.rand(2, 3, 48, 64)
    for name, net in (("lpips", "vgg16"), ("lpips-alex", "alexnet")):
        package = lpips_network(net)  # the object distortion_fn uses, however the device is spelt
        assert package is lpips_network(net, "cpu") is lpips_network(net, device=torch.device("cpu"))
        trunk_calls = []
        trunk = package.net.forward  # the package calls net.forward itself: count there, not with a hook
        package.net.forward = lambda *a, _c=trunk_calls, _t=trunk, **k: _c.append(1) or _t(*a, **k)
        try:
            fn = distortion_fn(name, keep_reference=True)
            other = torch.rand(2, 3, 48, 64)
            for ref, trunk_passes in ((x, 2), (x, 1), (other, 2)):  # the same original again: its features kept
                trunk_calls.clear()
                x_hat = (ref + 0.1 * torch.randn_like(ref)).requires_grad_(True)
                ours = fn(x_hat, ref)
                assert len(trunk_calls) == trunk_passes
                theirs = package(x_hat.clamp(0, 1) * 2 - 1, ref * 2 - 1).flatten()
                assert torch.allclose(ours, theirs, atol=1e-6)
                g1, = torch.autograd.grad(ours.sum(), x_hat)
                g2, = torch.autograd.grad(theirs.sum(), x_hat)
                assert torch.allclose(g1, g2, atol=1e-7)
            ref = x.clone()
            fn(ref, ref)
            ref.mul_(0.5)  # changed in place: its features are computed again
            assert torch.allclose(fn(x, ref), package(x * 2 - 1, ref * 2 - 1).flatten(), atol=1e-6)
            plain = distortion_fn(name)  # the default keeps nothing: a training step brings a new batch
            trunk_calls.clear()
            plain(x, x)
            plain(x, x)
            assert len(trunk_calls) == 4  # the trunk on both images, every call
        finally:
            del package.net.forward
