"""Weight files: fingerprints, half precision, registry, bad files."""

from __future__ import annotations

import json

import pytest
import torch

from plic import zoo
from plic.errors import PlicError
from plic.models import MeanScaleHyperprior
from plic.registry import MODELS, build_model


def test_registry_knows_both_architectures():
    assert {"hyperprior", "elic"} <= set(MODELS)
    with pytest.raises(PlicError, match="unknown model"):
        build_model("nope")


def test_half_precision_file_loads_to_the_fingerprinted_model(tmp_path):
    torch.manual_seed(0)
    m = MeanScaleHyperprior(N=16, M=24)
    fp = zoo.save_weights(m, tmp_path / "w.safetensors", half=True)
    loaded = zoo.load_weights(tmp_path / "w.safetensors")
    assert loaded.fingerprint == fp
    assert loaded.config() == m.config()
    # the CDF tables come from the file, not recomputed: identical buffers
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_fingerprint_changes_with_any_weight():
    torch.manual_seed(0)
    m = MeanScaleHyperprior(N=16, M=24)
    a = zoo.fingerprint(m.state_dict())
    with torch.no_grad():
        m.g_s[0].weight[0, 0, 0, 0] += 1e-3
    assert zoo.fingerprint(m.state_dict()) != a


def test_bad_weight_files_give_clear_errors(tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(PlicError, match="not a readable safetensors"):
        zoo.load_weights(p)
    with pytest.raises(PlicError, match="no such weight file"):
        zoo.load_weights(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(PlicError, match="not a plic weight file"):
        zoo.load_weights(tmp_path / "foreign.safetensors")
    save_file({"a": torch.zeros(1)}, str(tmp_path / "wrong.safetensors"),
              metadata={"plic_model": "hyperprior", "plic_config": "{}"})
    with pytest.raises(PlicError, match="do not fit"):
        zoo.load_weights(tmp_path / "wrong.safetensors")


def test_models_without_shipped_weights_say_so():
    assert "elic" not in zoo.PRETRAINED  # registered, trained or imported by the user, not shipped
    with pytest.raises(PlicError, match="no shipped weights"):
        zoo.load_model("elic")


def test_shipped_weights_stay_under_40_mb_and_perceptual_variants_decode_like_their_base():
    files = [zoo.shipped_path(name) for name in zoo.PRETRAINED]
    assert all(f.is_file() for f in files)
    assert sum(f.stat().st_size for f in files) < 40e6
    for base, variant in zoo.PERCEPTUAL.items():
        # the same architecture as the weights shipped under the base's name (since the sixteenth session the
        # name "hyperprior" holds a hyperprior-checkerboard)
        architecture = zoo.read_metadata(zoo.shipped_path(base))["plic_model"]
        assert variant in zoo.PRETRAINED and zoo.read_metadata(zoo.shipped_path(variant))["plic_model"] == architecture
        v, b = zoo.load_model(variant), zoo.load_model(base)
        # a finetuned codec of the same architecture: no post_filter, so it decodes at the base model's speed
        assert v.post_filter is None and v.config()["N"] == b.config()["N"] and v.config()["M"] == b.config()["M"]
        training = json.loads(zoo.read_metadata(zoo.shipped_path(variant))["plic_training"])
        recipes = [stage.get("recipe") for stage in training["stages"]]
        assert "po-elic" in recipes
        # after its perceptual finetune only the entropy model trained: the transforms are po-elic's
        last = len(recipes) - 1 - recipes[::-1].index("po-elic")
        assert all(s["recipe_args"].get("train_only") == "latent_codec" for s in training["stages"][last + 1:])


def test_shipped_ladders_chain_rungs_of_one_architecture_that_meet_at_their_switches():
    from plic.ladder import CodecLadder, shipped_codec

    # each rung trained for its ladder's objective: the perceptual pair finetuned by PO-ELIC, the default's for MSE
    objective = {"hyperprior": "rd", "hyperprior-perceptual": "po-elic"}
    assert set(zoo.LADDERS) == set(objective)
    assert zoo.LADDERS["hyperprior"] == (("hyperprior-low", pytest.approx(0.0058627)), ("hyperprior-mid", pytest.approx(0.06)))
    assert zoo.LADDERS["hyperprior-perceptual"] == (("hyperprior-perceptual-low", pytest.approx(0.003)),)
    for name, below in zoo.LADDERS.items():
        top = zoo.load_model(name)
        rungs = [zoo.load_model(n) for n, _ in below]
        for rung, (rung_name, switch), upper in zip(rungs, below, [*rungs[1:], top]):
            assert rung.registry_name == top.registry_name and rung.post_filter is None  # decodes at the same speed
            assert upper.lambda_min <= switch <= rung.lambda_max and rung.lambda_ref == top.lambda_ref
            stages = json.loads(zoo.read_metadata(zoo.shipped_path(rung_name))["plic_training"])["stages"]
            recipes = [s.get("recipe") for s in stages]
            assert objective[name] in recipes and (name == "hyperprior-perceptual" or "po-elic" not in recipes)
            # the rung's last stage trained its own range only (what makes it better there than the model above)
            assert stages[-1]["lambda_range"] == [rung.lambda_min, rung.lambda_max]
            assert rung.lambda_max < top.lambda_max
        ladder = shipped_codec(name)
        assert isinstance(ladder, CodecLadder) and ladder.lambda_range == (rungs[0].lambda_min, top.lambda_max)
        # --quality 1..8 over the whole ladder: for --perceptual the range the single model had, 1e-4..0.03
        assert ladder.resolve_lambda(quality=1) == pytest.approx(rungs[0].lambda_min, rel=1e-6)
        assert ladder.resolve_lambda(quality=8) == pytest.approx(top.lambda_max, rel=1e-6)
        assert ladder.pick(ladder.resolve_lambda(quality=1)) is ladder.rungs[0]
        assert shipped_codec(name, ladder=False).model.fingerprint == top.fingerprint  # one rung, for a decoder


def test_compressai_is_the_same_package_without_its_heavy_init():
    """plic imports compressai's coding modules without datasets/torch_geometric; the rest loads on use."""
    import compressai

    import plic  # noqa: F401

    assert compressai.get_entropy_coder() in compressai.available_entropy_coders()
    assert compressai.__version__.startswith("1.2")
    from compressai.datasets import ImageFolder  # an attribute plic never imported still works
    from compressai.zoo import bmshj2018_hyperprior

    assert ImageFolder is compressai.datasets.ImageFolder and callable(bmshj2018_hyperprior)


def test_weight_files_record_their_fingerprint(tmp_path, tiny_model_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from plic import zoo

    model = zoo.load_weights(tiny_model_path)
    assert zoo.stored_fingerprint(tiny_model_path) == model.fingerprint
    for name in zoo.PRETRAINED:  # the decoder tells shipped variants apart without loading them
        assert zoo.stored_fingerprint(zoo.shipped_path(name)) == zoo.load_model(name).fingerprint
    with safe_open(str(tiny_model_path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 10)
    tensors[key] = tensors[key] + 1  # damaged weights under an intact header
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(PlicError, match="do not match the fingerprint"):
        zoo.load_weights(tmp_path / "bad.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(PlicError, match="not a readable safetensors weight file"):
        zoo.read_metadata(tmp_path / "junk.safetensors")


def test_files_from_before_the_post_filter_rename_still_load(tmp_path):
    """ST-LIC's post-filter was saved as "refiner.*" with config key "refiner"; same weights, same fingerprint."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = MeanScaleHyperprior(N=16, M=24, lambda_min=0.002, lambda_max=0.05, post_filter=8)
    new = tmp_path / "new.safetensors"
    zoo.save_weights(model, new)
    meta = zoo.read_metadata(new)
    cfg = json.loads(meta["plic_config"])
    cfg["refiner"] = cfg.pop("post_filter")
    old = tmp_path / "old.safetensors"
    tensors = {k.replace("post_filter.", "refiner.", 1): v for k, v in load_file(str(new)).items()}
    save_file(tensors, str(old), metadata={**meta, "plic_config": json.dumps(cfg)})
    a, b = zoo.load_weights(new), zoo.load_weights(old)
    assert b.post_filter is not None and a.fingerprint == b.fingerprint
    assert zoo.model_config(zoo.read_metadata(old))["post_filter"] == 8  # what --init reads
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
