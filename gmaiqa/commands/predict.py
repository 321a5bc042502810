"""gmaiqa predict ckpt=PATH input=DIR out=DIR: see ``gmaiqa.predict``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.predict import predict


def run(cfg: DictConfig) -> int:
    predict(cfg)
    return 0
