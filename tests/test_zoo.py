"""Weight files: fingerprints, half precision, registry, bad files."""

from __future__ import annotations

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


def test_models_without_shipped_weights_say_so(monkeypatch):
    monkeypatch.delitem(zoo.PRETRAINED, "elic")
    monkeypatch.setattr(zoo, "_CACHE", {})
    with pytest.raises(PlicError, match="no shipped weights"):
        zoo.load_model("elic")


def test_shipped_weights_stay_under_40_mb_and_perceptual_variants_carry_a_refiner():
    files = [zoo.shipped_path(name) for name in zoo.PRETRAINED]
    assert all(f.is_file() for f in files)
    assert sum(f.stat().st_size for f in files) < 40e6
    for base, variant in zoo.PERCEPTUAL.items():
        assert variant in zoo.PRETRAINED and zoo.read_metadata(zoo.shipped_path(variant))["plic_model"] == base
        assert zoo.load_model(variant).refiner is not None
