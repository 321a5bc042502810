"""``logger.wandb.*`` as a command reads it: the one place W&B is configured in every command, and the
shim that still reads the ``wandb.*`` keys benchmark and summarize had before (for one release)."""

from __future__ import annotations

import sys

from omegaconf import DictConfig, OmegaConf

from gmaiqa.errors import ConfigError, did_you_mean
from gmaiqa.schemas.logger import WandbMode

WANDB_MODES = tuple(mode.value for mode in WandbMode)


def wandb_settings(cfg: DictConfig, command: str) -> dict:
    """The command's W&B settings (mode, project, entity) as plain values. ``logger.wandb`` is typed
    (``gmaiqa.schemas.logger``); a deprecated ``wandb.KEY`` still given wins, with a message naming
    ``logger.wandb.KEY``, and its mode is checked here since no schema types it."""
    settings = dict(OmegaConf.to_container(cfg.logger.wandb, resolve=True, enum_to_str=True))
    old = cfg.get("wandb") or {}
    for key, value in old.items():
        if value is not None:
            print(
                f"gmaiqa {command}: wandb.{key} is deprecated and will be removed in the next release: "
                f"use logger.wandb.{key}={value}",
                file=sys.stderr,
            )
            settings[key] = value
    mode = settings.get("mode")
    if mode not in WANDB_MODES:
        hint = did_you_mean(str(mode), WANDB_MODES)
        raise ConfigError("wandb.mode", f"{mode!r}{hint}", f"choose one of {list(WANDB_MODES)}")
    return settings
