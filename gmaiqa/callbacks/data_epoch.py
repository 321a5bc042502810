"""Tell the DataModule which epoch starts, so its draws change every epoch.

Lightning calls ``set_epoch`` only on ``DataLoader.sampler`` and ``DataLoader.batch_sampler.sampler``,
never on a batch sampler itself. gmaiqa's group batches come from a batch sampler
(``GroupBatchSampler``), so without this every epoch drew the same group order, the same six
companions of each clearest image and the same crops. A DataModule that draws per epoch has a
``set_epoch(epoch)`` method; this callback calls it at the start of every training epoch, before the
epoch's iterator is made (a resumed epoch keeps its position: the epoch does not change)."""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback


class DataEpoch(Callback):
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        set_epoch = getattr(trainer.datamodule, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(trainer.current_epoch)
