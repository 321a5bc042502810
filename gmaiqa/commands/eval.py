"""gmaiqa eval ckpt=PATH data.root=DIR out=DIR [split=all|train|val|test]: see ``gmaiqa.evaluate``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.commands.scoring import check_scoring


def run(cfg: DictConfig) -> int:
    from gmaiqa.evaluate import evaluate  # here, not at import: the precheck imports this module for check()

    evaluate(cfg)
    return 0


def check(cfg: DictConfig) -> None:
    """Before anything is created (``gmaiqa.config_check.precheck``)."""
    check_scoring("eval", cfg)
