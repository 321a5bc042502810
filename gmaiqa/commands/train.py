"""gmaiqa train [experiment=NAME|sweep=NAME] [key=value ...] [-m]: see ``gmaiqa.train``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from gmaiqa.errors import GmaiqaError
from gmaiqa.runs import mark_failed
from gmaiqa.train import train


def run(cfg: DictConfig) -> tuple[int, float | None]:
    """Exit status 0 and the job's objective for a sweeper that optimises (Optuna): the final stage's
    selected validation value, in the direction of its selection rule."""
    try:
        summary = train(cfg)
    except GmaiqaError as exc:  # found only once the data is read: the folder says why it stopped
        mark_failed(Path(cfg.paths.run_dir), exc)
        raise
    stages = summary.get("stages") or []
    value = (stages[-1].get("selection") or {}).get("value") if stages else None
    return 0, float(value) if value is not None else None
