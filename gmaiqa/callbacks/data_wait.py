"""How much of a training step is spent waiting for the data loader.

The wait of a step is the time from the end of the previous step (``on_train_batch_end``) to the start of
this one (``on_train_batch_start``: the batch fetched from the loader and moved to the device); the
step's own time runs from its start to its end, with the device synchronised so that queued GPU work is
counted where it runs. ``perf/data_wait_share`` (wait over wait + step, so far in the stage) is logged
at every epoch's end, and once per stage a warning says when the loader, not the model, sets the pace.
"""

from __future__ import annotations

import time
import warnings

import torch
from lightning.pytorch.callbacks import Callback


class DataWaitMonitor(Callback):
    """Waits and step times add up over a stage (the first ``warmup_steps`` left out: workers starting,
    cuDNN choosing kernels); the gap across an epoch's end (validation) is not a wait for data."""

    def __init__(self, warn_above: float = 0.1, warmup_steps: int = 5):
        self.warn_above, self.warmup_steps = warn_above, warmup_steps
        self.warned = False
        self.wait = self.busy = 0.0
        self.steps = 0
        self._started = self._ended = None

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._ended = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._started = self._now(pl_module)
        if self._ended is not None and self.steps >= self.warmup_steps:
            self.wait += self._started - self._ended

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._ended = self._now(pl_module)
        if self.steps >= self.warmup_steps:
            self.busy += self._ended - self._started
        self.steps += 1

    @property
    def share(self) -> float | None:
        """Of the stage's measured time so far, the share spent waiting for batches."""
        total = self.wait + self.busy
        return self.wait / total if total > 0 else None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        share = self.share
        if share is None:
            return
        pl_module.log("perf/data_wait_share", share, on_epoch=True, batch_size=1, sync_dist=True)
        if share > self.warn_above and not self.warned and trainer.is_global_zero:
            self.warned = True
            workers = getattr(trainer.datamodule, "num_workers", "?")
            warnings.warn(
                f"the data loader bounds training: {share:.0%} of each step is spent waiting for batches "
                f"(data.num_workers={workers}). More workers (data.num_workers), data.cache=resized or a "
                "faster disk would let the model set the pace",
                UserWarning,
                stacklevel=2,
            )
