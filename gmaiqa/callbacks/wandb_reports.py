"""What a reviewer finds in W&B after an evaluation: a per-group table and score curves
(annotated vs predicted over capture order, the paper's Fig. 7)."""

from __future__ import annotations

import numpy as np


def score_curve_figure(row: dict, title: str | None = None):
    # here, not at import: loads matplotlib only when this runs
    import matplotlib

    matplotlib.use("Agg")
    # here, not at import: loads matplotlib only when this runs
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    predicted = np.asarray(row["predicted_scores"], dtype=float)
    order = np.arange(1, len(predicted) + 1)
    if "annotated_scores" in row:
        ax.plot(order, row["annotated_scores"], "o-", color="tab:blue", label="annotated")
    ax.plot(order, predicted, "s-", color="tab:green", label="predicted")
    if "annotated_clearest" in row:
        ax.axvline(row["annotated_clearest"] + 1, color="tab:blue", ls=":", lw=1)
        ax.axvline(row["predicted_clearest"] + 1, color="tab:green", ls="--", lw=1)
    ax.set_xlabel("capture order")
    ax.set_ylabel("score")
    srocc = row.get("srocc")
    ax.set_title(
        title or f"{row['group']}" + (f"  SROCC {srocc:.3f}" if isinstance(srocc, float) else ""), fontsize=9
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _to_uint8(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    lo, hi = np.percentile(x, 1), np.percentile(x, 99)
    return (np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def attention_panel(preview: dict) -> np.ndarray:
    """The (z-scored) clearest image beside its attention map, as one uint8 RGB panel."""
    # here, not at import: loads matplotlib only when this runs
    import matplotlib

    image = _to_uint8(preview["image"].numpy().transpose(1, 2, 0))
    heat = (
        matplotlib.colormaps["inferno"](_to_uint8(preview["attention"].numpy()) / 255.0)[..., :3] * 255
    ).astype(np.uint8)
    return np.concatenate([image, heat], axis=1)


def wandb_loggers(loggers) -> list:
    """The W&B loggers among a stage's loggers (importing Lightning's W&B logger, not wandb itself)."""
    # here, not at import: loads lightning only when this runs
    from lightning.pytorch.loggers import WandbLogger

    return [lg for lg in loggers if isinstance(lg, WandbLogger)]


def log_evaluation(loggers, rows: list[dict], prefix: str = "test", curves: int = 8) -> None:
    """The per-group table, score curves and attention panels (the metrics go to the run summary
    elsewhere: ``gmaiqa.callbacks.test_reports``)."""
    loggers = wandb_loggers(loggers)
    if not loggers:
        return
    # here, not at import: loads wandb, matplotlib only when this runs
    import matplotlib.pyplot as plt
    import wandb

    columns = ["group", "predicted_clearest", "annotated_clearest", "offset", "srocc"]
    table = wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])
    images = []
    for row in rows[:curves]:
        fig = score_curve_figure(row)
        images.append(wandb.Image(fig, caption=row["group"]))
        plt.close(fig)
    maps = [
        wandb.Image(attention_panel(r["preview"]), caption=f"{r['group']}: clearest image | attention map")
        for r in rows
        if "preview" in r
    ]
    payload = {f"{prefix}/per_group": table, f"{prefix}/score_curves": images}
    if maps:
        payload[f"{prefix}/attention_maps"] = maps
    for lg in loggers:
        lg.experiment.log(payload)
