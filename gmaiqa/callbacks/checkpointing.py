"""Checkpoints a killed job can resume from.

* :func:`save_atomically` - a file appears under its final name only once complete: written to
  ``NAME.tmp``, then renamed (``os.replace`` is atomic on POSIX). A kill during a write leaves the
  previous file intact. The selected checkpoint (``gmaiqa.callbacks.selection``) is written this way,
  with weights and metadata only (what eval, predict, benchmark and ``init_from`` read). Under weight
  averaging (a Lightning ``WeightAveraging`` callback in ``callbacks:``, e.g. ``EMAWeightAveraging``)
  those weights are the average, the ones validation measured and the selection chose by
  (:func:`averaged_weights`); Lightning writes the average into full checkpoints itself, but not into
  weights-only ones.
* :class:`ResumeCheckpoint` - ``last.ckpt``, written the same way every ``every_n_train_steps``
  optimiser steps, at the end of every epoch and when a signal stops the stage. It holds everything
  ``resume=auto`` restores: weights, optimiser, LR schedule, loop counters (epoch, step, batches done),
  the sampler position (the datamodule's state) and the random number generators. The one it replaces
  stays as ``previous.ckpt``, so a ``last.ckpt`` damaged after it was written (a copy cut short, a disk
  fault) still leaves a resume point (:func:`resume_point`).
* A checkpoint is never written with non-finite weights, and a write the disk refuses is one message
  naming the file and the space it needed (:class:`WriteFailed`), with no temporary file left.
* :class:`RandomState` - stores the torch / numpy / python (and CUDA) generator states of the process
  that saves (rank 0) and restores them on load. Batches and augmentations are drawn from (seed,
  epoch, group), not from these generators, so this only matters for randomness inside the model.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint

from gmaiqa.callbacks.faults import NonFiniteTraining, weights_finite
from gmaiqa.errors import RunFailed

LAST = "last.ckpt"
PREVIOUS = "previous.ckpt"
HPC = "hpc_ckpt_*.ckpt"  # Lightning's SLURM auto-requeue writes these into the stage folder


class WriteFailed(RunFailed):
    pass


def _megabytes(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def checkpoint_bytes(trainer, weights_only: bool) -> int:
    """About how many bytes a checkpoint of the trainer's current state takes (its tensors)."""
    state = trainer._checkpoint_connector.dump_checkpoint(weights_only)
    total = 0

    def add(node) -> None:
        nonlocal total
        if isinstance(node, torch.Tensor):
            total += node.numel() * node.element_size()
        elif isinstance(node, dict):
            for v in node.values():
                add(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                add(v)

    add(state)
    return total


def write_failed(path: str, exc: OSError, needed: int | None) -> WriteFailed:
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    space = ""
    if needed is not None:
        space = f"; it needs about {_megabytes(needed)}" + (
            f" and {_megabytes(free)} are free there" if free is not None else ""
        )
    return WriteFailed(
        f"cannot write {path}: {exc.strerror or exc}{space}; earlier checkpoints are intact - free space "
        "(or move paths.output_root) and relaunch the same command to resume",
        {"path": str(path), "errno": exc.errno, "needed_bytes": needed, "free_bytes": free},
    )


@contextmanager
def averaged_weights(trainer):
    """The module holds the weight averaging callback's average while inside (Lightning swaps it in
    the same way for validation), its own weights again after; nothing happens without one, or before
    the average exists (outside fit)."""
    # here, not at import: loads lightning only when this runs
    from lightning.pytorch.callbacks import WeightAveraging

    averaging = [
        cb
        for cb in trainer.callbacks
        if isinstance(cb, WeightAveraging) and getattr(cb, "_average_model", None) is not None
    ]
    if not averaging:
        yield
        return
    averaging[0]._swap_models(trainer.lightning_module)
    try:
        yield
    finally:
        averaging[0]._swap_models(trainer.lightning_module)


def save_atomically(
    trainer, path: str | Path, weights_only: bool = False, keep_previous: str | None = None
) -> None:
    """Write a checkpoint of the trainer's state to ``path`` all at once or not at all; with
    ``keep_previous``, the file it replaces is kept under that name in the same folder."""

    path = str(path)
    tmp = f"{path}.tmp"
    if not weights_finite(trainer.lightning_module):
        raise NonFiniteTraining(
            f"the weights became non-finite at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"{Path(path).name} was not written (it keeps the last finite state); the learning rate may be "
            "too high (task.optimizer.lr)",
            {"epoch": int(trainer.current_epoch), "step": int(trainer.global_step), "cause": "weights"},
        )
    try:
        # a full checkpoint gets the average from the averaging callback's own hook
        with averaged_weights(trainer) if weights_only else nullcontext():
            trainer.save_checkpoint(tmp, weights_only)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            if keep_previous and os.path.isfile(path):
                os.replace(path, os.path.join(os.path.dirname(path), keep_previous))
            os.replace(tmp, path)
    except OSError as exc:
        if trainer.is_global_zero:
            Path(tmp).unlink(missing_ok=True)
        raise write_failed(path, exc, checkpoint_bytes(trainer, weights_only)) from None
    trainer.strategy.barrier("gmaiqa.save_atomically")


def readable(path: Path) -> str | None:
    """None when ``path`` reads as a whole checkpoint (a zip archive whose every member matches its
    checksum: what ``torch.save`` writes); otherwise why not."""
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        return str(exc) or type(exc).__name__
    return f"member {broken} is damaged" if broken else None


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """``*.tmp`` left by a job killed while writing (the finished file was never renamed over)."""
    stale = sorted(folder.glob("*.tmp")) if folder.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def resume_point(stage_dir: Path, writer: bool = True) -> tuple[Path | None, list[str]]:
    """The newest readable checkpoint a stage can resume from (``last.ckpt``, ``previous.ckpt``,
    Lightning's ``hpc_ckpt_N.ckpt``), and one line for each newer one that could not be read (the
    ``writer``, rank 0, renames those aside so that the next attempt does not read them again)."""
    folder = stage_dir / "checkpoints"
    candidates = [p for p in (folder / LAST, folder / PREVIOUS) if p.is_file()] + sorted(stage_dir.glob(HPC))
    notes = []
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        problem = readable(path)
        if problem is None:
            return path, notes
        notes.append(f"{path} cannot be read ({problem[:120]}); it is kept as {path.name}.unreadable")
        if writer:
            os.replace(path, path.with_name(path.name + ".unreadable"))
    return None, notes


class ResumeCheckpoint(Checkpoint):
    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 200):
        self.path = Path(dirpath) / LAST
        self.every_n_train_steps = int(every_n_train_steps)
        self._saved_at_step = -1

    def _save(self, trainer) -> None:
        if trainer.sanity_checking or trainer.global_step == self._saved_at_step:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_atomically(trainer, self.path, keep_previous=PREVIOUS)
        self._saved_at_step = trainer.global_step

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # here, not at import: loads lightning only when this runs
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        # a signal stopped the loops at a batch boundary: the state there is a consistent resume point
        if isinstance(exception, SIGTERMException):
            self._save(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_train_steps > 0 and trainer.global_step % self.every_n_train_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # after validation and after the best-checkpoint callback, so both are in the saved state
        self._saved_at_step = -1
        self._save(trainer)


class RandomState(Callback):
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # here, not at import: loads lightning only when this runs
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
        # here, not at import: loads lightning only when this runs
        from lightning.fabric.utilities.seed import _set_rng_states

        # only a resumed fit continues the generators; testing a checkpoint leaves them alone
        if "rng_states" in checkpoint and trainer.state.fn == "fit":
            states = dict(checkpoint["rng_states"])
            name, keys, pos, has_gauss, cached = states["numpy"]
            states["numpy"] = (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
            _set_rng_states(states)
