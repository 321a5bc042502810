"""The warmed-up EMA of gmaiqa.callbacks.weight_averaging: known decays, and the starting point's
share gone after a short stage (the end-to-end path, selection and checkpoints: tests/test_train.py)."""

from __future__ import annotations

import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from gmaiqa.callbacks.weight_averaging import EMAWeightAveraging, _ema_step, warmed_up_decay


def test_the_decay_warms_up_to_its_cap():
    assert warmed_up_decay(0.998, 1) == pytest.approx(2 / 11)
    assert warmed_up_decay(0.998, 90) == pytest.approx(91 / 100)
    assert warmed_up_decay(0.998, 10**6) == 0.998  # the cap, reached after 4,490 updates
    decays = [warmed_up_decay(0.998, n) for n in range(1, 6000)]
    assert decays == sorted(decays)


def test_one_step_moves_the_average_by_one_minus_the_decay():
    average, current = torch.tensor([1.0, 4.0]), torch.tensor([3.0, 0.0])
    stepped = _ema_step(average, current, torch.tensor(90), decay=0.998)
    assert torch.allclose(stepped, average * 0.91 + current * 0.09)


def _share_of_the_start(avg_fn, updates: int) -> float:
    """A network whose one weight (and batch-norm variance) jumps from its start 0 to 1 at the first
    step and stays there: the average's remaining distance from 1 is the start's share."""
    net = torch.nn.BatchNorm1d(1)
    net.weight.data.fill_(0.0)
    averaged = AveragedModel(net, avg_fn=avg_fn, use_buffers=True)
    averaged.update_parameters(net)  # the copy at the first update: the start
    net.weight.data.fill_(1.0)
    for _ in range(updates):
        averaged.update_parameters(net)
    return 1.0 - averaged.module.weight.detach().item()


def test_the_start_fades_within_a_short_stage():
    """616 updates (two epochs of the thick mixture): the warmed-up average keeps a vanishing share of
    the random start; a fixed decay of 0.998 keeps 0.998**616, 29 %."""
    from torch.optim.swa_utils import get_ema_avg_fn

    ours = EMAWeightAveraging(decay=0.998)
    assert _share_of_the_start(ours._kwargs["avg_fn"], 616) < 1e-6
    assert _share_of_the_start(get_ema_avg_fn(0.998), 616) == pytest.approx(0.998**616, rel=1e-3)


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1])
def test_a_decay_outside_zero_to_one_is_refused(decay):
    with pytest.raises(ValueError, match="between 0 and 1"):
        EMAWeightAveraging(decay=decay)
