"""gmaiqa check root=DIR [validate=full|headers] - exit 0 when the dataset is valid, 1 otherwise."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from gmaiqa.data.manifest import format_report, inspect_dataset
from gmaiqa.errors import ConfigError


def run(cfg: DictConfig) -> int:
    if not cfg.root:
        raise ConfigError("root", "no dataset folder", "pass root=DIR")
    report = inspect_dataset(cfg.root, validate=cfg.validate, workers=cfg.workers)
    print(format_report(report))
    if cfg.json:
        print(json.dumps(report.summary(), indent=1, default=list))
    return 0 if report.ok else 1
