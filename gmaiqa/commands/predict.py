"""gmaiqa predict ckpt=PATH input=DIR out=DIR: see ``gmaiqa.predict``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.commands.scoring import check_scoring


def run(cfg: DictConfig) -> int:
    from gmaiqa.predict import predict  # here, not at import: the precheck imports this module for check()

    predict(cfg)
    return 0


def check(cfg: DictConfig) -> None:
    """Before anything is created (``gmaiqa.config_check.precheck``)."""
    check_scoring("predict", cfg)
