"""gmaiqa summarize DIR [wandb.mode=offline|online|disabled]: see ``gmaiqa.summarize``.

``DIR`` may be given bare (the command line turns it into ``dir=DIR``); ``--wandb MODE`` and
``--project NAME`` of earlier releases still work, with a message naming ``wandb.mode`` /
``wandb.project``."""

from __future__ import annotations

from omegaconf import DictConfig

from gmaiqa.summarize import summarize


def run(cfg: DictConfig) -> int:
    summarize(cfg.dir, cfg.wandb.mode, cfg.wandb.project)
    return 0
