"""gmaiqa train [experiment=NAME|sweep=NAME] [key=value ...] [-m]: see ``gmaiqa.train``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from gmaiqa.errors import GmaiqaError
from gmaiqa.runs import mark_failed
from gmaiqa.train import train


def run(cfg: DictConfig) -> int:
    try:
        train(cfg)
    except GmaiqaError as exc:  # found only once the data is read: the folder says why it stopped
        mark_failed(Path(cfg.paths.run_dir), exc)
        raise
    return 0
