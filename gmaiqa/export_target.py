"""``gmaiqa export``'s target checked before anything is read or written: a known format, an ``out`` file
that is not there (or may be replaced), a tolerance on the 0-100 score scale, and a checkpoint that is
not an export already."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from gmaiqa.errors import ConfigError
from gmaiqa.schemas.commands import ExportFormat

FORMATS = tuple(f.value for f in ExportFormat)  # what `export format=` writes (gmaiqa.export)


def check_export_target(cfg: DictConfig) -> None:
    """export: a known format, and an ``out`` file that is not there (or may be replaced)."""
    if cfg.format not in FORMATS:
        raise ConfigError("format", f"unknown format {cfg.format!r}", f"use one of {list(FORMATS)}")
    out = Path(str(cfg.out))
    if out.exists() and not cfg.overwrite:
        raise ConfigError("out", f"{out} exists", "choose another file, or pass overwrite=true")
    tolerance = cfg.get("half_tolerance", 0.01)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance <= 1:
        raise ConfigError(
            "half_tolerance",
            f"{tolerance!r} is not a share of the 0-100 score scale",
            "give a number from 0 (always keep fp32) to 1, e.g. half_tolerance=0.01 for one point",
        )


def check_export(cfg: DictConfig) -> None:
    """The precheck of export: its target, and a checkpoint that can be read and is not an export."""
    # here, not at import: loads torch only when this runs
    from gmaiqa.checkpoints import read_checkpoint

    check_export_target(cfg)
    if read_checkpoint(cfg.ckpt).get("exported"):
        raise ConfigError("ckpt", f"{cfg.ckpt} is already an exported model", "export the .ckpt it came from")
