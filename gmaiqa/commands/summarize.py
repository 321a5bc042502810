"""gmaiqa summarize DIR [logger.wandb.mode=offline|online|disabled]: see ``gmaiqa.summarize``.

``DIR`` may be given bare (the command line turns it into ``dir=DIR``); ``--wandb MODE`` and
``--project NAME`` of earlier releases, and ``wandb.mode``/``wandb.project``, still work, with a
message naming ``logger.wandb.mode`` / ``logger.wandb.project``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.summarize import summarize
from gmaiqa.wandb_settings import wandb_settings


def run(cfg: DictConfig) -> int:
    wandb = wandb_settings(cfg, "summarize")
    summarize(cfg.dir, wandb["mode"], wandb["project"])
    return 0
