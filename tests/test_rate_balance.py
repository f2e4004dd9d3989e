"""Rate balance: every rate of a variable-rate run weighs alike in the loss, and a resumed run is exact."""

from __future__ import annotations

import csv

import pytest
import torch

from plic.errors import PlicError
from plic.train.rate_balance import RateBalance
from plic.train.trainer import TrainConfig, Trainer


def _steady_loss(power: float, bottom: float, top: float):
    """The balanced loss of one item at each end of the default's range, and the items (with their
    gradients), once the running means have settled on those values."""
    balance = RateBalance(1e-4, 0.45, bins=4, power=power)
    lmbda = torch.tensor([1e-4, 0.45])
    for _ in range(3):
        balance.loss(lmbda, torch.tensor([bottom, top]))
    items = torch.tensor([bottom, top], requires_grad=True)
    loss = balance.loss(lmbda, items)
    loss.backward()
    return loss, items


def test_each_items_gradient_is_its_relative_loss_whatever_its_rate():
    # the top of the range's loss about a hundred times the bottom's, as for the default model
    loss, items = _steady_loss(1.0, 0.17, 16.5)
    # the gradient of each item is in proportion to 1 / its rate's mean loss: a 1 % better item at
    # either end lowers the loss alike (the plain mean's gradient is 1/2 for both: a unit of loss at
    # the top, where a unit is a small part of the loss, counts as much as one at the bottom)
    relative = (items.grad * items.detach()).tolist()
    assert relative[0] == pytest.approx(relative[1])
    assert items.grad[0] > 50 * items.grad[1]
    # in the usual units: with the means steady, the loss is their mean, here the plain batch mean
    assert float(loss) == pytest.approx((0.17 + 16.5) / 2)


def test_a_power_of_one_half_weighs_each_rate_by_the_square_root_of_its_mean_loss():
    loss, items = _steady_loss(0.5, 0.16, 16.0)
    # a hundredfold loss: a tenth of the gradient (the plain mean: the same, power 1: a hundredth)
    assert float(items.grad[0] / items.grad[1]) == pytest.approx(10.0)
    # and the same units as the plain mean's when the means are steady
    assert float(loss) == pytest.approx((0.16 + 16.0) / 2)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        RateBalance(1e-4, 0.45, power=2)


def test_running_means_bin_by_log_lambda_and_start_at_the_first_batch():
    balance = RateBalance(1e-4, 1e-2, bins=2)  # the bins split at 1e-3
    assert balance.bin_of(torch.tensor([1e-4, 9e-4, 1.1e-3, 1e-2])).tolist() == [0, 0, 1, 1]
    balance.update(torch.tensor([1e-4, 1e-2]), torch.tensor([1.0, 10.0]))
    assert balance.mean.tolist() == [1.0, 10.0]
    balance.update(torch.tensor([1e-4]), torch.tensor([2.0]))
    assert balance.mean.tolist() == pytest.approx([1.0 * 0.98 + 2.0 * 0.02, 10.0])


def _cfg(folder, steps, **recipe_args):
    return TrainConfig(model="hyperprior", model_args={"N": 16, "M": 24}, lambda_min=0.002, lambda_max=0.05,
                       data=[str(folder)], steps=steps, batch_size=2, crop=64, checkpoint_every=2, eval_every=0,
                       lr_milestones=[0.5], recipe_args=recipe_args)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    import numpy as np
    from PIL import Image

    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d


def test_a_balanced_run_resumes_exactly_and_trains_otherwise_than_a_plain_one(images, tmp_path):
    Trainer(_cfg(images, 4, balance_rates=1), tmp_path / "a", log=lambda m: None).run(progress=False)
    t = Trainer(_cfg(images, 4, balance_rates=1), tmp_path / "b", log=lambda m: None)
    for _ in range(2):
        t.train_step()
    t.save_checkpoint()
    t.train_step()  # lost at the "kill"
    Trainer(_cfg(images, 4, balance_rates=1), tmp_path / "b", log=lambda m: None).run(progress=False)
    Trainer(_cfg(images, 4), tmp_path / "plain", log=lambda m: None).run(progress=False)
    rows = {k: list(csv.DictReader(open(tmp_path / k / "train.csv"))) for k in ("a", "b", "plain")}
    assert [r["loss"] for r in rows["a"]][2:] == [r["loss"] for r in rows["b"]]
    from plic import zoo

    wa, wb, wp = (zoo.load_weights(tmp_path / k / "model.safetensors").state_dict() for k in ("a", "b", "plain"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # the same crops and lambdas, another objective: other weights, and the plain loss logged beside
    assert not all(torch.equal(wa[k], wp[k]) for k in wa)
    assert "term_rd" in rows["a"][0] and "term_rd" not in rows["plain"][0]


def test_a_run_resumes_with_the_objective_it_started_with(images, tmp_path):
    Trainer(_cfg(images, 2, balance_rates=1), tmp_path / "bal", log=lambda m: None).run(progress=False)
    with pytest.raises(PlicError, match="started with --recipe-arg balance_rates=1;"):
        Trainer(_cfg(images, 4), tmp_path / "bal", log=lambda m: None).run(progress=False)
    with pytest.raises(PlicError, match="started with --recipe-arg balance_rates=1;"):
        Trainer(_cfg(images, 4, balance_rates=0.5), tmp_path / "bal", log=lambda m: None).run(progress=False)
    Trainer(_cfg(images, 2), tmp_path / "plain", log=lambda m: None).run(progress=False)
    with pytest.raises(PlicError, match="started with --recipe-arg balance_rates=0;"):
        Trainer(_cfg(images, 4, balance_rates=1), tmp_path / "plain", log=lambda m: None).run(progress=False)


def test_balance_needs_a_range_of_rates_and_takes_a_power_from_0_to_1(images, tmp_path):
    cfg = _cfg(images, 1, balance_rates=1)
    cfg.lambda_max = cfg.lambda_min
    with pytest.raises(PlicError, match="needs a variable-rate run"):
        Trainer(cfg, tmp_path / "one", log=lambda m: None)
    assert not (tmp_path / "one").exists()
    for bad in (1.5, "abc"):
        with pytest.raises(PlicError, match="takes a power from 0 to 1"):
            Trainer(_cfg(images, 1, balance_rates=bad), tmp_path / "more", log=lambda m: None)
        assert not (tmp_path / "more").exists()
    Trainer(_cfg(images, 1, balance_rates=0.5), tmp_path / "half", log=lambda m: None).run(progress=False)
