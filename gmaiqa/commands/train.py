"""gmaiqa train [experiment=NAME|sweep=NAME] [key=value ...] [-m]: see ``gmaiqa.train``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.train import train


def run(cfg: DictConfig) -> int:
    train(cfg)
    return 0
