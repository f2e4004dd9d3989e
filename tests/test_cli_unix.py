"""Start-up, pipes and folders on all cores: the command line as a Unix tool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from PIL import Image

from plic import bitstream
from plic.cli import main


def _modules_loaded_by(args, tmp_path):
    """Which heavy modules a whole ``plic ARGS`` process imports (a fresh interpreter)."""
    code = (
        "import sys\n"
        "from plic.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('torch', 'compressai.entropy_models', 'numpy', 'PIL') if m in sys.modules), file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    return p.stderr.strip().splitlines()[-1], p.stdout


@pytest.mark.parametrize("args", [["--help"], ["compress", "--help"], ["train", "--help"], ["eval", "--help"]])
def test_help_imports_no_torch(args, tmp_path):
    loaded, out = _modules_loaded_by(args, tmp_path)
    assert "Usage" in out
    assert loaded == "[]", f"plic {' '.join(args)} imported {loaded}"


def test_info_parses_the_header_without_torch(tmp_path, sample_image):
    f = tmp_path / "s.plic"
    assert CliRunner().invoke(main, ["compress", str(sample_image), "-o", str(f), "-q", "2"]).exit_code == 0
    loaded, out = _modules_loaded_by(["info", str(f)], tmp_path)
    # quality 2 is below the default ladder's first switch: its low-rate rung wrote the file
    assert "checksum ok" in out and "(the shipped weights: hyperprior-low)" in out
    assert loaded == "[]", f"plic info imported {loaded}"


def _folder(tmp_path, sample_image, n=3):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    im = Image.open(sample_image)
    for i in range(n):
        im.crop((10 * i, 5 * i, 200 + 20 * i, 150 + 10 * i)).save((src / "sub" if i % 2 else src) / f"i{i}.png")
    return src


def test_folder_in_parallel_gives_the_serial_files(tiny_model_path, sample_image, tmp_path):
    src = _folder(tmp_path, sample_image)
    runner = CliRunner()
    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        r = runner.invoke(main, ["compress", str(src), "-o", str(out), "--model-path", str(tiny_model_path),
                                 "--exact", "-q", "3", "-j", str(jobs)])
        assert r.exit_code == 0, r.output
        assert "3 image(s), mean" in r.output
        outs[jobs] = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.plic")}
    assert len(outs[1]) == 3 and outs[1] == outs[2]
    dec = tmp_path / "dec"
    r = runner.invoke(main, ["decompress", str(tmp_path / "out2"), "-o", str(dec), "--model-path",
                             str(tiny_model_path), "-j", "2", "--reference", str(src)])
    assert r.exit_code == 0, r.output
    assert "3 image(s)" in r.output and "PSNR" in r.output
    assert Image.open(dec / "sub" / "i1.png").size == (210, 155)


def test_skip_existing_codes_only_what_is_missing(tiny_model_path, sample_image, tmp_path):
    src = _folder(tmp_path, sample_image)
    out = tmp_path / "out"
    args = ["compress", str(src), "-o", str(out), "--model-path", str(tiny_model_path), "-j", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    kept = out / "i0.plic"
    before = kept.stat().st_mtime_ns
    (out / "i2.plic").unlink()
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "exists (use --force to overwrite, or --skip-existing)" in r.output
    r = CliRunner().invoke(main, args + ["--skip-existing"])
    assert r.exit_code == 0, r.output
    assert "1 image(s), mean" in r.output and "(2 already there, skipped)" in r.output
    assert (out / "i2.plic").exists() and kept.stat().st_mtime_ns == before


def test_pipes_stdin_to_stdout(tiny_model_path, sample_image):
    cmd = [sys.executable, "-m", "plic"]
    model = ["--model-path", str(tiny_model_path)]
    enc = subprocess.run(cmd + ["compress", "-", "-o", "-", "-q", "3", *model], input=sample_image.read_bytes(),
                         capture_output=True, timeout=120)
    assert enc.returncode == 0, enc.stderr
    f = bitstream.parse(enc.stdout)  # standard output holds the file and nothing else
    assert (f.header.width, f.header.height) == (451, 300)
    assert b"bpp" in enc.stderr
    dec = subprocess.run(cmd + ["decompress", "-", "-o", "-", *model], input=enc.stdout, capture_output=True,
                         timeout=120)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run(cmd + ["decompress", "-", "-o", "-", *model], input=b"not a plic file",
                         capture_output=True, timeout=120)
    assert bad.returncode == 1 and bad.stdout == b""
    assert bad.stderr.decode().strip().startswith("plic: ")
    none = subprocess.run(cmd + ["compress", "-", *model], input=b"", capture_output=True, timeout=120)
    assert none.returncode == 1 and b"needs -o FILE" in none.stderr


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_folder_leaves_complete_files_and_resumes(tiny_model_path, sample_image, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    im = Image.open(sample_image)
    for i in range(12):
        im.rotate(i * 7).save(src / f"i{i:02d}.png")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "plic", "compress", str(src), "-o", str(out), "--model-path",
            str(tiny_model_path), "-j", "2", "--exact"]
    # a shell starts background jobs (`pytest ... &`) with SIGINT ignored, and a Python started that
    # way never installs its KeyboardInterrupt handler: the child gets Ctrl-C as a terminal's job would
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                         preexec_fn=_default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and not any(out.glob("*.plic")):
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert not list(out.glob("*.part")) and not list(out.glob(".*"))
    done = sorted(out.glob("*.plic"))
    assert 1 <= len(done) < 12
    for f in done:
        bitstream.parse(f.read_bytes())  # complete, checksum and all
    r = subprocess.run(args + ["--skip-existing"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{12 - len(done)} image(s), mean" in r.stderr and f"({len(done)} already there, skipped)" in r.stderr
    assert len(list(out.glob("*.plic"))) == 12


def test_cli_choices_are_the_library_tables():
    """The CLI spells its choices out (importing the tables would import torch); this ties them together."""
    import click

    from plic.cli import compress, train
    from plic.losses.distortion import DISTORTIONS
    from plic.recipes import RECIPES, check_args
    from plic.refine import PLANS
    from plic.refine.problem import PRECISIONS
    from plic.refine.rounding import METHODS

    check_args("rd", {})  # fills the recipe table
    assert compress._REFINE == ["none", *PLANS]
    assert compress._ROUNDING == list(METHODS)
    assert compress._METRICS == list(DISTORTIONS)
    assert compress._PRECISIONS == list(PRECISIONS)
    recipe = next(p for p in train.command.params if p.name == "recipe")
    assert isinstance(recipe.type, click.Choice) and sorted(recipe.type.choices) == sorted(RECIPES)
