"""gmaiqa eval ckpt=PATH data.root=DIR out=DIR: the paper's evaluation (§4.2) of a checkpoint on any
labelled dataset, with the training run's preprocessing and sliding window. Writes ``metrics.json``
and ``per_group.csv`` to ``out`` and prints the table. The same FocusQualityTask test loop as training
computes the metrics, so figures match the training run's test numbers on the same groups."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from gmaiqa.checkpoints import load_net
from gmaiqa.data.datamodule import FocusStackDataset, collate_group
from gmaiqa.data.manifest import load_dataset
from gmaiqa.data.sampling import WholeGroupSampler
from gmaiqa.data.splits import split_stacks
from gmaiqa.data.transforms import Preprocess
from gmaiqa.errors import ConfigError
from gmaiqa.reporting import print_metrics, write_per_group
from gmaiqa.tasks import FocusQualityTask


def prepare_out(out: str | None, overwrite: bool, files: tuple[str, ...]) -> Path:
    """The output folder, refusing to replace results already there unless ``overwrite``."""
    if not out:
        raise ConfigError("out", "no output folder", "pass out=DIR")
    path = Path(out)
    existing = [p for p in files if (path / p).exists()]
    if existing and not overwrite:
        raise ConfigError("out", f"{path} already holds {existing}", "choose another folder or pass overwrite=true")
    path.mkdir(parents=True, exist_ok=True)
    return path


def preprocess_of(meta: dict, cfg: DictConfig) -> Preprocess:
    data = meta["data"]
    resize = cfg.get("resize") or data.get("resize")
    amap = meta["model"].get("attention_map") or {"kind": "local_max", "block": [32, 32]}
    block = cfg.get("block") or amap["block"]  # the paper evaluates leucorrhea at 768x1152 with φ 8x8 (§4.3)
    return Preprocess(tuple(resize) if resize else None, amap["kind"], tuple(block))


def inference_of(meta: dict, cfg: DictConfig) -> dict:
    inference = dict(meta.get("inference") or {})
    for key in ("patch", "step", "max_patches"):
        if cfg.inference.get(key) is not None:
            inference[key] = OmegaConf.to_container(cfg.inference[key]) if key != "max_patches" else cfg.inference[key]
    return inference


def loader_for(stacks, preprocess: Preprocess, num_workers: int) -> DataLoader:
    dataset = FocusStackDataset(stacks, preprocess, crop=None, random_crop=False)
    return DataLoader(dataset, batch_sampler=WholeGroupSampler([len(s) for s in stacks]), collate_fn=collate_group,
                      num_workers=num_workers)


def score_groups(net, meta: dict, stacks, cfg: DictConfig, device, desc: str = "score"):
    """Yield (group index, image scores) for every group, with the checkpoint's preprocessing and
    sliding window (overridable by cfg.resize / cfg.inference); a progress bar shows the groups."""
    import torch
    from tqdm import tqdm

    from gmaiqa.inference import predict_scores

    inference = inference_of(meta, cfg)
    patch = tuple(inference["patch"]) if inference.get("patch") else None
    step = tuple(inference.get("step", (256, 256)))
    for batch in tqdm(loader_for(stacks, preprocess_of(meta, cfg), cfg.num_workers), total=len(stacks), unit="group", desc=desc):
        attention = batch["attention"].to(device) if net.attention_depth > 0 else None
        with torch.no_grad():
            scores = predict_scores(net, batch["image"].to(device), attention, patch, step, int(inference.get("max_patches", 12)))
        yield batch["group"], scores.cpu()


def device_for(accelerator: str):
    """The torch device a command runs on: CUDA when asked for (or auto) and present, else CPU."""
    import torch

    return torch.device("cuda" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu")


def labelled_stacks(root, validate: str, split: str, ratios, seed: int):
    """The labelled groups of a dataset (all, or one split made as in training) for scoring methods."""
    stacks = load_dataset(root, validate=validate)
    if split != "all":
        stacks = split_stacks(stacks, tuple(ratios), seed)[split]
    unlabelled = [s.group for s in stacks if not s.labelled]
    if unlabelled:
        raise ConfigError("data.root", f"groups without a clearest image: {unlabelled[:5]}",
                          "scoring needs labels (score or clearest column); use `gmaiqa predict` for unlabelled stacks")
    if not stacks:
        raise ConfigError("split", f"no groups in split {split!r}", "use split=all or another split")
    return stacks


def test_checkpoint(net, meta: dict, stacks, options: DictConfig) -> tuple[dict, list[dict]]:
    """A loaded checkpoint's (``load_net``) test figures (t0, t1, acc, SROCC, ...) and per-group rows on
    ``stacks``, with its preprocessing unless ``options`` (resize, block, inference, accelerator,
    num_workers) override it. One device; the same FocusQualityTask test loop as training."""
    task = FocusQualityTask(net, inference=inference_of(meta, options))
    trainer = L.Trainer(accelerator=options.accelerator, devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=True, enable_model_summary=False)
    trainer.test(task, dataloaders=loader_for(stacks, preprocess_of(meta, options), options.num_workers), verbose=False)
    metrics = {k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics["groups"] = int(metrics.get("groups", 0))
    return metrics, task.group_results["test"]


def evaluate(cfg: DictConfig) -> dict:
    out = prepare_out(cfg.out, cfg.overwrite, ("metrics.json", "per_group.csv"))
    net, meta = load_net(cfg.ckpt)
    seed = cfg.data.seed if cfg.data.seed is not None else meta["data"].get("seed", 0)
    stacks = labelled_stacks(cfg.data.root, cfg.data.validate, cfg.split, meta["data"].get("split_ratios", (0.6, 0.2, 0.2)), seed)
    metrics, rows = test_checkpoint(net, meta, stacks, cfg)
    record = {"checkpoint": str(cfg.ckpt), "data": str(cfg.data.root), "split": cfg.split, "stage": meta.get("stage"), **metrics}
    (out / "metrics.json").write_text(json.dumps(record, indent=1))
    write_per_group(out / "per_group.csv", rows)
    print_metrics(f"{cfg.data.root} ({cfg.split}, {metrics['groups']} groups)", metrics)
    print(f"-> {out / 'metrics.json'}, {out / 'per_group.csv'}")
    return record
