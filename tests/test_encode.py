"""plic.encode: the one encoding entry (rate choice, refinement policy) that the CLI, eval and benchmarks share."""

from __future__ import annotations

import pytest
import torch

from plic import bitstream
from plic.codec import Codec
from plic.encode import Encoder, Rate, Refinement, encode_image
from plic.errors import PlicError
from plic.image_io import PlanarImage, read_image


@pytest.fixture(scope="module")
def codec():
    """The shipped default model: a random one codes every lambda to the same few bytes."""
    from plic import zoo

    return Codec(zoo.load_model("hyperprior"))


@pytest.fixture(scope="module")
def image(sample_image):
    img = read_image(sample_image)
    return PlanarImage(img.rgb[..., :64, :96].contiguous(), 3, 8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(quality=3, bpp=0.2), "give one of"),
    (dict(bpp=0.0), "--bpp must be between"),
    (dict(psnr=5.0), "--target-psnr must be between"),
])
def test_rate_refuses_bad_settings(kwargs, message):
    with pytest.raises(PlicError, match=message):
        Rate(**kwargs)


def test_plain_encodings_are_the_codecs_own(codec, image):
    assert encode_image(codec, image, Rate(quality=3)).result.data == codec.encode(image, quality=3).data
    assert encode_image(codec, image, Rate(lmbda=0.01)).result.data == codec.encode(image, lmbda=0.01).data
    by_target = encode_image(codec, image, Rate(bpp=0.5))
    assert by_target.result.data == codec.encode_to_bpp(image, 0.5).data
    assert by_target.before is None


def test_refinement_starts_from_the_plain_encoding(codec, image):
    out = encode_image(codec, image, Rate(quality=3), Refinement("sga+", steps=3))
    assert out.before.data == codec.encode(image, quality=3).data
    lam = bitstream.parse(out.before.data).header.lmbda
    assert bitstream.parse(out.result.data).header.lmbda == lam
    assert out.result.data != out.before.data  # the latents moved


def test_refinement_settings_need_a_refinement(tiny_codec):
    with pytest.raises(PlicError, match="need --refine"):
        Encoder(tiny_codec, Rate(), Refinement(metric="ms-ssim"))
    with pytest.raises(PlicError, match="need --refine"):
        Encoder(tiny_codec, Rate(), Refinement(precision="bf16"))
    with pytest.raises(PlicError, match="mse has none"):  # before any work, not after a lambda search
        Encoder(tiny_codec, Rate(bpp=0.3), Refinement("snic-latent", precision="bf16"))
    with pytest.raises(PlicError, match="unknown refinement"):
        Encoder(tiny_codec, Rate(), Refinement("sgd"))


def test_a_fixed_rate_model_meets_a_target_through_snic(tiny_model_path, tmp_path):
    from plic import zoo
    from plic.models import MeanScaleHyperprior

    torch.manual_seed(0)
    zoo.save_weights(MeanScaleHyperprior(N=32, M=48, lambda_min=0.01, lambda_max=0.01), tmp_path / "fixed.safetensors")
    fixed = Codec(zoo.load_weights(tmp_path / "fixed.safetensors"))
    assert not fixed.model.variable_rate
    assert Encoder(fixed, Rate(bpp=0.3)).refine.plan == "snic"
    assert Encoder(fixed, Rate()).refine.plan == "none"
    variable = Codec(zoo.load_weights(tiny_model_path))
    assert Encoder(variable, Rate(bpp=0.3)).refine.plan == "none"  # found by its lambda instead


def test_the_encoder_hands_its_precision_to_the_optimisation(tiny_codec, sample_image, monkeypatch):
    import plic.refine

    seen = []
    real = plic.refine.optimise
    monkeypatch.setattr(plic.refine, "optimise", lambda *a, **k: seen.append(a[4].precision) or real(*a, **k))
    image = read_image(sample_image)
    for precision in ("bf16", "fp32"):
        encode_image(tiny_codec, image, Rate(quality=3), Refinement("sga+", 1, metric="lpips-alex", precision=precision))
    assert seen == ["bf16", "fp32"]


def test_sga_alone_cannot_move_a_fixed_rate_model_to_a_target(tmp_path):
    """SGA+ keeps the coding lambda: on a fixed-rate model a target would be ignored, so it is refused."""
    from plic import zoo
    from plic.models import MeanScaleHyperprior

    torch.manual_seed(0)
    zoo.save_weights(MeanScaleHyperprior(N=32, M=48, lambda_min=0.01, lambda_max=0.01), tmp_path / "fixed.safetensors")
    fixed = Codec(zoo.load_weights(tmp_path / "fixed.safetensors"))
    with pytest.raises(PlicError, match="only through a SNIC stage"):
        Encoder(fixed, Rate(bpp=0.3), Refinement("sga+"))
    assert Encoder(fixed, Rate(bpp=0.3), Refinement("snic+sga+")).refine.plan == "snic+sga+"
    assert Encoder(fixed, Rate(), Refinement("sga+")).refine.plan == "sga+"  # no target: nothing ignored


def test_a_refinement_that_falls_short_of_a_psnr_target_writes_nothing(codec, image):
    """A latent refinement aiming at a PSNR is checked on the decoded file, as a bpp target is on its size:
    a step far too long (lr 50) wrecks the latents, and the miss is an error, not a file."""
    from plic.encode import OutOfReach

    encode_image(codec, image, Rate(psnr=30.0))  # the plain encoding reaches 30 dB on this crop (or raises)
    with pytest.raises(OutOfReach, match="short of --target-psnr 30"):
        encode_image(codec, image, Rate(psnr=30.0), Refinement("snic-latent", steps=2, lr=50.0))
    kept = encode_image(codec, image, Rate(psnr=30.0), Refinement("snic-latent", steps=2))
    assert kept.result.bpp > 0
