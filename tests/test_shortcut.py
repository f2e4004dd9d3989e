"""The linear wavelet shortcut (AuxT) beside the hyperprior's transforms."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from plic import zoo
from plic.codec import Codec, _tiled
from plic.image_io import PlanarImage
from plic.models import MeanScaleHyperprior
from plic.models.shortcut import ORTHO_WEIGHT, haar_merge, haar_split, orthogonality_penalty


def test_haar_split_is_orthonormal_and_merge_inverts_it():
    x = torch.randn(2, 3, 16, 24, dtype=torch.float64)
    y = haar_split(x)
    assert y.shape == (2, 12, 8, 12)
    assert torch.allclose((y**2).sum(), (x**2).sum())  # energy kept: orthonormal
    assert torch.allclose(y[:, :3], 2 * torch.nn.functional.avg_pool2d(x, 2))  # subband-major, LL first
    assert torch.allclose(haar_merge(y), x)


def _model(seed=0):
    torch.manual_seed(seed)
    return MeanScaleHyperprior(N=16, M=24, shortcut=True).eval()


def test_the_shortcut_is_added_at_each_stage_and_the_layers_index_as_before():
    m = _model()
    plain = MeanScaleHyperprior(N=16, M=24)
    assert len(m.g_a) == len(plain.g_a) == 7 and type(m.g_a[6]) is type(plain.g_a[6])
    assert [type(layer) for layer in m.g_s] == [type(layer) for layer in plain.g_s]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        without = torch.nn.Sequential(*m.g_a)(x)  # the nonlinear layers alone
        assert not torch.allclose(m.g_a(x), without)
        for s in m.g_a._shortcuts:
            s.linear.weight.zero_()
            s.linear.bias.zero_()
        assert torch.allclose(m.g_a(x), without)  # a path of zeros adds nothing


def test_shortcut_model_tiles_like_one_pass_and_codes_for_real(tmp_path):
    m = _model()
    x = torch.rand(1, 3, 128, 192)
    with torch.no_grad():
        # each latent sees its own 16x16 block through the shortcut: tiles with margins change nothing
        assert torch.allclose(_tiled(m.g_a, x, 1 / 16, 64, 32), m.g_a(x), atol=1e-5)
    zoo.save_weights(m, tmp_path / "sc.safetensors")
    loaded = zoo.load_weights(tmp_path / "sc.safetensors")
    assert loaded.shortcut and torch.equal(loaded.g_a._shortcuts[0].linear.weight, m.g_a._shortcuts[0].linear.weight)
    codec = Codec(loaded)
    enc = codec.encode(PlanarImage(torch.rand(1, 3, 70, 90), 3, 8), quality=4)
    a, _ = codec.decode(enc.data)
    b, _ = Codec(zoo.load_weights(tmp_path / "sc.safetensors")).decode(enc.data)
    assert a.size == (90, 70) and np.array_equal(np.asarray(a), np.asarray(b))


def test_orthogonality_penalty_vanishes_on_orthonormal_maps_and_enters_the_training_loss(tmp_path):
    m = _model()
    assert float(m.regularization()) == pytest.approx(ORTHO_WEIGHT * float(orthogonality_penalty(m)))
    assert float(orthogonality_penalty(m)) > 0
    with torch.no_grad():
        for s in [*m.g_a._shortcuts, *m.g_s._shortcuts]:
            w = s.linear.weight.flatten(1)
            q, _ = torch.linalg.qr(torch.randn(max(w.shape), min(w.shape)))
            s.linear.weight.copy_((q if w.shape[0] >= w.shape[1] else q.t()).view_as(s.linear.weight))
    assert float(orthogonality_penalty(m)) == pytest.approx(0.0, abs=1e-10)
    assert MeanScaleHyperprior(N=16, M=24).regularization() is None
    with pytest.raises(ValueError, match="levels=4"):
        MeanScaleHyperprior(N=16, M=24, levels=3, shortcut=True)


def test_plic_train_shortcut_logs_the_penalty_and_refuses_other_models(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(data / f"{i}.png")
    base = [sys.executable, "-m", "plic", "train", "--lambda", "0.01", "--data", str(data), "--steps", "2",
            "--batch-size", "2", "--crop", "64", "--eval-every", "0", "--N", "16", "--M", "24", "--no-progress",
            "--shortcut"]
    r = subprocess.run(base + ["--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "run" / "train.csv")))
    assert len(rows) == 2 and all(float(row["term_regularization"]) > 0 for row in rows)
    assert zoo.load_weights(tmp_path / "run" / "model.safetensors").shortcut
    r = subprocess.run(base + ["--model", "elic", "--out", str(tmp_path / "elic")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and r.stderr.strip() == "plic: --shortcut is an option of the hyperprior model, not of 'elic'"
    assert not (tmp_path / "elic").exists()


def test_plic_trains_defaults_for_a_new_model_a_resumed_run_and_a_finetune(tmp_path):
    """The shortcut is on for a new hyperprior; a run folder written without it resumes without it; --init
    decides, and a flag that contradicts --init's architecture is refused. The learning rate: 5e-4 after a
    50-step warmup for a new model, 1e-4 without warmup for a finetune, a resumed run's own."""
    import json
    import subprocess
    import sys

    def config(run):
        return json.loads((tmp_path / run / "state.json").read_text())["config"]

    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(data / f"{i}.png")
    base = [sys.executable, "-m", "plic", "train", "--lambda", "0.01", "--data", str(data), "--batch-size", "2",
            "--crop", "64", "--eval-every", "0", "--N", "16", "--M", "24", "--no-progress"]

    def train(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=300)

    r = train("--steps", "1", "--out", str(tmp_path / "new"))
    assert r.returncode == 0, r.stderr
    assert zoo.load_weights(tmp_path / "new" / "model.safetensors").shortcut
    assert (config("new")["lr"], config("new")["warmup_steps"]) == (5e-4, 50)
    r = train("--steps", "1", "--no-shortcut", "--lr", "2e-4", "--out", str(tmp_path / "plain"))
    assert r.returncode == 0, r.stderr
    r = train("--steps", "2", "--out", str(tmp_path / "plain"))  # resumed with no flag: keeps its settings
    assert r.returncode == 0 and "resuming" in r.stderr, r.stderr
    assert not zoo.load_weights(tmp_path / "plain" / "model.safetensors").shortcut
    assert config("plain")["lr"] == 2e-4
    plain = str(tmp_path / "plain" / "model.safetensors")
    r = train("--steps", "1", "--init", plain, "--out", str(tmp_path / "ft"))  # --init's architecture
    assert r.returncode == 0, r.stderr
    assert not zoo.load_weights(tmp_path / "ft" / "model.safetensors").shortcut
    assert (config("ft")["lr"], config("ft")["warmup_steps"]) == (1e-4, 0)
    r = train("--steps", "1", "--init", plain, "--shortcut", "--out", str(tmp_path / "ft2"))
    assert r.returncode == 1 and r.stderr.strip().startswith("plic: --init") and "has no wavelet shortcut" in r.stderr
    assert not (tmp_path / "ft2").exists()


def test_plic_train_gives_a_new_model_a_late_stage_on_larger_crops(tmp_path):
    """A new model's last 5 % of steps is on crops twice --crop where the data has images that large; a
    resumed run keeps its schedule, a finetune (--init) gets none unless asked."""
    import json
    import subprocess
    import sys

    from PIL import Image

    def config(run):
        return json.loads((tmp_path / run / "state.json").read_text())["config"]

    rng = np.random.default_rng(0)
    small, large = tmp_path / "small", tmp_path / "large"
    for folder, shape in ((small, (80, 90, 3)), (large, (130, 140, 3))):
        folder.mkdir()
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / "0.png")
    base = [sys.executable, "-m", "plic", "train", "--lambda", "0.01", "--batch-size", "4", "--crop", "64",
            "--eval-every", "0", "--N", "16", "--M", "24", "--no-progress", "--steps", "1"]

    def train(*args):
        r = subprocess.run(base + list(args), capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr

    train("--data", str(large), "--out", str(tmp_path / "new"))
    assert config("new")["crop_stages"] == [[0.95, 128, 4]]
    train("--data", str(small), "--out", str(tmp_path / "no_large_images"))
    assert config("no_large_images")["crop_stages"] == []
    train("--data", str(large), "--out", str(tmp_path / "new"), "--steps", "2")  # resumed: its own schedule
    assert config("new")["crop_stages"] == [[0.95, 128, 4]]
    train("--data", str(large), "--out", str(tmp_path / "ft"), "--init", str(tmp_path / "new" / "model.safetensors"))
    assert config("ft")["crop_stages"] == []
    train("--data", str(large), "--out", str(tmp_path / "asked"), "--crop-stage", "0.5", "128", "2")
    assert config("asked")["crop_stages"] == [[0.5, 128, 2]]
