"""What the SAQM and defocus tasks share: a network, an optimiser factory, checkpoint meta, and an
evaluation that collects one row per image (gathered over DDP ranks) and reports from all rows at the
end of the epoch."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch

from gmaiqa.checkpoints import META_KEY
from gmaiqa.distributed import gather_rows
from gmaiqa.tasks.optimizer import check_optimizer_factory


class RowEvaluatedTask(L.LightningModule):
    default_lr = 1e-4

    def __init__(self, net, *, optimizer: Callable | None = None, meta: dict | None = None):
        super().__init__()
        self.net = net
        check_optimizer_factory(optimizer)
        self.optimizer_factory = optimizer or (lambda params: torch.optim.Adam(params, lr=self.default_lr))
        self.meta = dict(meta or {})
        self.rows: dict[str, list[dict]] = {"val": [], "test": []}

    # ---- what a subclass provides
    def evaluate_batch(self, batch: dict) -> list[dict]:
        raise NotImplementedError

    def report(self, stage: str, rows: list[dict]) -> None:
        raise NotImplementedError

    # ---- shared plumbing
    def on_save_checkpoint(self, checkpoint: dict) -> None:

        checkpoint[META_KEY] = self.meta

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    def _epoch_end(self, stage: str) -> None:
        rows = self.rows[stage] = gather_rows(self.rows[stage], self.trainer.world_size)
        if rows:
            self.report(stage, rows)

    def on_validation_epoch_start(self) -> None:
        self.rows["val"] = []

    def on_test_epoch_start(self) -> None:
        self.rows["test"] = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.rows["val"] += self.evaluate_batch(batch)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.rows["test"] += self.evaluate_batch(batch)

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")
