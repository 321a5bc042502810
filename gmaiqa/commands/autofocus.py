"""gmaiqa autofocus stage=simulated|recorded strategy=NAME out=DIR: see ``gmaiqa.autofocus.run``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.autofocus.run import autofocus


def run(cfg: DictConfig) -> int:
    autofocus(cfg)
    return 0
