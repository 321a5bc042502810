"""Test-only stand-ins a training job or a command is pointed at by its config:

* :class:`BatchProbe` - a callback that records which group every training batch came from, per epoch,
  into ``<stage dir>/batches.json`` (what a stage actually trained on);
* :class:`ScriptedValidationTask` - GMANet's task whose validation metrics are replaced by a script
  (one dict per epoch), so checkpoint selection can be tested on known values;
* :class:`SharpnessOracle` - a "defocus regressor" whose output is a known defocus (the inverse of the
  tile's gradient energy: lower = sharper), saved in a checkpoint like the real regressor's and
  registered as a model family of its own (lower = clearer, scored in tiles), as a family defined
  outside gmaiqa would be.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from gmaiqa.models.registry import register_model
from gmaiqa.tasks import FocusQualityTask


class BatchProbe(Callback):
    def __init__(self):
        self.groups: dict[int, list[int]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.groups.setdefault(trainer.current_epoch, []).append(int(batch["group"]))

    def on_train_end(self, trainer, pl_module) -> None:
        Path(trainer.default_root_dir, "batches.json").write_text(json.dumps(self.groups))


class ScriptedValidationTask(FocusQualityTask):
    def __init__(self, net, *, script: list[dict], **kwargs):
        super().__init__(net, **kwargs)
        self.script = [dict(s) for s in script]

    def log(self, name: str, value, *args, **kwargs) -> None:
        scripted = (
            self.trainer.validating
            and not self.trainer.sanity_checking
            and name in self.script[self.current_epoch]
        )
        super().log(
            name, float(self.script[self.current_epoch][name]) if scripted else value, *args, **kwargs
        )


@register_model("sharpness_oracle", task="defocus", higher_is_better=False, scoring="defocus_tiles")
class SharpnessOracle(nn.Module):
    attention_depth = 0

    def __init__(self, *, scale: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, image, attention=None) -> dict:
        grey = image.mean(dim=1)
        energy = (grey[:, :, 1:] - grey[:, :, :-1]).square().mean(dim=(1, 2))
        return {"output1": self.scale / (energy + 1e-6)}
