"""DataWaitMonitor: the share of step time spent waiting for batches, and its one warning per stage."""

from __future__ import annotations

import time
import warnings
from types import SimpleNamespace

import pytest
import torch

from gmaiqa.callbacks.data_wait import DataWaitMonitor


class Module:
    device = torch.device("cpu")

    def __init__(self):
        self.logged = {}

    def log(self, name, value, **kwargs):
        self.logged[name] = value


def run_steps(monitor, module, trainer, steps: int, wait: float, busy: float) -> None:
    monitor.on_train_epoch_start(trainer, module)
    for i in range(steps):
        time.sleep(wait)  # the loader
        monitor.on_train_batch_start(trainer, module, None, i)
        time.sleep(busy)  # the model
        monitor.on_train_batch_end(trainer, module, None, None, i)


def test_a_slow_loader_is_measured_and_named_once():
    monitor, module = DataWaitMonitor(warmup_steps=2), Module()
    trainer = SimpleNamespace(is_global_zero=True, datamodule=SimpleNamespace(num_workers=1))
    run_steps(monitor, module, trainer, steps=6, wait=0.08, busy=0.01)
    assert monitor.steps == 6 and monitor.share > 0.5  # four measured steps, each mostly waiting
    with pytest.warns(UserWarning, match=r"data loader bounds training.*data.num_workers=1"):
        monitor.on_train_epoch_end(trainer, module)
    assert module.logged["perf/data_wait_share"] == pytest.approx(monitor.share)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor.on_train_epoch_end(trainer, module)  # said once per stage


def test_a_fast_loader_gives_a_small_share_and_no_warning():
    monitor, module = DataWaitMonitor(warmup_steps=1), Module()
    trainer = SimpleNamespace(is_global_zero=True, datamodule=None)
    run_steps(monitor, module, trainer, steps=4, wait=0.0, busy=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor.on_train_epoch_end(trainer, module)
    assert monitor.share < 0.1
