"""The default model's training curves from its run's CSV logs (one line per epoch, L0 then L1):
training loss, validation loss (L_diff and L_score, Eq. 9 and 11), and validation acc, t0 share and
SROCC, with the epoch each stage's selection rule kept marked.

    uv run python experiments/default-model/curves.py RUN_DIR OUT.png"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def epochs(stage_dir: Path) -> dict[int, dict]:
    """metrics.csv of a stage as {epoch: {key: value}}, the rows of one epoch merged."""
    merged: dict[int, dict] = {}
    for path in sorted(stage_dir.glob("csv/**/metrics.csv")):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("epoch"):
                    values = {k: float(v) for k, v in row.items() if v and k != "epoch"}
                    merged.setdefault(int(row["epoch"]), {}).update(values)
    return merged


def main() -> None:
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    stages = [d for d in sorted(run.iterdir()) if (d / "csv").is_dir()]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), dpi=110)
    offset = 0
    for stage in stages:
        per_epoch = epochs(stage)
        xs = [offset + e + 1 for e in sorted(per_epoch)]
        series = lambda key, rows=per_epoch: [rows[e].get(key, float("nan")) for e in sorted(rows)]
        name = stage.name.upper()
        axes[0].plot(xs, series("train/loss_epoch"), "o-", label=f"{name} train")
        axes[0].plot(xs, series("val/loss"), "s--", label=f"{name} val")
        axes[1].plot(xs, series("val/loss_diff"), "o-", label=f"{name} val L_diff")
        axes[1].plot(xs, series("val/loss_score"), "s--", label=f"{name} val L_score")
        groups = series("val/groups")
        axes[2].plot(xs, series("val/acc"), "o-", label=f"{name} acc")
        axes[2].plot(xs, [t / g for t, g in zip(series("val/t0"), groups)], "s--", label=f"{name} t0 share")
        axes[2].plot(xs, series("val/srocc"), "^:", label=f"{name} SROCC")
        done = stage / "done.json"
        if done.is_file():
            kept = json.loads(done.read_text())["selection"].get("epoch")
            if kept is not None:
                for ax in axes:
                    ax.axvline(offset + kept + 1, color="grey", lw=0.8, ls=":")
        offset = xs[-1] if xs else offset
    titles = ("loss (all outputs)", "validation rank losses (Output1)", "validation metrics")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch (L0, then L1)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
