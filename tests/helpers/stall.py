"""A callback the resume tests add to a training job (``+callbacks.stall._target_=stall.StallAtStep``):
when ``GMAIQA_TEST_STALL_AT`` optimiser steps are done, every rank writes ``GMAIQA_TEST_STALL_MARKER``
(rank 0) and waits to be killed or signalled (only the job of ``GMAIQA_TEST_STALL_SEED`` when set), like
a job pre-empted mid-epoch; a stop signal (SIGTERM, SIGUSR1) ends the wait, and the stage stops at the
batch boundary as it would mid-run. Without the variable it does nothing, so a relaunch may keep the
same overrides."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class StallAtStep(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        at = os.environ.get("GMAIQA_TEST_STALL_AT")
        seed = os.environ.get("GMAIQA_TEST_STALL_SEED")
        if seed is not None and str(pl_module.meta.get("seed")) != seed:
            return
        if at and trainer.global_step == int(at):
            if trainer.is_global_zero:
                Path(os.environ["GMAIQA_TEST_STALL_MARKER"]).write_text(str(trainer.global_step))
            deadline = time.time() + 600
            while time.time() < deadline and not trainer.received_sigterm:
                time.sleep(0.05)
