"""Metrics of GMANet §4.2 on hand-made groups."""

import math

import pytest
import torch
from scipy.stats import spearmanr

from gmaiqa.metrics import ClearestSelection, GroupSROCC, group_outcome, spearman


def test_top0_top1_and_miss():
    metric = ClearestSelection()
    metric.update(torch.tensor([1.0, 5.0, 2.0]), clearest=1)  # top-0
    metric.update(torch.tensor([1.0, 2.0, 5.0, 0.0]), clearest=1)  # top-1
    metric.update(torch.tensor([9.0, 2.0, 5.0, 0.0]), clearest=3)  # miss
    metric.update(torch.tensor([0.0, 1.0]), clearest=0)  # top-1 at the other side
    r = metric.compute()
    assert (r["t0"].item(), r["t1"].item(), r["groups"].item()) == (1, 2, 4)
    assert r["acc"].item() == pytest.approx(3 / 4)
    assert group_outcome(torch.tensor([3.0, 3.0, 1.0]), 1).predicted == 0  # ties: first maximum


def test_z_error_in_micrometres():
    metric = ClearestSelection()
    metric.update(torch.tensor([0.0, 1.0, 0.0]), 2, z_um=torch.tensor([10.0, 10.5, 11.0]))
    metric.update(torch.tensor([1.0, 0.0, 0.0]), 0, z_um=torch.tensor([0.0, 1.0, 2.0]))
    assert metric.compute()["z_error_um"].item() == pytest.approx(0.25)


@pytest.mark.parametrize("seed", range(3))
def test_spearman_matches_scipy_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 5, (12,), generator=g).float()
    b = torch.randn(12, generator=g)
    assert spearman(a, b) == pytest.approx(spearmanr(a.numpy(), b.numpy()).statistic, abs=1e-9)


def test_group_srocc_is_a_mean_over_groups():
    m = GroupSROCC()
    m.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0]))  # 1
    m.update(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([10.0, 20.0, 30.0]))  # -1
    m.update(torch.tensor([1.0, 3.0, 2.0]), torch.tensor([10.0, 20.0, 30.0]))  # 0.5
    m.update(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([10.0, 20.0, 30.0]))  # constant prediction: 0
    m.update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([5.0, 5.0, 5.0]))  # no annotated order: skipped
    assert m.compute().item() == pytest.approx((1 - 1 + 0.5 + 0) / 4)
    assert math.isnan(GroupSROCC().compute().item())
