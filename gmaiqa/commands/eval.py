"""gmaiqa eval ckpt=PATH data.root=DIR out=DIR [split=all|train|val|test]: see ``gmaiqa.evaluate``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.evaluate import evaluate


def run(cfg: DictConfig) -> int:
    evaluate(cfg)
    return 0
