"""gmaiqa benchmark data.root=DIR methods=[TENG,LMG,ckpt:PATH] out=DIR: see ``gmaiqa.benchmark``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.benchmark import benchmark


def run(cfg: DictConfig) -> int:
    benchmark(cfg)
    return 0
