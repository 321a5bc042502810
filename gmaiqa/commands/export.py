"""gmaiqa export ckpt=PATH out=FILE format=onnx|torchscript: see ``gmaiqa.export``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.export_target import check_export


def run(cfg: DictConfig) -> int:
    from gmaiqa.export import export  # here, not at import: the precheck imports this module for check()

    export(cfg)
    return 0


def check(cfg: DictConfig) -> None:
    """Before anything is created (``gmaiqa.config_check.precheck``)."""
    check_export(cfg)
