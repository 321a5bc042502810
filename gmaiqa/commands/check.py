"""gmaiqa check root=DIR [validate=full|headers] [json=true] - exit 0 when the dataset is valid, 1 otherwise.
A manifest with a ``mos`` column and no ``group`` column is checked against the MOS contract."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig

from gmaiqa.commands.scoring import check_reading_choices
from gmaiqa.data.dataset import inspect_dataset
from gmaiqa.data.mos import load_mos_dataset
from gmaiqa.data.report import DatasetError, format_report
from gmaiqa.errors import ConfigError, is_count


def run(cfg: DictConfig) -> int:
    if not cfg.root:
        raise ConfigError("root", "no dataset folder", "pass root=DIR")
    if is_mos_dataset(cfg.root):
        return check_mos(cfg.root, cfg.validate)
    report = inspect_dataset(
        cfg.root,
        validate=cfg.validate,
        workers=cfg.workers,
        allow_outside=cfg.allow_outside,
        uniform_sizes=cfg.uniform_sizes,
        channel=cfg.channel,
        t=cfg.t,
        option_prefix="",
    )
    if cfg.json:  # stdout stays machine-readable: the human report goes to stderr
        print(format_report(report), file=sys.stderr)
        print(json.dumps(report.summary(), indent=1, default=list))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def is_mos_dataset(root) -> bool:

    manifest = Path(root) / "manifest.csv"
    if not manifest.is_file():
        return False
    with open(manifest, newline="", encoding="utf-8-sig") as handle:
        header = [c.strip() for c in next(csv.reader(handle), [])]
    return "mos" in header and "group" not in header


def check_mos(root, validate: str) -> int:

    try:
        items = load_mos_dataset(root, validate=validate)
    except DatasetError as exc:
        print(exc)
        return 1
    domains = Counter(i.domain for i in items)
    print(
        f"{root}: MOS dataset, {len(items)} rated images; domains "
        + ", ".join(f"{d} {n}" for d, n in sorted(domains.items()))
    )
    for domain in sorted(domains):
        scores = [i.mos for i in items if i.domain == domain]
        print(f"  {domain}: MOS {min(scores):g} .. {max(scores):g}")
    print("OK: dataset is valid")
    return 0


def check(cfg: DictConfig) -> None:
    """Before anything is read (``gmaiqa.config_check.precheck``)."""

    check_reading_choices(cfg, "")
    if cfg.workers is not None and not is_count(cfg.workers, 1):
        raise ConfigError(
            "workers", f"{cfg.workers!r}", "give a number of reader threads, or null for 2 x cores"
        )
