"""Checkpoints a killed job can resume from.

* :func:`save_atomically` - a file appears under its final name only once complete: written to
  ``NAME.tmp``, then renamed (``os.replace`` is atomic on POSIX). A kill during a write leaves the
  previous file intact. The selected checkpoint (``gmaiqa.callbacks.selection``) is written this way,
  with weights and metadata only (what eval, predict, benchmark and ``init_from`` read).
* :class:`ResumeCheckpoint` - ``last.ckpt``, written the same way every ``every_n_train_steps``
  optimiser steps and at the end of every epoch. It holds everything ``resume=auto`` restores: weights,
  optimiser, LR schedule, loop counters (epoch, step, batches done), the sampler position (the
  datamodule's state) and the random number generators.
* :class:`RandomState` - stores the torch / numpy / python (and CUDA) generator states of the process
  that saves (rank 0) and restores them on load. Batches and augmentations are drawn from (seed,
  epoch, group), not from these generators, so this only matters for randomness inside the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint

LAST = "last.ckpt"


def save_atomically(trainer, path: str | Path, weights_only: bool = False) -> None:
    path = str(path)
    tmp = f"{path}.tmp"
    trainer.save_checkpoint(tmp, weights_only)  # every rank takes part; rank 0 writes
    if trainer.is_global_zero:
        os.replace(tmp, path)
    trainer.strategy.barrier("gmaiqa.save_atomically")


class ResumeCheckpoint(Checkpoint):
    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 200):
        self.path = Path(dirpath) / LAST
        self.every_n_train_steps = int(every_n_train_steps)
        self._saved_at_step = -1

    def _save(self, trainer) -> None:
        if trainer.sanity_checking or trainer.global_step == self._saved_at_step:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_atomically(trainer, self.path)
        self._saved_at_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_train_steps > 0 and trainer.global_step % self.every_n_train_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # after validation and after the best-checkpoint callback, so both are in the saved state
        self._saved_at_step = -1
        self._save(trainer)


class RandomState(Callback):
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        from lightning.fabric.utilities.seed import _collect_rng_states

        states = _collect_rng_states()
        # numpy's key array as a tensor, so checkpoints still load with torch.load(weights_only=True)
        name, keys, pos, has_gauss, cached = states["numpy"]
        states["numpy"] = [
            name,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ]
        checkpoint["rng_states"] = states

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        from lightning.fabric.utilities.seed import _set_rng_states

        # only a resumed fit continues the generators; testing a checkpoint leaves them alone
        if "rng_states" in checkpoint and trainer.state.fn == "fit":
            states = dict(checkpoint["rng_states"])
            name, keys, pos, has_gauss, cached = states["numpy"]
            states["numpy"] = (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
            _set_rng_states(states)
