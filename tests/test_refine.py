"""Encode-time optimisation: soft roundings, the quantization override, SGA+ and SNIC."""

from __future__ import annotations

import compressai.latent_codecs.checkerboard as checkerboard
import pytest
import torch

from plic import bitstream, zoo
from plic.codec import Codec
from plic.errors import PlicError
from plic.image_io import PlanarImage, read_image
from plic.models.latent_hooks import quantized_with
from plic.refine import Objective, Settings, refine_encode
from plic.refine.optimize import optimise
from plic.refine.rounding import METHODS, THREE_CLASS, TWO_CLASS, soft_round, temperature


@pytest.mark.parametrize("method", METHODS)
def test_every_rounding_is_differentiable_and_near_its_input(method):
    gen = torch.Generator().manual_seed(0)
    v = (torch.rand(2000, generator=gen) * 8 - 4).requires_grad_(True)
    out = soft_round(v, method, tau=0.5, generator=gen)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(v.grad).all()
    assert v.grad.abs().sum() > 0
    limit = 1.5 if method in THREE_CLASS else 1.0
    assert (out - v).abs().max() <= limit + 1e-6


@pytest.mark.parametrize("method", TWO_CLASS + THREE_CLASS)
def test_annealed_rounding_becomes_hard_rounding(method):
    gen = torch.Generator().manual_seed(1)
    v = torch.rand(5000, generator=gen) * 6 - 3
    v = v[(v - v.round()).abs() < 0.3]  # away from the ties
    out = soft_round(v, method, tau=0.02, generator=gen)
    assert (out - v.round()).abs().mean() < 0.02


def test_rounding_probabilities_and_ssl_a1_is_linear():
    # at tau = 1 the Gumbel-softmax's largest weight is an exact draw from p
    gen = torch.Generator().manual_seed(2)
    v = torch.full((100_000,), 0.3)
    up = soft_round(v, "linear", 1.0, generator=gen) > 0.5
    assert float(up.float().mean()) == pytest.approx(0.3, abs=0.01)
    up = soft_round(v, "cosine", 1.0, generator=gen) > 0.5
    assert float(up.float().mean()) == pytest.approx(float(torch.sin(torch.tensor(0.15 * torch.pi)) ** 2), abs=0.01)
    a = soft_round(v[:1000], "linear", 0.7, generator=torch.Generator().manual_seed(3))
    b = soft_round(v[:1000], "ssl", 0.7, a=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(a, b, atol=1e-5)


def test_temperature_schedule():
    assert temperature(0, 1e-3, 0.5) == 0.5
    assert temperature(2000, 1e-3, 1.0) == pytest.approx(torch.e ** -2)


def test_quantization_override_is_undone_and_hard_rounding_matches_the_coder(tiny_codec, sample_image):
    model = tiny_codec.model
    lc = model.latent_codec
    y = model.g_a(read_image(sample_image).rgb[..., :256, :256]).detach()
    with torch.no_grad():
        reference = lc(y)  # eval mode: compressai's own hard rounding around the means
        with quantized_with(lc, torch.round):
            assert checkerboard.quantize_ste is torch.round
            ours = lc(y)
    assert checkerboard.quantize_ste is not torch.round
    assert "quantize" not in vars(lc["hyper"].entropy_bottleneck)
    assert lc["y"].quantizer == "ste" and lc["hyper"].quantizer == "ste"
    assert torch.equal(ours["y_hat"], reference["y_hat"])
    for key in reference["likelihoods"]:
        assert torch.allclose(ours["likelihoods"][key], reference["likelihoods"][key])


def _small(sample_image) -> PlanarImage:
    img = read_image(sample_image)
    return PlanarImage(img.rgb[..., :128, :192].contiguous(), 3, 8)


def test_sga_plus_lowers_the_true_loss_and_decodes_with_the_plain_decoder(tiny_codec, sample_image):
    img = _small(sample_image)
    # the random test model's latents are ~0.01: a large step lets them cross rounding boundaries
    res = optimise(tiny_codec, img, 0.01, Objective(0.01), Settings(steps=25, trace_every=5, lr=0.2))
    losses = [t["true_loss"] for t in res.trace]
    assert losses[-1] < losses[0]
    f = tiny_codec.encode_planes(img, 0.01, latent=res.y, z=res.z)
    rec = tiny_codec.decode_file(bitstream.parse(bitstream.pack(f)))
    assert rec.shape[-2:] == (128, 192)


def test_every_plan_composes_and_decodes(tiny_codec, sample_image):
    img = _small(sample_image)
    for plan in ("snic", "snic-latent", "snic+sga+"):
        out = refine_encode(tiny_codec, img, 0.01, plan, Objective(0.01), Settings(steps=3))
        assert len(out.stages) == (2 if plan == "snic+sga+" else 1)
        rec, f = tiny_codec.decode(out.encoded.data)
        assert rec.size == (192, 128) and f.header.lmbda == pytest.approx(0.01)


def test_refinement_works_with_elic(tmp_path, sample_image):
    from plic.models import ELIC

    torch.manual_seed(0)
    path = tmp_path / "elic.safetensors"
    zoo.save_weights(ELIC(N=16, M=160, groups=[16, 16, 32, 64, 32], lambda_min=0.002, lambda_max=0.05), path)
    codec = Codec(zoo.load_weights(path))
    img = _small(sample_image)
    res = optimise(codec, img, 0.01, Objective(0.01), Settings(steps=4))
    f = codec.encode_planes(img, 0.01, latent=res.y, z=res.z)
    assert codec.decode_file(bitstream.parse(bitstream.pack(f))).shape[-2:] == (128, 192)


def test_bad_settings_are_refused(tiny_codec, sample_image):
    img = _small(sample_image)
    with pytest.raises(PlicError, match="--steps"):
        optimise(tiny_codec, img, 0.01, Objective(0.01), Settings(steps=-1))
    with pytest.raises(PlicError, match="unknown rounding"):
        optimise(tiny_codec, img, 0.01, Objective(0.01), Settings(rounding="nearest"))
    with pytest.raises(PlicError, match="unknown precision"):
        optimise(tiny_codec, img, 0.01, Objective(0.01), Settings(precision="fp16"))
    with pytest.raises(PlicError, match="not both"):
        Objective(0.01, target_bpp=0.1, target_distortion=0.001)
    with pytest.raises(PlicError, match="MS-SSIM needs"):
        optimise(tiny_codec, PlanarImage(img.rgb[..., :64, :64], 3, 8), 0.01,
                 Objective(0.01, distortion="ms-ssim"), Settings(steps=1))


def test_snic_with_a_target_lands_on_it_in_real_files(sample_image):
    codec = Codec(zoo.load_model("hyperprior"))
    img = _small(sample_image)
    for target in (0.25, 0.6):
        lam = bitstream.parse(codec.encode_to_bpp(img, target).data).header.lmbda
        out = refine_encode(codec, img, lam, "snic", Objective(lam, target_bpp=target), Settings(steps=4))
        assert out.encoded.bpp == pytest.approx(target, rel=0.01)
        rec, _ = codec.decode(out.encoded.data)
        assert rec.size == (192, 128)


def test_a_rate_target_rounds_only_the_rate_hard_each_step(tiny_codec, sample_image, monkeypatch):
    """The hard-rounded check of a step is its target's own measure: a rate target synthesises
    no image for it (a synthesis and a loss-network pass saved per step), a quality target does."""
    from plic.refine.problem import FrozenProblem
    from plic.refine.sga import LatentSpace

    img = _small(sample_image)
    synth = []
    real = tiny_codec.model.synthesize
    monkeypatch.setattr(tiny_codec.model, "synthesize", lambda *a, **k: synth.append(1) or real(*a, **k))
    count = {}
    for steps in (2, 5):
        for target in ({"target_bpp": 0.3}, {"target_distortion": 1e-3}):
            synth.clear()
            optimise(tiny_codec, img, 0.01, Objective(0.01, **target), Settings(steps=steps))
            count[steps, *target] = len(synth)
    assert count[5, "target_bpp"] - count[2, "target_bpp"] == 3  # the soft image only
    assert count[5, "target_distortion"] - count[2, "target_distortion"] == 6  # the soft and the hard image
    problem = FrozenProblem(tiny_codec, img, 0.01)
    room = LatentSpace(True)
    with torch.no_grad():
        y, z = room.latents(problem, room.start(problem, problem.x0_padded))
        for fn in (torch.round, lambda v: v + 0.3):
            assert float(problem.rate(y, z, fn)) == float(problem.rate_and_image(y, z, fn)[0])


def test_the_trace_starts_at_the_true_loss_of_the_start(tiny_codec, sample_image):
    """Step 0 of the trace is the starting point's hard-rounded loss, measured once, as a later record measures."""
    img = _small(sample_image)
    for objective in (Objective(0.01), Objective(0.01, target_bpp=0.3)):
        zero = optimise(tiny_codec, img, 0.01, objective, Settings(steps=0)).trace
        lr0 = optimise(tiny_codec, img, 0.01, objective, Settings(steps=1, lr=1e-30)).trace  # a step that moves nothing
        assert [t["step"] for t in zero] == [0] and [t["step"] for t in lr0] == [0, 1]
        for key in ("true_loss", "bpp", "distortion"):
            assert zero[0][key] == pytest.approx(lr0[1][key], rel=1e-6)


def test_a_target_pulls_its_own_measure(sample_image):
    """The target's hard-rounded term keeps the surrogate's gradient: aimed below the start, the
    optimisation lowers that measure (a hard value added without its graph would leave only the other term)."""
    codec = Codec(zoo.load_model("hyperprior"))  # trained latents cross rounding boundaries; a random model's do not
    img, lam = _small(sample_image), 0.0067
    start = optimise(codec, img, lam, Objective(lam), Settings(steps=0)).trace[0]
    rate = optimise(codec, img, lam, Objective(lam, target_bpp=0.5 * start["bpp"]), Settings(steps=12)).trace
    assert rate[-1]["bpp"] < 0.97 * start["bpp"]  # 0.94 measured; without the rate's graph, up
    # MSE is the model's own loss: little to gain, but a gain (0.989 measured; without the graph, up)
    quality = optimise(codec, img, lam, Objective(lam, target_distortion=0.5 * start["distortion"]), Settings(steps=12)).trace
    assert quality[-1]["distortion"] < 0.995 * start["distortion"]


def test_a_rate_target_steps_on_the_hard_rounded_rate(sample_image):
    """The rate a step's objective sees is the hard-rounded one (the surrogate's only in its gradient)."""
    codec = Codec(zoo.load_model("hyperprior"))  # a random model's tiny latents round alike either way
    img = _small(sample_image)
    stats = []
    res = optimise(codec, img, 0.0067, Objective(0.0067, target_bpp=0.2), Settings(steps=1, lr=1e-30),
                   progress=lambda step, st: stats.append(st))
    assert stats[0]["bpp"] == pytest.approx(res.trace[0]["bpp"], rel=1e-6)  # the start's, as step 1 begins there
