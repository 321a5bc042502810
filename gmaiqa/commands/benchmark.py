"""gmaiqa benchmark data.root=DIR methods=[TENG,LMG,ckpt:PATH] out=DIR: see ``gmaiqa.benchmark``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.commands.scoring import check_scoring


def run(cfg: DictConfig) -> int:
    from gmaiqa.benchmark import (
        benchmark,  # here, not at import: the precheck imports this module for check()
    )

    benchmark(cfg)
    return 0


def check(cfg: DictConfig) -> None:
    """Before anything is created (``gmaiqa.config_check.precheck``)."""
    check_scoring("benchmark", cfg)
