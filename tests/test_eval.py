"""plic eval / plot / bdrate / bench end to end on two small images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from plic.cli import main
from plic.eval.report import bd_rates, collect, curve


@pytest.fixture(scope="module")
def images(tmp_path_factory, sample_image) -> Path:
    d = tmp_path_factory.mktemp("imgs")
    im = Image.open(sample_image).convert("RGB")
    im.crop((0, 0, 256, 256)).save(d / "left.png")
    im.crop((190, 40, 446, 296)).save(d / "right.png")
    return d


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def evaluated(images, tiny_model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "res"
    r = invoke("eval", "--data", images, "--codecs", f"plic:{tiny_model_path},jpeg,webp", "--metrics", "psnr,ms-ssim,fd-vgg16",
               "--out", out, "--anchor", "jpeg", "--points", "5", "--quiet")
    assert r.exit_code == 0, r.output
    r2 = invoke("eval", "--data", images, "--codecs", "jpeg,webp", "--metrics", "psnr,ms-ssim,fd-vgg16",
                "--out", out, "--anchor", "jpeg", "--targets", "0.4", "--no-sweep", "--quiet")
    assert r2.exit_code == 0, r2.output
    return out, r.output


def test_every_point_is_a_real_file_and_its_size(evaluated, images):
    out, output = evaluated
    points = sorted((out / "points").glob("*/*/*.json"))
    # 5 settings per codec, and a 0.4-bpp target for jpeg and webp, on two images
    assert len(points) == 2 * (3 * 5 + 2)
    for p in points[::7]:
        point = json.loads(p.read_text())
        files = list((out / "files" / p.parent.parent.name / p.parent.name).glob(f"{p.stem}.*"))
        assert len(files) == 1 and files[0].stat().st_size == point["bytes"]
        assert point["bpp"] == pytest.approx(8 * point["bytes"] / (256 * 256))
        assert set(point["metrics"]) == {"psnr", "ms-ssim"} and point["encode_s"] > 0 and point["decode_s"] > 0
    assert "2 images, 3 codecs, 30 points (30 computed, 0 cached)" in output


def test_target_bpp_points_land_near_the_target(evaluated):
    out, _ = evaluated
    for codec in ("jpeg", "webp"):
        for p in (out / "points" / codec / "bpp0.4").glob("*.json"):
            assert json.loads(p.read_text())["bpp"] == pytest.approx(0.4, rel=0.25)


def test_rerun_reuses_points_and_adds_only_missing_metrics(evaluated, images, tiny_model_path):
    out, _ = evaluated
    before = {p: p.stat().st_mtime_ns for p in (out / "files").rglob("*.*")}
    r = invoke("eval", "--data", images, "--codecs", "jpeg", "--metrics", "psnr,ms-ssim,fd-vgg16", "--out", out,
               "--anchor", "jpeg", "--targets", "0.4", "--points", "5", "--quiet")
    assert "12 points (0 computed, 12 cached)" in r.output
    # an interrupted run leaves some points missing: only those are redone, from the kept files
    victim = out / "points" / "jpeg" / "q40" / "left.json"
    victim.unlink()
    r = invoke("eval", "--data", images, "--codecs", "jpeg", "--metrics", "psnr,psnr-y,fd-vgg16", "--out", out,
               "--anchor", "jpeg", "--points", "5", "--quiet")
    assert "(10 computed, 0 cached)" in r.output  # psnr-y is new everywhere
    # only the lost point's image was coded again
    assert [p.name for p, t in before.items() if p.stat().st_mtime_ns != t] == ["left.jpg"]
    assert json.loads(victim.read_text())["metrics"].keys() == {"psnr", "psnr-y"}
    point = json.loads((out / "points" / "jpeg" / "q95" / "right.json").read_text())
    assert set(point["metrics"]) == {"psnr", "ms-ssim", "psnr-y"}


def test_summary_bd_rate_and_plots(evaluated):
    out, _ = evaluated
    md = (out / "summary.md").read_text()
    assert "BD-rate against jpeg" in md and "| webp |" in md and "0.075" in md
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bd_rate"]["jpeg"]["psnr"] == pytest.approx(0.0, abs=1e-9)
    # webp beats jpeg 4:2:0 on these photos at equal PSNR
    assert summary["bd_rate"]["webp"]["psnr"] < 0
    fd = [r["fd-vgg16"] for r in summary["curves"]["jpeg"].values() if "fd-vgg16" in r]
    assert len(fd) >= 5 and max(fd) > min(fd) >= 0
    assert (out / "plots" / "rd-psnr.png").stat().st_size > 10_000
    r = invoke("bdrate", out, "--anchor", "jpeg", "--metrics", "psnr,fd-vgg16")
    assert r.exit_code == 0 and "webp" in r.output and "+0.00" in r.output
    r = invoke("plot", out)
    assert r.exit_code == 0 and "rd-ms-ssim.png" in r.output


def test_curves_keep_the_pareto_front_and_respect_direction():
    rows = {"a": {"bpp": 0.1, "lpips-alex": 0.5}, "b": {"bpp": 0.2, "lpips-alex": 0.3},
            "c": {"bpp": 0.3, "lpips-alex": 0.35}, "d": {"bpp": 0.4, "lpips-alex": 0.2}}
    r, m = curve(rows, "lpips-alex")
    assert list(r) == [0.1, 0.2, 0.4] and list(m) == [0.5, 0.3, 0.2]


def test_a_codec_without_a_sweep_is_drawn_through_its_target_points():
    swept = {"q1": {"bpp": 0.1, "psnr": 25.0}, "q2": {"bpp": 0.3, "psnr": 29.0},
             "bpp0.2": {"bpp": 0.2, "psnr": 27.5, "target_bpp": 0.2}}
    targets_only = {"bpp0.15": {"bpp": 0.15, "psnr": 27.0, "target_bpp": 0.15},
                    "bpp0.25": {"bpp": 0.25, "psnr": 28.8, "target_bpp": 0.25}}
    assert list(curve(swept, "psnr")[0]) == [0.1, 0.3]  # a sweep: target points stay out
    assert list(curve(targets_only, "psnr")[0]) == [0.15, 0.25]
    table = bd_rates({"curves": {"a": swept, "b": targets_only}}, "a", ["psnr"])
    assert table["b"]["psnr"] is not None and table["b"]["psnr"] < 0  # b is above a's line


def test_bad_inputs_give_one_line(tmp_path, images, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no FID Inception weights here
    monkeypatch.delenv("PLIC_INCEPTION_WEIGHTS", raising=False)
    for args, message in [
        (["eval", "--data", tmp_path / "nope", "--codecs", "jpeg", "--out", tmp_path / "o"], "no such file or folder"),
        (["eval", "--data", images, "--codecs", "jpeg,mp3", "--out", tmp_path / "o"], "unknown codec"),
        (["eval", "--data", images, "--codecs", "jpeg", "--metrics", "psnr,butteraugli", "--out", tmp_path / "o"],
         "unknown metric"),
        (["bdrate", tmp_path], "not a plic eval folder"),
        (["eval", "--data", images, "--codecs", "jpeg", "--metrics", "psnr,fid", "--out", tmp_path / "o"],
         "PLIC_INCEPTION_WEIGHTS"),
    ]:
        r = CliRunner().invoke(main, [str(a) for a in args])
        assert r.exit_code == 1, r.output
        assert message in r.output and "Traceback" not in r.output
        assert not (tmp_path / "o" / "points").exists()


def test_bench_times_both_decoders_next_to_compressai_and_classical_codecs(images, tiny_model_path, tmp_path):
    out = tmp_path / "bench.json"
    r = invoke("bench", images, "--model-path", tiny_model_path, "--repeat", "1", "--warmup", "0",
               "--compare", "compressai,webp", "--json", out)
    assert r.exit_code == 0, r.output
    rows = json.loads(out.read_text())
    coders = [x["coder"] for x in rows]
    assert coders == ["plic", "plic --exact", "compressai", "webp"] * 2
    plic = [x for x in rows if x["coder"].startswith("plic")]
    # both timed (not compared: single runs on a loaded machine need not keep the part under the whole)
    assert all(x["entropy_encode_s"] > 0 and x["encode_s"] > 0 for x in plic)
    assert [x["exact"] for x in plic] == [False, True] * 2
    twin = [x for x in rows if x["coder"] == "compressai"]
    for a, b in zip(plic[::2], twin, strict=True):
        # CompressAI's strings are plic's payloads: the file adds only plic's header and framing
        assert 0 <= a["bytes"] - b["bytes"] < 100
    assert all(x["decode_vs_compressai"] > 0 for x in rows)
    assert "of CompressAI's" in r.output
    r = invoke("bench", images, "--model-path", tiny_model_path, "--compare", "nosuch")
    assert r.exit_code == 1 and "unknown classical codec" in r.output


def test_metric_values_in_points_match_direct_computation(evaluated, images):
    from plic.eval.codecs import classical_codec
    from plic.metrics.pixel import psnr_rgb

    out, _ = evaluated
    ref = np.array(Image.open(images / "left.png").convert("RGB"))
    data = (out / "files" / "jpeg" / "q40" / "left.jpg").read_bytes()
    point = json.loads((out / "points" / "jpeg" / "q40" / "left.json").read_text())
    assert point["metrics"]["psnr"] == pytest.approx(psnr_rgb(ref, classical_codec("jpeg").decode(data)))
    assert collect(out)["curves"]["jpeg"]["q95"]["n"] == 2


def test_a_metric_scored_on_only_some_images_is_left_out_of_the_means(evaluated, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(evaluated[0], out)
    point_file = out / "points" / "jpeg" / "q95" / "left.json"
    point = json.loads(point_file.read_text())
    del point["metrics"]["psnr"]
    point_file.write_text(json.dumps(point))
    curves = collect(out)["curves"]["jpeg"]
    assert "psnr" not in curves["q95"] and "psnr" in curves["q40"]


def test_points_of_other_weights_are_coded_again(images, tmp_path, tiny_model_path):
    """New weights under the same model name must not hide behind cached points."""
    import torch

    from plic import zoo
    from plic.models import MeanScaleHyperprior

    weights = tmp_path / "w.safetensors"
    weights.write_bytes(tiny_model_path.read_bytes())
    out = tmp_path / "res"
    args = ("eval", "--data", images, "--codecs", f"plic:{weights}", "--metrics", "psnr,fd-vgg16", "--out", out,
            "--points", "2", "--quiet", "--limit", "1")
    assert "(2 computed, 0 cached)" in invoke(*args).output
    assert "(0 computed, 2 cached)" in invoke(*args).output
    point = next((out / "points").rglob("*.json"))
    first = json.loads(point.read_text())
    torch.manual_seed(99)  # other weights, same file name, same model name
    zoo.save_weights(MeanScaleHyperprior(N=32, M=48, lambda_min=0.0018, lambda_max=0.0932), weights)
    zoo._CACHE.clear()
    from plic.eval.learned import _load_codec

    _load_codec.cache_clear()
    assert "(2 computed, 0 cached)" in invoke(*args).output
    second = json.loads(point.read_text())
    assert second["version"] != first["version"]


def test_points_without_a_version_take_the_manifests_before_it_is_rewritten(images, tmp_path):
    """Folders written before points recorded versions: stamped once, from the manifest of their run."""
    out = tmp_path / "res"
    args = ("eval", "--data", images, "--codecs", "jpeg", "--metrics", "psnr", "--out", out,
            "--points", "2", "--quiet", "--limit", "1")
    invoke(*args)
    for p in (out / "points").rglob("*.json"):
        point = json.loads(p.read_text())
        del point["version"]  # as an older plic wrote it
        p.write_text(json.dumps(point))
    assert "(0 computed, 2 cached)" in invoke(*args).output  # same encoder: kept
    assert all("version" in json.loads(p.read_text()) for p in (out / "points").rglob("*.json"))
    manifest = json.loads((out / "manifest.json").read_text())
    for p in (out / "points").rglob("*.json"):
        point = json.loads(p.read_text())
        del point["version"]
        p.write_text(json.dumps(point))
    manifest["codecs"]["jpeg"]["version"] = "an older encoder"
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert "(2 computed, 0 cached)" in invoke(*args).output  # made by another version: coded again


def test_a_refined_codec_meets_a_target_with_one_optimisation(images, tmp_path, monkeypatch):
    import plic.eval.runner
    import plic.refine
    from plic import bitstream
    from plic.eval.learned import RefinedLearnedCodec, make_codec

    spec = "plic:hyperprior+snic-latent:mse:4"  # the shipped default (a ladder): a random model codes every lambda alike
    codec = make_codec(spec)
    assert isinstance(codec, RefinedLearnedCodec) and codec.refinement.steps == 4
    optimisations = []
    real_refine = plic.refine.refine_encode
    monkeypatch.setattr(plic.refine, "refine_encode", lambda *a, **k: optimisations.append(1) or real_refine(*a, **k))
    rgb = np.asarray(Image.open(images / "left.png").convert("RGB"))
    quality, data = codec.encode_to_bpp(rgb, 0.4)
    assert len(optimisations) == 1
    assert 8 * len(data) / rgb.shape[0] / rgb.shape[1] == pytest.approx(0.4, rel=0.05)
    # the knob reported is the quality of the lambda the file was coded at
    assert bitstream.parse(data).header.lmbda == pytest.approx(codec.codec.resolve_lambda(quality=quality), rel=1e-5)
    assert "+ snic-latent (mse, 4 steps" in codec.version() and "lr 0.005" in codec.version()
    assert make_codec("plic:hyperprior+sga+:mse:4").encode_to_bpp is None  # SGA+ keeps the lambda: bisected
    assert make_codec("plic:+snic-latent:mse:4").name == spec  # no model named: the default, as "plic:" alone
    for target, end in ((0.001, 1.0), (20.0, 8.0)):  # beyond the range: its nearest end, refined
        assert codec.encode_to_bpp(rgb, target)[0] == end

    def no_bisection(*a, **k):
        raise AssertionError("the knob was bisected")

    monkeypatch.setattr(plic.eval.runner, "encode_at_bpp", no_bisection)
    optimisations.clear()
    out = tmp_path / "res"
    r = invoke("eval", "--data", images, "--codecs", spec, "--metrics", "psnr", "--targets", "0.4", "--no-sweep",
               "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    points = sorted((out / "points").glob("*/bpp0.4/*.json"))
    assert len(points) == 2 and all(json.loads(p.read_text())["codec"] == spec for p in points)
    assert len(optimisations) == 2  # one per image


def test_a_refined_codec_names_its_precision(tiny_model_path):
    from plic.eval.learned import make_codec

    fp32, bf16 = (make_codec(f"plic:{tiny_model_path}+sga+:lpips:3{tail}") for tail in ("", ":bf16"))
    assert (fp32.refinement.precision, bf16.refinement.precision) == ("fp32", "bf16")
    assert "bf16" not in fp32.version() and "bf16" not in fp32.name  # the versions coded before precision existed
    assert "; bf16 loss network;" in bf16.version() and bf16.name.endswith(":3:bf16")
    assert make_codec(f"plic:{tiny_model_path}+sga+:lpips:3:fp32").version() == fp32.version()


def test_a_weights_path_may_hold_a_plan_name(tiny_model_path, tmp_path):
    """"+snic:" inside a folder name is part of the path when the model it would cut off does not exist."""
    import shutil

    from plic.eval.learned import make_codec

    odd = tmp_path / "a+snic:b" / "m.safetensors"
    odd.parent.mkdir()
    shutil.copy(tiny_model_path, odd)
    codec = make_codec(f"plic:{odd}+sga+:mse:3")
    assert (codec.refinement.plan, codec.refinement.steps, codec.spec) == ("sga+", 3, str(odd))


def test_a_refined_ladder_reports_the_quality_of_its_own_range(monkeypatch):
    from plic.eval.learned import RefinedLearnedCodec

    class Ladder:  # a lambda range that is no single rung's, as a ladder's is
        def resolve_lambda(self, quality):
            return 1e-4 * (0.03 / 1e-4) ** ((quality - 1) / 7)

    codec = RefinedLearnedCodec("x", "snic-latent")
    monkeypatch.setattr(RefinedLearnedCodec, "codec", Ladder())
    for q in (1.0, 2.5, 8.0):
        assert codec._quality_of(Ladder().resolve_lambda(q)) == pytest.approx(q, abs=1e-6)


def test_bad_refinements_give_one_line(images, tiny_model_path, tmp_path):
    from plic.eval.learned import make_codec

    assert type(make_codec(f"plic:{tiny_model_path}")).__name__ == "LearnedCodec"  # no "+": no refinement
    for tail, message in [("snic-latent:mse:x", "must be an integer"), ("snic-latent:mse:0", "1 or more"),
                          ("snic-latnet", "unknown refinement"),
                          ("sga+:lpips:3:fp8", "unknown precision"), ("sga+:mse:3:bf16", "mse has none"),
                          ("sga+:mse:3:bf16:x", "expected <plan>"),
                          ("snic-latent:butteraugli", "butteraugli")]:
        r = CliRunner().invoke(main, ["eval", "--data", str(images), "--codecs", f"plic:{tiny_model_path}+{tail}",
                                      "--out", str(tmp_path / "o")])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output


def test_merging_a_new_model_into_a_committed_report_carries_its_points_and_plots(tmp_path):
    """benchmarks/perceptual/kodak_eval_merge.py: a committed folder's points (points.jsonl) gain the new
    folder's, under the new names, and the merged table is drawn."""
    import subprocess
    import sys

    def point(codec, q, bpp, psnr):
        return {"image": "x.png", "codec": codec, "setting": f"q{q}", "knob": "quality", "knob_value": float(q),
                "target_bpp": None, "encode_s": 0.1, "decode_s": 0.1, "bpp": bpp, "metrics": {"psnr": psnr}}

    rates = (0.1, 0.2, 0.4, 0.8)
    base, new = tmp_path / "base", tmp_path / "new"
    committed = [point(c, q, b * k, 28 + 4 * np.log2(b / 0.1)) for c, k in (("anchor", 1.2), ("plic:m", 1.0))
                 for q, b in enumerate(rates, 1)]
    curves = {}
    for p in committed:
        curves.setdefault(p["codec"], {})[p["setting"]] = {"n": 1, "bpp": p["bpp"], "encode_s": 0.1, "decode_s": 0.1,
                                                           "target_bpp": None, "knob_value": p["knob_value"],
                                                           "psnr": p["metrics"]["psnr"]}
    base.mkdir()
    manifest = {"data": "d", "images": ["x.png"], "codecs": {c: {"label": c, "knob": "quality", "version": c}
                                                             for c in curves}, "metrics": ["psnr"], "machine": "m"}
    (base / "summary.json").write_text(json.dumps({"anchor": "anchor", "manifest": manifest, "curves": curves}))
    (base / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in committed))
    for q, b in enumerate(rates, 1):  # the new model, as plic eval leaves it: 10 % fewer bits
        d = new / "points" / "plic-m" / f"q{q}"
        d.mkdir(parents=True)
        (d / "x.json").write_text(json.dumps(point("plic:m", q, b * 0.9, 28 + 4 * np.log2(b / 0.1))))
    (new / "manifest.json").write_text(json.dumps({**manifest, "codecs": {"plic:m": manifest["codecs"]["plic:m"]}}))
    out = tmp_path / "out"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "perceptual" / "kodak_eval_merge.py"
    r = subprocess.run([sys.executable, str(script), str(base), str(new), "--rename-base", "plic:m=plic:m-old",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    merged = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()]
    assert sorted({p["codec"] for p in merged}) == ["anchor", "plic:m", "plic:m-old"] and len(merged) == 12
    assert [p["bpp"] for p in merged if p["codec"] == "plic:m"] == pytest.approx([b * 0.9 for b in rates])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bd_rate"]["plic:m"]["psnr"] == pytest.approx(-25, abs=0.5)  # 0.9 / 1.2 of the anchor's bits
    assert summary["bd_rate"]["plic:m-old"]["psnr"] == pytest.approx(100 * (1 / 1.2 - 1), abs=0.5)
    assert (out / "plots" / "rd-psnr.png").is_file()
    # under its committed name the new curve replaces the committed one, points and all
    r = subprocess.run([sys.executable, str(script), str(base), str(new), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    merged = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()]
    assert len(merged) == 8 and [p["bpp"] for p in merged if p["codec"] == "plic:m"] == pytest.approx([b * 0.9 for b in rates])
