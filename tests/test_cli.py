"""The command line: the user's workflow and every failure as one clear line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from plic.cli import main


@pytest.fixture()
def run(tiny_model_path):
    runner = CliRunner()

    def _run(*args, model=True):
        args = [str(a) for a in args]
        if model and args[0] in ("compress", "decompress"):
            args += ["--model-path", str(tiny_model_path)]
        return runner.invoke(main, args, catch_exceptions=False)

    return _run


def _one_line_error(result, pattern):
    assert result.exit_code != 0
    out = result.output.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("plic: "), result.output
    assert pattern in out[0], out[0]
    assert "Traceback" not in result.output


def test_compress_info_decompress(run, sample_image, tmp_path):
    plic_file, png = tmp_path / "c.plic", tmp_path / "c.png"
    r = run("compress", sample_image, "-o", plic_file, "--quality", 3)
    assert r.exit_code == 0, r.output
    assert "bpp" in r.output and "dB PSNR" in r.output
    r = run("info", plic_file)
    assert r.exit_code == 0 and "451x300" in r.output and "checksum ok" in r.output
    r = run("decompress", plic_file, "-o", png, "--reference", sample_image)
    assert r.exit_code == 0, r.output
    assert Image.open(png).size == (451, 300)


def test_outputs_get_ordinary_file_permissions(run, sample_image, tmp_path):
    # written through a temporary file, but readable like any file the user creates
    old = os.umask(0o022)
    try:
        plic_file, png = tmp_path / "c.plic", tmp_path / "c.png"
        assert run("compress", sample_image, "-o", plic_file).exit_code == 0
        assert run("decompress", plic_file, "-o", png).exit_code == 0
    finally:
        os.umask(old)
    assert oct(plic_file.stat().st_mode & 0o777) == oct(0o644)
    assert oct(png.stat().st_mode & 0o777) == oct(0o644)


def test_folders_in_batch_with_summary(run, sample_image, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    im = Image.open(sample_image)
    im.save(src / "a.png")
    im.crop((0, 0, 100, 80)).save(src / "sub" / "b.png")
    r = run("compress", src, "-o", tmp_path / "out", "--quality", 2)
    assert r.exit_code == 0, r.output
    assert "2 image(s), mean" in r.output and "PSNR" in r.output
    assert (tmp_path / "out" / "sub" / "b.plic").exists()
    r = run("decompress", tmp_path / "out", "-o", tmp_path / "dec", "--reference", src)
    assert r.exit_code == 0, r.output
    assert "2 image(s)" in r.output and "PSNR" in r.output
    assert Image.open(tmp_path / "dec" / "sub" / "b.png").size == (100, 80)


def test_missing_and_unreadable_inputs(run, tmp_path):
    _one_line_error(run("compress", tmp_path / "nope.png", "-o", tmp_path / "x.plic"), "no such file")
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    _one_line_error(run("compress", bad, "-o", tmp_path / "x.plic"), "not an image")
    assert not (tmp_path / "x.plic").exists()
    _one_line_error(run("decompress", tmp_path / "nope.plic", "-o", tmp_path / "y.png"), "no such file")
    _one_line_error(run("info", tmp_path / "nope.plic"), "no such file")


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda d: d[: len(d) // 2], "checksum mismatch"),
        (lambda d: d[:-10] + b"0123456789", "checksum mismatch"),
        (lambda d: os.urandom(500), "wrong magic"),
        (lambda d: b"GIF89a" + d[6:], "wrong magic"),
        (lambda d: d[:4] + b"\x07" + d[5:], "version 7"),
        (lambda d: b"", "wrong magic"),
    ],
)
def test_damaged_plic_files(run, sample_plic, tmp_path, content, message):
    f = tmp_path / "d.plic"
    f.write_bytes(content(sample_plic))
    _one_line_error(run("decompress", f, "-o", tmp_path / "d.png"), message)
    assert not (tmp_path / "d.png").exists()
    _one_line_error(run("info", f), message)


def test_mismatched_model_is_refused(run, sample_plic, tmp_path):
    import torch

    from plic import zoo
    from plic.models import MeanScaleHyperprior

    torch.manual_seed(5)
    other = tmp_path / "other.safetensors"
    zoo.save_weights(MeanScaleHyperprior(N=32, M=48, lambda_min=0.0018, lambda_max=0.0932), other)
    f = tmp_path / "s.plic"
    f.write_bytes(sample_plic)
    r = CliRunner().invoke(main, ["decompress", str(f), "-o", str(tmp_path / "s.png"), "--model-path", str(other)])
    _one_line_error(r, "other 'hyperprior' weights")


def test_existing_output_is_never_overwritten_silently(run, sample_image, tmp_path):
    out = tmp_path / "keep.plic"
    out.write_bytes(b"precious")
    _one_line_error(run("compress", sample_image, "-o", out), "exists")
    assert out.read_bytes() == b"precious"
    assert run("compress", sample_image, "-o", out, "--force").exit_code == 0
    _one_line_error(run("compress", sample_image, "-o", sample_image, "--force"), "overwrite the input")


def test_full_disk_leaves_no_partial_file(run, sample_image, tmp_path, monkeypatch):
    import plic.files as io_mod

    class FullFile:
        def __init__(self, fd, mode):
            self.fd = fd

        def __enter__(self):
            return self

        def __exit__(self, *a):
            os.close(self.fd)

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fdopen", lambda fd, mode: FullFile(fd, mode))
    _one_line_error(run("compress", sample_image, "-o", tmp_path / "f.plic"), "No space left")
    assert list(tmp_path.iterdir()) == []


def test_bad_options(run, sample_image, tmp_path):
    _one_line_error(run("compress", sample_image, "-o", tmp_path / "a.plic", "--lambda", 5), "outside")
    _one_line_error(run("compress", sample_image, "-o", tmp_path / "a.plic", "--model", "nope"), "nope")
    _one_line_error(run("compress", sample_image, "-o", tmp_path / "a.plic", "--bpp", 0.2, "-q", 3), "one of")
    _one_line_error(run("compress", sample_image, "-o", tmp_path / "a.plic", "--bpp", 40), "out of this model's reach")
    _one_line_error(run("compress", sample_image, "-o", tmp_path / "a.plic", "--bpp", -1), "--bpp must be")
    assert not (tmp_path / "a.plic").exists()
    r = run("compress", sample_image, "--quality", 11)
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_real_process_exit_status_and_no_traceback(tmp_path):
    """Through the installed entry point, as a user runs it."""
    bad = tmp_path / "r.plic"
    bad.write_bytes(b"PLIC\x01garbage")
    p = subprocess.run([sys.executable, "-m", "plic", "decompress", str(bad), "-o", str(tmp_path / "r.png")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == ["plic: checksum mismatch: the file is corrupted or truncated"]
    assert not (tmp_path / "r.png").exists()


def _noise_images(folder, size: int, count: int = 2):
    """A training folder of ``count`` random RGB images, ``size`` pixels square."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_train_cli_small_run(tmp_path):
    d = _noise_images(tmp_path / "imgs", 80)
    r = CliRunner().invoke(main, ["train", "--lambda", "0.0067", "--data", str(d), "--out", str(tmp_path / "run"),
                                  "--steps", "3", "--batch-size", "2", "--crop", "64", "--N", "16", "--M", "24",
                                  "--eval-every", "0", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "model.safetensors").exists()
    r = CliRunner().invoke(main, ["train", "--data", str(d), "--out", str(tmp_path / "r2")])
    _one_line_error(r, "exactly one of --lambda or --lambda-range")
    r = CliRunner().invoke(main, ["train", "--recipe", "grow-latent", "--lambda", "0.0067", "--data", str(d),
                                  "--out", str(tmp_path / "r3")])
    _one_line_error(r, "--recipe grow-latent needs --recipe-arg free_from=VALUE")
    assert not (tmp_path / "r3").exists()
    r = CliRunner().invoke(main, ["train", "--recipe", "st-lic", "--recipe-arg", "foo=1", "--lambda", "0.0067",
                                  "--data", str(d), "--out", str(tmp_path / "r4")])
    _one_line_error(r, "--recipe st-lic has no setting 'foo'")
    assert not (tmp_path / "r4").exists()


def test_train_cli_refuses_an_init_file_that_is_not_plic_weights_in_one_line(tmp_path):
    """--init's header is read once, up front: a foreign, damaged or missing file stops the run before its folder."""
    import torch
    from safetensors.torch import save_file

    d = _noise_images(tmp_path / "imgs", 8)
    save_file({"a": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    save_file({"a": torch.zeros(1)}, str(tmp_path / "damaged.safetensors"),
              metadata={"plic_model": "hyperprior", "plic_config": "{not json"})
    (tmp_path / "noise.safetensors").write_bytes(b"\x00" * 64)
    for name, message in (("foreign", "not a plic weight file (no model name in its metadata)"),
                          ("damaged", "its model configuration (metadata plic_config) is damaged"),
                          ("noise", "not a readable safetensors weight file"),
                          ("missing", "no such weight file")):
        r = CliRunner().invoke(main, ["train", "--lambda", "0.0067", "--data", str(d), "--steps", "1", "--eval-every",
                                      "0", "--init", str(tmp_path / f"{name}.safetensors"), "--out", str(tmp_path / name)])
        _one_line_error(r, message)
        assert not (tmp_path / name).exists()


def test_train_cli_elic_channel_groups(tmp_path):
    """--groups sets ELIC's uneven channel groups (so a small M can have a channel context); bad ones are refused."""
    from plic import zoo

    d = _noise_images(tmp_path / "imgs", 64)
    base = ["train", "--lambda", "0.0067", "--data", str(d), "--steps", "1", "--batch-size", "1", "--crop", "64",
            "--N", "16", "--M", "24", "--eval-every", "0", "--no-progress"]
    r = CliRunner().invoke(main, base + ["--model", "elic", "--groups", "8,16", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    config = zoo.model_config(zoo.read_metadata(tmp_path / "run" / "model.safetensors"))
    assert config["groups"] == [8, 16]
    for args, message in ((["--model", "elic", "--groups", "8,8"], "must be positive and sum to --M 24"),
                          (["--model", "elic", "--groups", "8,x"], "comma-separated channel counts"),
                          (["--groups", "8,16"], "--groups is an option of the elic models, not of 'hyperprior'")):
        r = CliRunner().invoke(main, base + args + ["--out", str(tmp_path / "bad")])
        _one_line_error(r, message)
        assert not (tmp_path / "bad").exists()


def test_train_builds_a_new_hyperprior_at_the_shipped_width_and_a_resumed_run_at_its_own(tmp_path):
    """Without --N/--M a new hyperprior is N=64/M=96 (the width measured best at equal CPU time), not the
    constructor's 128/192; a resumed run keeps the width it was started with."""
    import json

    from plic import zoo

    d = _noise_images(tmp_path / "imgs", 64)
    base = ["train", "--lambda", "0.0067", "--data", str(d), "--batch-size", "1", "--crop", "64",
            "--eval-every", "0", "--no-progress"]
    r = CliRunner().invoke(main, base + ["--steps", "1", "--out", str(tmp_path / "new")])
    assert r.exit_code == 0, r.output
    model = zoo.load_weights(tmp_path / "new" / "model.safetensors")
    assert (model.N, model.M) == (64, 96)
    r = CliRunner().invoke(main, base + ["--steps", "1", "--N", "16", "--M", "24", "--out", str(tmp_path / "small")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, base + ["--steps", "2", "--out", str(tmp_path / "small")])  # resumed, no --N/--M
    assert r.exit_code == 0, r.output
    model = zoo.load_weights(tmp_path / "small" / "model.safetensors")
    assert (model.N, model.M) == (16, 24)
    # a run folder from before this default recorded no width: it was, and stays, the constructor's 128/192
    r = CliRunner().invoke(main, base + ["--steps", "1", "--N", "128", "--M", "192", "--out", str(tmp_path / "old")])
    assert r.exit_code == 0, r.output
    state = json.loads((tmp_path / "old" / "state.json").read_text())
    state["config"]["model_args"] = {k: v for k, v in state["config"]["model_args"].items() if k not in ("N", "M")}
    (tmp_path / "old" / "state.json").write_text(json.dumps(state))
    r = CliRunner().invoke(main, base + ["--steps", "2", "--out", str(tmp_path / "old")])
    assert r.exit_code == 0, r.output
    model = zoo.load_weights(tmp_path / "old" / "model.safetensors")
    assert (model.N, model.M) == (128, 192)


def test_a_bad_file_in_a_folder_does_not_stop_the_batch(run, sample_image, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.open(sample_image).save(src / "good.png")
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    r = run("compress", src, "-o", tmp_path / "out")
    assert r.exit_code == 1
    assert (tmp_path / "out" / "good.plic").exists() and not (tmp_path / "out" / "broken.plic").exists()
    assert "1 image(s), mean" in r.output and "1 of 2 file(s) failed" in r.output
    assert "Traceback" not in r.output


def test_file_from_an_unknown_model(run, sample_plic, tmp_path):
    from plic import bitstream

    f = bitstream.parse(sample_plic)
    f.header.model = "future-model"
    p = tmp_path / "u.plic"
    p.write_bytes(bitstream.pack(f))
    _one_line_error(run("decompress", p, "-o", tmp_path / "u.png", model=False), "does not know")


def test_compress_with_refinement_reports_before_and_after(run, sample_image, tmp_path):
    out = tmp_path / "r.plic"
    r = run("compress", sample_image, "-o", out, "--refine", "sga+", "--steps", 3, "-q", 3)
    assert r.exit_code == 0, r.output
    assert "before:" in r.output and "after:" in r.output
    assert run("decompress", out, "-o", tmp_path / "r.png").exit_code == 0


def test_refinement_settings_errors(run, sample_image, tmp_path):
    out = tmp_path / "x.plic"
    _one_line_error(run("compress", sample_image, "-o", out, "--optimize-for", "lpips"), "need --refine")
    r = run("compress", sample_image, "-o", out, "--refine", "sga+", "--steps", -5)
    assert r.exit_code == 2 and "--steps" in r.output and "Traceback" not in r.output
    _one_line_error(run("compress", sample_image, "-o", out, "--refine", "snic", "--bpp", 30, "--steps", 1),
                    "nearest")
    _one_line_error(run("compress", sample_image, "-o", out, "--target-psnr", 5), "--target-psnr must be")
    assert not out.exists()


def test_missing_metric_weights_are_reported_before_any_work(tmp_path, sample_image, tiny_model_path):
    env = dict(os.environ, PLIC_CACHE=str(tmp_path / "empty-cache"))
    out = tmp_path / "m.plic"
    p = subprocess.run([sys.executable, "-m", "plic", "compress", str(sample_image), "-o", str(out),
                        "--model-path", str(tiny_model_path), "--refine", "sga+", "--optimize-for", "lpips"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1 and "no vgg16 weights" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


def test_perceptual_needs_a_shipped_variant(run, sample_image, tmp_path):
    out = tmp_path / "p.plic"
    _one_line_error(run("compress", sample_image, "-o", out, "--perceptual", "-m", "elic", model=False),
                    "no perceptual variant of 'elic'")
    _one_line_error(run("compress", sample_image, "-o", out, "--perceptual"), "--perceptual picks shipped weights")
    assert not out.exists()


def test_a_perceptual_refinement_optimises_lpips_unless_told(run, sample_image, tmp_path):
    """--perceptual --refine aims at LPIPS by default (an MSE objective undoes the perceptual model);
    --optimize-for still picks, and a PSNR target stays an MSE objective."""
    out = tmp_path / "p.plic"
    r = run("compress", sample_image, "-o", out, "--perceptual", "--refine", "sga+", "--steps", 1, model=False)
    assert r.exit_code == 0, r.output
    assert "lpips " in r.output and "dB PSNR" not in r.output.split("before:")[1]
    r = run("compress", sample_image, "-o", out, "-f", "--perceptual", "--refine", "sga+", "--steps", 1,
            "--optimize-for", "mse", model=False)
    assert r.exit_code == 0 and "lpips " not in r.output, r.output
    r = run("compress", sample_image, "-o", out, "-f", "--perceptual", "--refine", "snic", "--steps", 1,
            "--target-psnr", 27, model=False)
    assert r.exit_code == 0 and "drop --optimize-for" not in r.output, r.output
    assert "dB PSNR" in r.output.split("before:")[1]  # a PSNR target: the MSE objective
    _one_line_error(run("compress", sample_image, "-o", out, "-f", "--perceptual", "--refine", "sga+",
                        "--optimize-for", "mse", "--precision", "bf16", model=False), "mse has none")
    r = run("compress", sample_image, "-o", out, "-f", "--perceptual", model=False)  # no refinement: no objective
    assert r.exit_code == 0, r.output
