"""DefocusTask: trains the absolute-defocus regressor (seed paper 001) and evaluates it as the seed does.

* training: mean squared error between the predicted and the true level (the seed trains a regressor
  and names no loss; MSE is the plain choice), Adam lr 1e-5;
* validation / test: ``loss`` (MSE), the linear fit predicted = intercept + slope · true (the seed
  reports y = 0.59 + 1.157x), ``r2`` of that fit, ``mae`` and ``within_1`` (share of predictions within
  ±1 level: the seed's "±1 µm" at 1 µm per level).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gmaiqa.tasks.row_evaluation import RowEvaluatedTask


def fit_quality(predicted, true) -> dict[str, float]:
    p, t = torch.as_tensor(predicted, dtype=torch.float64), torch.as_tensor(true, dtype=torch.float64)
    tc = t - t.mean()
    slope = float((tc * (p - p.mean())).sum() / tc.square().sum()) if tc.square().sum() > 0 else float("nan")
    intercept = float(p.mean() - slope * t.mean())
    residual = p - (intercept + slope * t)
    total = (p - p.mean()).square().sum()
    r2 = float(1 - residual.square().sum() / total) if total > 0 else float("nan")
    error = (p - t).abs()
    return {
        "slope": slope,
        "intercept": intercept,
        "r2": r2,
        "mae": float(error.mean()),
        "within_1": float((error <= 1).double().mean()),
    }


class DefocusTask(RowEvaluatedTask):
    default_lr = 1e-5  # the seed's rate

    def __init__(
        self,
        net,
        *,
        optimizer: Callable | None = None,
        inference: dict | None = None,
        meta: dict | None = None,
    ):
        super().__init__(net, optimizer=optimizer, meta=meta)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        predicted = self.net(batch["image"])["output1"]
        loss = F.mse_loss(predicted, batch["level"].float())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(predicted))
        return loss

    def evaluate_batch(self, batch: dict) -> list[dict]:
        predicted = self.net(batch["image"])["output1"].detach().cpu()
        return [
            {"group": g, "level": float(t), "predicted": float(p)}
            for p, t, g in zip(predicted.tolist(), batch["level"].tolist(), batch["group"])
        ]

    def report(self, stage: str, rows: list[dict]) -> None:
        p, t = [r["predicted"] for r in rows], [r["level"] for r in rows]
        self.log(f"{stage}/loss", F.mse_loss(torch.tensor(p), torch.tensor(t)), sync_dist=False)
        if len(rows) >= 2:
            for key, value in fit_quality(p, t).items():
                self.log(f"{stage}/{key}", value, sync_dist=False)
