"""gmaiqa export ckpt=PATH out=FILE format=onnx|torchscript: see ``gmaiqa.export``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.export import export


def run(cfg: DictConfig) -> int:
    export(cfg)
    return 0
