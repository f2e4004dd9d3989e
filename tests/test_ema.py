"""plic.train.ema: the weight average the trainer evaluates and writes (--ema)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from plic import zoo
from plic.train.ema import WeightAverage


def test_average_follows_the_recurrence_and_swaps_back():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    avg = WeightAverage(net, 0.05)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    avg.update(net)
    assert torch.allclose(avg.shadow["weight"], start + 0.95)  # 0.05 * old + 0.95 * new
    big = WeightAverage(net, 0.999)
    assert big.current_decay() == pytest.approx(0.1)  # ramped: the start does not linger
    big.updates = 100_000
    assert big.current_decay() == 0.999
    live = net.weight.detach().clone()
    with avg.swapped_in(net):
        assert torch.allclose(net.weight, start + 0.95)
    assert torch.equal(net.weight, live)
    with pytest.raises(ValueError):
        WeightAverage(net, 1.0)


def test_trainer_writes_the_average_and_resumes_it_exactly(tmp_path, sample_image):
    from PIL import Image

    from plic.train.trainer import TrainConfig, Trainer

    folder = tmp_path / "img"
    folder.mkdir()
    Image.open(sample_image).convert("RGB").crop((0, 0, 160, 160)).save(folder / "a.png")
    cfg = TrainConfig(model="hyperprior", model_args={"N": 16, "M": 24}, lambda_min=0.002, lambda_max=0.05,
                      data=[str(folder)], steps=4, batch_size=2, crop=64, checkpoint_every=2, eval_every=0,
                      lr=1e-3, ema=0.5)
    Trainer(cfg, tmp_path / "a", log=lambda m: None).run(progress=False)
    Trainer(dataclasses.replace(cfg, steps=2), tmp_path / "b", log=lambda m: None).run(progress=False)
    Trainer(cfg, tmp_path / "b", log=lambda m: None).run(progress=False)
    wa = zoo.load_weights(tmp_path / "a" / "model.safetensors").state_dict()
    wb = zoo.load_weights(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # the average survives a resume exactly
    live = zoo.load_weights(tmp_path / "a" / "checkpoint.safetensors").state_dict()
    assert not torch.equal(live["g_a.0.weight"], wa["g_a.0.weight"])  # what was written is the average
    assert '"ema": 0.5' in zoo.read_metadata(tmp_path / "a" / "model.safetensors")["plic_training"]
