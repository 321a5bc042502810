"""Tables users read: the metrics table on screen and per_group.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from gmaiqa.outputs import written

METRIC_ORDER = ("acc", "t0", "t1", "groups", "srocc", "z_error_um", "loss_score", "loss_diff")


def print_metrics(title: str, metrics: dict) -> None:
    keys = [k for k in METRIC_ORDER if k in metrics] + sorted(k for k in metrics if k not in METRIC_ORDER)
    print(f"\n{title}")
    print("  ".join(f"{k:>10}" for k in keys))
    print("  ".join(f"{_fmt(metrics[k]):>10}" for k in keys))


def _fmt(value) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4f}"
    return str(int(value)) if isinstance(value, float) else str(value)


def write_per_group(path: str | Path, rows: list[dict]) -> None:
    """group, predicted clearest, annotated clearest, offset, SROCC, and the score curves."""
    columns = [
        "group",
        "predicted_clearest",
        "annotated_clearest",
        "offset",
        "srocc",
        "predicted_scores",
        "annotated_scores",
    ]
    with written(path) as part, open(part, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            out = dict(row)
            for key in ("predicted_scores", "annotated_scores"):
                if key in out:
                    out[key] = " ".join(f"{v:.3f}" for v in out[key])
            if isinstance(out.get("srocc"), float):
                out["srocc"] = f"{out['srocc']:.4f}"
            writer.writerow(out)


def command_run(settings: dict, out: Path, job_type: str, name: str, config: dict):
    """A W&B run for a command's results (``settings``: its ``logger.wandb``; offline files under
    ``out/wandb`` unless the mode is online), or None with ``mode=disabled``."""
    if settings["mode"] == "disabled":
        return None
    # here, not at import: loads wandb only when this runs
    import wandb

    return wandb.init(
        project=settings["project"],
        entity=settings.get("entity"),
        dir=str(out),
        mode=settings["mode"],
        job_type=job_type,
        name=name,
        config=config,
    )
