"""Architectures: shapes, the QVRF step, ELIC's real coding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plic.models import ELIC, CheckerboardHyperprior, MeanScaleHyperprior


def test_hyperprior_forward_shapes_and_per_item_lambda():
    m = MeanScaleHyperprior(N=16, M=24)
    x = torch.rand(3, 3, 64, 64)
    out = m(x, torch.tensor([0.002, 0.01, 0.09]))
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"]["y"].shape == (3, 24, 4, 4)
    assert out["likelihoods"]["z"].shape == (3, 16, 1, 1)


def test_qvrf_step_is_one_at_lambda_max_and_grows_as_lambda_falls():
    m = MeanScaleHyperprior(N=16, M=24, lambda_min=0.001, lambda_max=0.1)
    a = m.quant_step(torch.tensor([0.1, 0.025, 0.001])).flatten()
    assert a.tolist() == pytest.approx([1.0, 2.0, 10.0])
    assert m.quality_to_lambda(1) == pytest.approx(0.001)
    assert m.quality_to_lambda(8) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        m.quality_to_lambda(9)


def test_elic_has_uneven_groups_and_checkerboard_context():
    m = ELIC(N=32, M=160)
    assert m.groups == [16, 16, 32, 64, 32]
    codecs = m.latent_codec["y"].latent_codec
    assert len(codecs) == 5
    assert all(type(c).__name__ == "CheckerboardLatentCodec" for c in codecs.values())
    with pytest.raises(ValueError):
        ELIC(N=32, M=160, groups=[10, 10])


def test_elic_codes_for_real(tmp_path):
    from plic import zoo
    from plic.codec import Codec
    from plic.image_io import PlanarImage

    torch.manual_seed(0)
    zoo.save_weights(ELIC(N=32, M=160), tmp_path / "elic.safetensors")
    codec = Codec(zoo.load_weights(tmp_path / "elic.safetensors"))
    x = torch.rand(1, 3, 70, 90)
    img = PlanarImage(x, 3, 8)
    enc = codec.encode(img, quality=2)
    pil, f = codec.decode(enc.data)
    assert pil.size == (90, 70)
    assert len(f.payloads) == 11  # 5 groups x 2 checkerboard halves + z
    pil2, _ = codec.decode(enc.data)
    assert np.array_equal(np.asarray(pil), np.asarray(pil2))


def test_widening_the_latent_keeps_what_the_old_channels_computed():
    # scripts/widen_latent.py grafts new latent channels onto a trained model
    from conftest import load_script

    widen_latent = load_script("widen_latent")
    torch.manual_seed(1)
    old = MeanScaleHyperprior(N=16, M=24).eval()
    new = widen_latent.widen(old, 40, copy_gain=0.1).eval()
    assert new.M == 40
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        y_old, y_new = old.g_a(x), new.g_a(x)
        assert torch.equal(y_new[:, :24], y_old)
        # new channel 24 + k starts as 0.1 x old channel k
        torch.testing.assert_close(y_new[:, 24:], 0.1 * y_old[:, :16])
        hyper_old, hyper_new = old.latent_codec["hyper"], new.latent_codec["hyper"]
        z_old, z_new = hyper_old.h_a(y_old), hyper_new.h_a(y_new)
        torch.testing.assert_close(z_new, z_old)
        p_old, p_new = hyper_old.h_s(z_old.round()), hyper_new.h_s(z_new.round())
        torch.testing.assert_close(p_new[:, :24], p_old[:, :24])  # scales
        torch.testing.assert_close(p_new[:, 40:64], p_old[:, 24:])  # means
        # the copies' scales and means are the copied channels', scaled alike
        torch.testing.assert_close(p_new[:, 24:40], 0.1 * p_old[:, :16])
        torch.testing.assert_close(p_new[:, 64:], 0.1 * p_old[:, 24:40])
        # the synthesis ignores the new channels until training gives them weights
        y_hat = torch.cat([y_old.round(), torch.randn_like(y_new[:, 24:])], 1)
        torch.testing.assert_close(new.g_s(y_hat), old.g_s(y_old.round()))


def test_widening_the_transforms_keeps_the_reconstruction_and_the_rate(tmp_path):
    # scripts/widen_transforms.py: Net2WiderNet on g_a and g_s, the hyperprior untouched
    from conftest import load_script
    from plic import zoo

    torch.manual_seed(3)
    old = CheckerboardHyperprior(N=16, M=24).eval()
    with torch.no_grad():  # a trained model's GDNs: uneven betas, a full and asymmetric gamma
        for gdn in (*old.g_a[1:6:2], *old.g_s[1:6:2]):
            gdn.beta.copy_(gdn.beta_reparam.init(1 + torch.rand(16)))
            gdn.gamma.copy_(gdn.gamma_reparam.init(0.1 * torch.rand(16, 16)))
    new = load_script("widen_transforms").widen(old, 28, spread=0.25).eval()
    assert new.transform_channels == 28 and new.N == 16
    assert new.config()["transform_channels"] == 28 and "transform_channels" not in old.config()
    assert new.g_a[2].weight.shape == (28, 28, 5, 5) and new.g_s[0].weight.shape == (24, 28, 5, 5)
    old_state, new_state = old.latent_codec.state_dict(), new.latent_codec.state_dict()
    assert all(torch.equal(new_state[k], v) for k, v in old_state.items())  # the hyperprior and context as they were
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out_old, out_new = old(x, 0.01), new(x, 0.01)
        torch.testing.assert_close(new.g_a(x), old.g_a(x))
    torch.testing.assert_close(out_new["x_hat"], out_old["x_hat"])
    for name in ("y", "z"):
        torch.testing.assert_close(out_new["likelihoods"][name], out_old["likelihoods"][name])
    # a copied unit and its copy share the outgoing weights unevenly, or training could not tell them apart
    w = new.g_a[2].weight  # (out, in): rows 0..15 are the old units, 16..27 copies of 0..11
    assert not torch.allclose(w[:, 0], w[:, 16])
    torch.testing.assert_close(w[:16, 0] + w[:16, 16], old.g_a[2].weight[:, 0])
    torch.testing.assert_close(w[:16, 12], old.g_a[2].weight[:, 12])  # not copied: as it was
    # CompressAI's models have one width for all transforms: no twin to hand over
    from plic.models.compressai_interop import to_compressai

    with pytest.raises(ValueError, match="width"):
        to_compressai(load_script("widen_transforms").widen(MeanScaleHyperprior(N=16, M=24), 20), 0.01)
    # the width is part of the saved configuration: the file builds the same model
    path = tmp_path / "wide.safetensors"
    zoo.save_weights(new, path)
    loaded = zoo.load_weights(path)
    assert loaded.transform_channels == 28
    with torch.no_grad():
        y = new.g_a(x)
        torch.testing.assert_close(loaded.g_a(x), y)
        torch.testing.assert_close(loaded.g_s(y.round()), new.g_s(y.round()))


def test_widening_the_shipped_default_codes_the_same_payloads(tmp_path):
    # the shipped weights carry built entropy tables (the untrained model above has none): widened and saved, the
    # model codes a picture into the same payloads (the header names other weights)
    from conftest import ROOT, SAMPLE, load_script
    from plic import bitstream, zoo
    from plic.codec import Codec
    from plic.image_io import read_image

    old = zoo.load_weights(ROOT / "plic" / "weights" / "hyperprior-mse-vr.safetensors")
    path = tmp_path / "wide.safetensors"
    zoo.save_weights(load_script("widen_transforms").widen(old, 72), path)
    image = read_image(SAMPLE)
    wide, narrow = (bitstream.parse(Codec(m).encode(image, lmbda=0.2).data) for m in (zoo.load_weights(path), old))
    assert wide.header.fingerprint != narrow.header.fingerprint
    assert wide.payloads == narrow.payloads


@pytest.mark.parametrize("script, args", [("widen_transforms", ["--channels", "128"]), ("widen_latent", ["--M", "192"]),
                                          ("add_context", []), ("init_finer_latent", ["--lambda-range", "0.03", "1.0"])])
def test_the_model_surgery_scripts_refuse_bad_paths_in_one_line(script, args, tmp_path, monkeypatch):
    from conftest import load_script

    module = load_script(script)
    for weights, out, said in ((tmp_path / "none.safetensors", tmp_path / "out.safetensors", "no such weight file"),
                               (tmp_path / "junk.safetensors", tmp_path / "out.safetensors", "not a readable")):
        if weights.name == "junk.safetensors":
            weights.write_bytes(b"not weights")
        monkeypatch.setattr("sys.argv", [script, str(weights), str(out), *args])
        with pytest.raises(SystemExit) as exc:
            module.main()
        message = str(exc.value.code)
        assert message.startswith("error: ") and said in message and "\n" not in message
        assert not out.exists()


@pytest.mark.parametrize("script, width", [("widen_transforms", "--channels"), ("widen_latent", "--M")])
def test_the_widening_scripts_refuse_what_they_cannot_widen_in_one_line(script, width, tmp_path, monkeypatch):
    # not a mean-scale hyperprior, or a width outside (old, 2 x old]: a message naming the file, nothing written
    from conftest import load_script
    from plic import zoo
    from plic.models import ScaleHyperprior

    module = load_script(script)
    zoo.save_weights(ScaleHyperprior(N=16, M=24), tmp_path / "scale.safetensors")
    zoo.save_weights(MeanScaleHyperprior(N=16, M=24), tmp_path / "mean_scale.safetensors")
    for name, value, said in (("scale", "20", "only hyperprior models"), ("mean_scale", "64", "must lie in")):
        weights, out = tmp_path / f"{name}.safetensors", tmp_path / "out.safetensors"
        monkeypatch.setattr("sys.argv", [script, str(weights), str(out), width, value])
        with pytest.raises(SystemExit) as exc:
            module.main()
        message = str(exc.value.code)
        assert message.startswith(f"{weights}: ") and said in message and "\n" not in message
        assert not out.exists()


def test_widening_a_checkerboard_model_keeps_what_the_old_channels_computed():
    # the shipped default has the checkerboard context: its context and entropy parameters widen too
    from conftest import load_script

    torch.manual_seed(2)
    old = CheckerboardHyperprior(N=32, M=48).eval()
    torch.nn.init.normal_(old.latent_codec["y"].entropy_parameters.net[-1].weight, std=0.05)  # starts at zero
    new = load_script("widen_latent").widen(old, 80, copy_gain=0.1).eval()
    assert new.M == 80

    def run(model, x):
        """The forward pass, with z and the means and scales of each checkerboard pass (anchors, the rest)."""
        seen = []
        hooks = [model.latent_codec["hyper"].h_a.register_forward_hook(lambda m, i, o: seen.append(o)),
                 model.latent_codec["y"].entropy_parameters.register_forward_hook(lambda m, i, o: seen.append(o))]
        with torch.no_grad():
            out = model(x, 0.01)
        for hook in hooks:
            hook.remove()
        return out, seen[0], seen[1:]

    x = torch.rand(1, 3, 64, 64)
    (out_old, z_old, p_old), (out_new, z_new, p_new) = run(old, x), run(new, x)
    assert len(p_old) == len(p_new) == 2
    # the synthesis ignores the new channels, and the old channels are quantized as before
    torch.testing.assert_close(out_new["x_hat"], out_old["x_hat"])
    torch.testing.assert_close(out_new["likelihoods"]["y"][:, :48], out_old["likelihoods"]["y"])
    torch.testing.assert_close(z_new, z_old)
    torch.testing.assert_close(out_new["likelihoods"]["z"], out_old["likelihoods"]["z"])
    for a, b in zip(p_old, p_new):  # [scales | means], with and then without the anchors as context
        torch.testing.assert_close(b[:, :48], a[:, :48])  # scales
        torch.testing.assert_close(b[:, 80:128], a[:, 48:])  # means
        # the copies' scales and means are the copied channels', scaled alike
        torch.testing.assert_close(b[:, 48:80], 0.1 * a[:, :32])
        torch.testing.assert_close(b[:, 128:], 0.1 * a[:, 48:80])
