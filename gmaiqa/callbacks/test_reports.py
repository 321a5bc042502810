"""What a stage leaves after its test: a table of the test's rows beside ``metrics.json`` and, when W&B
logs the stage, the same rows as W&B tables and plots. Tasks compute and log; these callbacks write.

Each task config names its report (``conf/task/<name>.yaml``, key ``report``); the stage completes it
with the stage folder. The rows are the task's own evaluation rows, already gathered over DDP ranks:
``group_results["test"]`` of a focus-quality task, ``rows["test"]`` of a row-evaluated task.
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L

from gmaiqa.callbacks.wandb_reports import log_evaluation, wandb_loggers
from gmaiqa.reporting import write_per_group


def test_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The test metrics the task logged, without their ``test/`` prefix."""
    return {
        k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")
    }


def write_rows(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


class TestReport(L.Callback):
    """Rank zero writes the report once the test has ended (the rows are complete and gathered)."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            metrics, loggers = test_metrics(trainer), wandb_loggers(trainer.loggers)
            self.write(pl_module, metrics, loggers)
            for lg in loggers:  # the test figures on the W&B run's overview, for every kind of report
                lg.experiment.summary.update({f"test/{k}": v for k, v in metrics.items()})

    def write(self, task: L.LightningModule, metrics: dict, loggers: list) -> None:
        raise NotImplementedError


class PerGroupReport(TestReport):
    """Focus-quality tasks: per_group.csv and the W&B evaluation (per-group table, score curves as the
    paper's Fig. 7, attention maps)."""

    def write(self, task, metrics, loggers):

        rows = task.group_results["test"]
        write_per_group(self.out_dir / "per_group.csv", rows)
        log_evaluation(loggers, rows, prefix="test")


class DefocusReport(TestReport):
    """The defocus regressor: per_patch.csv and the predicted-vs-true scatter with its fitted line (the
    seed's y = 0.59 + 1.157x figure), as PNG and in W&B."""

    def write(self, task, metrics, loggers):
        # here, not at import: loads matplotlib only when this runs
        import matplotlib

        matplotlib.use("Agg")
        # here, not at import: loads matplotlib only when this runs
        import matplotlib.pyplot as plt

        rows = task.rows["test"]
        write_rows(self.out_dir / "per_patch.csv", rows, ["group", "level", "predicted"])
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        true = [r["level"] for r in rows]
        ax.scatter(true, [r["predicted"] for r in rows], s=8, alpha=0.5)
        if rows and "slope" in metrics:
            lo, hi = min(true), max(true)
            line = [metrics["intercept"] + metrics["slope"] * x for x in (lo, hi)]
            label = f"y = {metrics['intercept']:.2f} + {metrics['slope']:.3f}x, R² {metrics['r2']:.3f}"
            ax.plot([lo, hi], line, "r-", label=label)
            ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="y = x")
            ax.legend(fontsize=7)
        ax.set_xlabel("true level")
        ax.set_ylabel("predicted level")
        fig.tight_layout()
        fig.savefig(self.out_dir / "predicted_vs_true.png")
        if loggers:
            # here, not at import: loads wandb only when this runs
            import wandb

            for lg in loggers:
                lg.experiment.log({"test/predicted_vs_true": wandb.Image(fig)})
        plt.close(fig)


class MOSReport(TestReport):
    """SAQM: per_image.csv (image, domain, MOS, prediction) and, in W&B, the per-domain correlations
    (the seed's Table 2 columns) and a predicted-vs-MOS scatter per domain."""

    def write(self, task, metrics, loggers):
        rows = task.rows["test"]
        write_rows(self.out_dir / "per_image.csv", rows, ["image", "domain", "mos", "target", "predicted"])
        if not loggers:
            return
        # here, not at import: loads wandb only when this runs
        import wandb

        domains = sorted({r["domain"] for r in rows})
        table = wandb.Table(
            columns=["domain", "plcc", "srocc", "krocc"],
            data=[[d] + [metrics.get(f"{d}/{m}") for m in ("plcc", "srocc", "krocc")] for d in domains],
        )
        payload = {"test/correlations": table}
        for d in domains:
            points = wandb.Table(
                columns=["mos", "predicted"],
                data=[[r["mos"], r["predicted"]] for r in rows if r["domain"] == d],
            )
            payload[f"test/{d}/scatter"] = wandb.plot.scatter(
                points, "mos", "predicted", title=f"{d}: predicted vs MOS"
            )
        for lg in loggers:
            lg.experiment.log(payload)
