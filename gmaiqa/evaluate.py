"""gmaiqa eval ckpt=PATH data.root=DIR out=DIR: the paper's evaluation (§4.2) of a checkpoint on any
labelled dataset, scored as the checkpoint was trained to score (its preprocessing and sliding window,
or the defocus regressor's tiles) and in its score direction (``gmaiqa.scoring``). Writes
``metrics.json`` and ``per_group.csv`` to ``out`` and prints the table. The metric code is the one the
training run's test uses, so figures match its test numbers on the same groups."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from gmaiqa.checkpoints import load_net
from gmaiqa.data.splits import check_split
from gmaiqa.outputs import OUTPUTS, check_out, written
from gmaiqa.reporting import print_metrics, write_per_group
from gmaiqa.scoring import (
    labelled_stacks,
    reading_options,
    split_seed_of,
    test_checkpoint,
)


def evaluate(cfg: DictConfig) -> dict:
    out = check_out(cfg.out, cfg.overwrite, OUTPUTS["eval"])
    check_split(cfg.split)
    net, meta = load_net(cfg.ckpt)
    trained = meta["data"]
    split_seed = split_seed_of(cfg.data, trained.get("split_seed", trained.get("seed", 0)))
    stacks = labelled_stacks(
        cfg.data.root,
        cfg.data.validate,
        cfg.split,
        trained.get("split_ratios", (0.6, 0.2, 0.2)),
        split_seed,
        **reading_options(cfg.data),
    )
    metrics, rows = test_checkpoint(net, meta, stacks, cfg)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "checkpoint": str(cfg.ckpt),
        "data": str(cfg.data.root),
        "split": cfg.split,
        "stage": meta.get("stage"),
        **metrics,
    }
    with written(out / "metrics.json") as part:
        part.write_text(json.dumps(record, indent=1))
    write_per_group(out / "per_group.csv", rows)
    print_metrics(f"{cfg.data.root} ({cfg.split}, {metrics['groups']} groups)", metrics)
    print(f"-> {out / 'metrics.json'}, {out / 'per_group.csv'}")
    return record
