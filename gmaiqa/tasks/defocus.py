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

from gmaiqa.callbacks.wandb_reports import wandb_loggers
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
    higher_is_better = False  # the output is defocus: 0 = in focus
    scoring = (
        "defocus_tiles"  # tiles of the training patch size, each resized to the input (gmaiqa.defocus_maps)
    )

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

    def write_test_outputs(self, stage_dir, loggers, metrics: dict) -> None:
        """per_patch.csv and the predicted-vs-true scatter with its fitted line (PNG and W&B)."""
        import csv

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.rows["test"]
        with open(stage_dir / "per_patch.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, ["group", "level", "predicted"])
            writer.writeheader()
            writer.writerows(rows)
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        t = [r["level"] for r in rows]
        ax.scatter(t, [r["predicted"] for r in rows], s=8, alpha=0.5)
        if rows and "slope" in metrics:
            lo, hi = min(t), max(t)
            ax.plot(
                [lo, hi],
                [metrics["intercept"] + metrics["slope"] * lo, metrics["intercept"] + metrics["slope"] * hi],
                "r-",
                label=f"y = {metrics['intercept']:.2f} + {metrics['slope']:.3f}x, R² {metrics['r2']:.3f}",
            )
            ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="y = x")
            ax.legend(fontsize=7)
        ax.set_xlabel("true level")
        ax.set_ylabel("predicted level")
        fig.tight_layout()
        fig.savefig(stage_dir / "predicted_vs_true.png")
        for lg in wandb_loggers(loggers):
            import wandb

            lg.experiment.log({"test/predicted_vs_true": wandb.Image(fig)})
            lg.experiment.summary.update({f"test/{k}": v for k, v in metrics.items()})
        plt.close(fig)
