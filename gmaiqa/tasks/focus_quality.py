"""FocusQualityTask: trains a score network on group batches and evaluates it as the paper does.

* training: the network's outputs on one group batch (clearest + 6 others, 512x768 crops), the GMANet
  loss summed over outputs (§3.3);
* validation / test: one whole group per batch, each image scored by the sliding window of §3.4
  (``gmaiqa.inference``); val/loss_score and val/loss_diff are Eq. 9 and Eq. 11 on those image scores
  (Output1, the inference output); t0, t1, acc, SROCC and z-error as in §4.2;
* optimiser: Adam, lr 1e-5, time-based decay lr / (1 + 5e-5 · step) (§3.4: halves near epoch 32 with
  621 groups an epoch);
* ours, off by default: ``distill`` adds a trained scorer's within-stack ranking of the same crops as a
  second target for Output1 (``gmaiqa.tasks.distillation``).

Per-group results of the last evaluation are kept in ``group_results[stage]`` for tables and plots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import lightning as L
import torch
from torch import nn

from gmaiqa.checkpoints import META_KEY
from gmaiqa.data.transforms import with_attention
from gmaiqa.distributed import gather_rows
from gmaiqa.inference import InferenceSettings, predict_scores
from gmaiqa.losses import GMANetLoss
from gmaiqa.metrics import ClearestSelection, GroupSROCC, group_outcome, spearman
from gmaiqa.tasks.distillation import KEY as DISTILL_KEY
from gmaiqa.tasks.distillation import Teacher, distill_settings, ranking_distillation_loss
from gmaiqa.tasks.optimizer import check_optimizer_factory, check_optimizer_settings


def time_decay(decay: float) -> Callable[[int], float]:
    """Keras' time-based decay, the schedule the paper's TensorFlow code uses: lr_t = lr / (1 + decay·t)."""
    return lambda step: 1.0 / (1.0 + decay * step)


class FocusQualityTask(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        *,
        loss: GMANetLoss | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_decay: float = 5e-5,
        inference: dict | None = None,
        meta: dict | None = None,
        distill: dict | None = None,
        distill_key: str = DISTILL_KEY,
    ):
        super().__init__()
        self.meta = dict(meta or {})
        self.previews = 4
        self.net = net
        self.loss = loss or GMANetLoss()
        check_optimizer_factory(optimizer)
        check_optimizer_settings({"lr_decay": lr_decay}, "task")
        self.optimizer_factory = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-5))
        self.lr_decay = lr_decay
        # the trainer's precision plugin sets autocast; compiling and memory format are the commands' options
        recorded = InferenceSettings.from_mapping(inference, warn=False)
        self.inference = replace(recorded, precision="fp32", channels_last=False, compile=False)
        self.selection = nn.ModuleDict({s: ClearestSelection() for s in ("val", "test")})
        self.srocc = nn.ModuleDict({s: GroupSROCC() for s in ("val", "test")})
        self.group_results: dict[str, list[dict]] = {"val": [], "test": []}
        settings = distill_settings(distill, distill_key)
        self.teacher = Teacher.load(settings, student_meta=self.meta, key=distill_key) if settings else None
        if self.teacher is not None:
            self.meta["distill"] = self.teacher.record()

    def forward(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.net(image, attention)

    def score_images(self, image: torch.Tensor, attention: torch.Tensor | None) -> torch.Tensor:
        return predict_scores(self.net, image, attention, self.inference)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Attention maps the loader left to the device are computed here, batched (issue: throughput)."""
        return with_attention(batch)

    def on_save_checkpoint(self, checkpoint: dict) -> None:

        checkpoint[META_KEY] = self.meta

    def on_fit_start(self) -> None:
        """The pixel sizes the training groups show the network, recorded with the checkpoint so scoring
        can say when its images are at another scale (``gmaiqa.data.pixels``)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "trained_pixel_um"):
            self.meta["pixel_um"] = datamodule.trained_pixel_um()
        splits = getattr(datamodule, "splits", None)
        if self.teacher is not None and splits:
            self.teacher.check_groups([stack.group for stack in splits["train"]])

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        outputs = self.net(batch["image"], batch["attention"])
        terms = self.loss(outputs, batch["score"], batch["clearest"])
        if self.teacher is not None and self.teacher.teaches(batch["group_name"]):
            taught = self.teacher.scores(batch["image"], batch["attention"])
            distill = ranking_distillation_loss(outputs["output1"].float(), taught)
            terms["loss"] = terms["loss"] + self.teacher.settings.weight * distill
            if self.teacher.settings.groups is None:
                terms["distill"] = distill
            else:
                # epoch mean over the taught batches only: Lightning repeats a step metric's last value
                # on the steps that do not log it, which would show a term the untaught batches lack
                self.log("train/distill_epoch", distill, on_step=False, on_epoch=True, batch_size=1)
        self.log_dict(
            {f"train/{k}": v for k, v in terms.items() if k != "loss"},
            on_step=True,
            on_epoch=True,
            batch_size=1,
        )
        self.log("train/loss", terms["loss"], on_step=True, on_epoch=True, batch_size=1, prog_bar=True)
        return terms["loss"]

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, time_decay(self.lr_decay))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ evaluation
    def _evaluate_group(self, batch: dict, stage: str) -> None:
        scores = self.score_images(batch["image"], batch["attention"])
        row = {"group": batch["group_name"], "predicted_scores": scores.detach().cpu().tolist()}
        annotated = batch["score"]
        if batch["clearest"] >= 0:
            z_um = batch["z_um"] if not torch.isnan(batch["z_um"]).any() else None
            self.selection[stage].update(scores.detach(), batch["clearest"], z_um)
            outcome = group_outcome(scores.detach(), batch["clearest"])
            row.update(
                predicted_clearest=outcome.predicted,
                annotated_clearest=outcome.annotated,
                offset=outcome.offset,
            )
        if not torch.isnan(annotated).any():
            self.srocc[stage].update(scores.detach(), annotated)
            row["srocc"] = spearman(scores.detach().cpu(), annotated.cpu())
            row["annotated_scores"] = annotated.cpu().tolist()
            terms = self.loss({"output1": scores}, annotated, batch["clearest"])
            self.log(
                f"{stage}/loss_score",
                terms["output1/loss_score"],
                on_epoch=True,
                batch_size=1,
                sync_dist=True,
            )
            self.log(
                f"{stage}/loss_diff", terms["output1/loss_diff"], on_epoch=True, batch_size=1, sync_dist=True
            )
            self.log(f"{stage}/loss", terms["output1/loss"], on_epoch=True, batch_size=1, sync_dist=True)
        if len(self.group_results[stage]) < self.previews and batch["clearest"] >= 0:
            # what the network attended to on the clearest image, for the W&B report (small copies)
            c, s = batch["clearest"], max(1, batch["image"].shape[-2] // 256)
            row["preview"] = {
                "image": batch["image"][c].detach().cpu()[:, ::s, ::s],
                "attention": batch["attention"][c, 0].detach().cpu()[::s, ::s],
            }
        self.group_results[stage].append(row)

    def _epoch_end(self, stage: str) -> None:
        # each rank scored its share of the groups; every rank ends with all rows, in group order
        self.group_results[stage] = gather_rows(
            self.group_results[stage], self.trainer.world_size, key=lambda row: row["group"]
        )
        result = self.selection[stage].compute()
        for key, value in result.items():
            self.log(f"{stage}/{key}", value.float(), prog_bar=key == "acc", sync_dist=False)
        srocc = self.srocc[stage].compute()
        if not torch.isnan(srocc):
            self.log(f"{stage}/srocc", srocc.float(), sync_dist=False)
        self.selection[stage].reset()
        self.srocc[stage].reset()

    def on_validation_epoch_start(self) -> None:
        self.group_results["val"] = []

    def on_test_epoch_start(self) -> None:
        self.group_results["test"] = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate_group(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate_group(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")
