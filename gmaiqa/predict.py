"""gmaiqa predict ckpt=PATH input=DIR out=DIR: a score per image and the clearest image per group, for
labelled datasets and plain folders of folders alike. Writes ``predictions.csv`` (group, image, z,
score) and ``clearest.csv`` (group, image, z, score)."""

from __future__ import annotations

import csv
import os

import torch
from omegaconf import DictConfig

from gmaiqa.checkpoints import load_net
from gmaiqa.data.manifest import load_dataset
from gmaiqa.errors import ConfigError
from gmaiqa.evaluate import device_for, prepare_out, score_groups


def predict(cfg: DictConfig) -> None:
    if not cfg.input:
        raise ConfigError("input", "no input folder", "pass input=DIR (a dataset or a folder of z-stack folders)")
    out = prepare_out(cfg.out, cfg.overwrite, ("predictions.csv", "clearest.csv"))
    net, meta = load_net(cfg.ckpt)
    device = device_for(cfg.accelerator)
    net.to(device)
    stacks = load_dataset(cfg.input, validate=cfg.validate)
    rows, best = [], []
    for index, scores in score_groups(net, meta, stacks, cfg, device, desc="predict"):
        stack = stacks[index]
        for z, (path, score) in enumerate(zip(stack.paths, scores.tolist())):
            rows.append([stack.group, os.path.relpath(path, cfg.input), stack.z[z], f"{score:.4f}"])
        i = int(torch.argmax(scores))
        best.append([stack.group, os.path.relpath(stack.paths[i], cfg.input), stack.z[i], f"{float(scores[i]):.4f}"])
    for name, table in (("predictions.csv", rows), ("clearest.csv", best)):
        with open(out / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["group", "image", "z", "score"])
            writer.writerows(table)
    print(f"scored {len(rows)} images in {len(best)} groups -> {out / 'predictions.csv'}, {out / 'clearest.csv'}")
