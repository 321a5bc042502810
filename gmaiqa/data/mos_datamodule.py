"""Rated images for SAQM: training patches per domain-adaptation mode, whole images for evaluation.

Modes (the seed paper's four configurations, §3.1):

    target_only         train on the target domain's labels (config 1: MD72 only)
    source_only         train on the source domain's labels (config 2: TID2013 only)
    unsupervised_da     source labels + target images without labels, domain classifier on both (config 3)
    semi_supervised_da  as unsupervised_da, plus ``target_label_fraction`` of the target images
                        labelled (config 4)

Training draws ``patches_per_image`` random 32x32 patches per image per epoch, from (seed, epoch, image),
each carrying the image's MOS normalised to [0, 1] with its domain's train range. Validation and test
score every image whole (sliding patches in the model) and report correlations per domain.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gmaiqa.data.cache import build_once, cached_dir
from gmaiqa.data.io import read_image
from gmaiqa.data.mos import RatedImage, load_mos_dataset, normalise_mos, split_rated
from gmaiqa.errors import ConfigError

MODES = ("target_only", "source_only", "unsupervised_da", "semi_supervised_da")
PATCH = 32


def label_domains(mode: str, source: str, target: str) -> tuple[str, ...]:
    """The domains whose labels a mode may learn from (and select checkpoints on)."""
    return {
        "target_only": (target,),
        "source_only": (source,),
        "unsupervised_da": (source,),
        "semi_supervised_da": (source, target),
    }[mode]


class PatchSet(Dataset):
    def __init__(
        self,
        items: list[RatedImage],
        targets: list[float],
        labelled: list[bool],
        domains: list[int],
        patches: int,
        seed: int,
    ):
        self.items, self.targets, self.labelled, self.domains = items, targets, labelled, domains
        self.patches, self.seed, self.epoch = patches, seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image = read_image(self.items[index].path)
        h, w = image.shape[:2]
        if h < PATCH or w < PATCH:
            raise ConfigError(
                "data.root",
                f"{self.items[index].path} is {h}x{w}, smaller than a {PATCH}x{PATCH} patch",
                "use larger images",
            )
        rng = np.random.default_rng([self.seed, self.epoch, index])
        tops, lefts = (
            rng.integers(0, h - PATCH + 1, self.patches),
            rng.integers(0, w - PATCH + 1, self.patches),
        )
        crops = np.stack([image[t : t + PATCH, left : left + PATCH] for t, left in zip(tops, lefts)])
        n = self.patches
        return {
            "patches": torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous(),
            "target": torch.full((n,), self.targets[index], dtype=torch.float32),
            "labelled": torch.full((n,), self.labelled[index], dtype=torch.bool),
            "domain": torch.full((n,), float(self.domains[index])),
        }


class ImageSet(Dataset):
    def __init__(self, items: list[RatedImage], targets: list[float]):
        self.items, self.targets = items, targets

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        return {
            "image": torch.from_numpy(read_image(item.path)).permute(2, 0, 1).contiguous(),
            "mos": item.mos,
            "target": self.targets[index],
            "domain": item.domain,
            "name": str(item.path.name),
        }


def _concat(batch: list[dict]) -> dict:
    return {k: torch.cat([b[k] for b in batch]) for k in batch[0]}


def _single(batch: list[dict]) -> dict:
    (item,) = batch
    return {**item, "image": item["image"][None]}


class MOSDataModule(L.LightningDataModule):
    def __init__(
        self,
        *,
        root: str | None = None,
        synthetic: dict | None = None,
        cache_dir: str = ".gmaiqa_cache",
        source: str = "natural",
        target: str = "ultrasound",
        mode: str = "semi_supervised_da",
        target_label_fraction: float = 0.25,
        patches_per_image: int = 16,
        batch_size: int = 8,
        split_ratios=(0.6, 0.2, 0.2),
        seed: int = 0,
        num_workers: int = 2,
        validate: str = "full",
    ):
        super().__init__()
        if mode not in MODES:
            raise ConfigError("data.mode", f"unknown mode {mode!r}", f"use one of {list(MODES)}")
        if not 0 <= target_label_fraction <= 1:
            raise ConfigError(
                "data.target_label_fraction", f"{target_label_fraction}", "use a fraction in [0, 1]"
            )
        if root is None and not synthetic:
            raise ConfigError(
                "data.root",
                "no dataset given",
                "set data.root=DIR (manifest.csv with image,mos,domain) or use data=mos_synthetic",
            )
        self.synthetic = dict(synthetic) if synthetic else None
        self.root = (
            Path(root) if root is not None else cached_dir(cache_dir, "synthetic", "mos", self.synthetic)
        )
        self.source, self.target, self.mode = source, target, mode
        self.target_label_fraction = target_label_fraction
        self.patches_per_image, self.batch_size = patches_per_image, batch_size
        self.split_ratios, self.seed, self.num_workers, self.validate = (
            tuple(split_ratios),
            seed,
            num_workers,
            validate,
        )
        self.splits: dict[str, list[RatedImage]] | None = None
        self.ranges: dict[str, tuple[float, float]] = {}
        self._train: PatchSet | None = None

    def prepare_data(self) -> None:
        if self.synthetic:
            # here, not at import: loads scipy only when this runs
            from gmaiqa.data.synthetic_mos import generate_mos_pair

            build_once(self.root, lambda folder: generate_mos_pair(folder, **self.synthetic))

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        items = load_mos_dataset(self.root, self.validate)
        domains = sorted({i.domain for i in items})
        needed = set(label_domains(self.mode, self.source, self.target))
        if self.mode.endswith("_da"):
            needed |= {self.source, self.target}
        missing = sorted(needed - set(domains))
        if missing:
            raise ConfigError(
                "data.source",
                f"mode {self.mode} needs domain(s) {missing}, not in {self.root} (domains: {domains})",
                "set data.source / data.target to domains of the manifest",
            )
        self.splits = split_rated(items, self.split_ratios, self.seed)
        self.ranges = normalise_mos(self.splits["train"] or items)

    def normalised(self, item: RatedImage) -> float:
        lo, hi = self.ranges.get(item.domain, (0.0, 1.0))
        return float(np.clip((item.mos - lo) / (hi - lo), 0, 1)) if hi > lo else 0.5

    def set_epoch(self, epoch: int) -> None:
        """New random patches every epoch (workers are re-created per epoch and see it)."""
        if self._train is not None:
            self._train.epoch = epoch

    def training_items(self) -> tuple[list[RatedImage], list[bool]]:
        train = self.splits["train"]
        source = [i for i in train if i.domain == self.source]
        target = [i for i in train if i.domain == self.target]
        if self.mode == "target_only":
            return target, [True] * len(target)
        if self.mode == "source_only":
            return source, [True] * len(source)
        labelled_target = [False] * len(target)
        if self.mode == "semi_supervised_da" and target:
            rng = np.random.default_rng([self.seed, 7])
            chosen = rng.choice(
                len(target), size=round(self.target_label_fraction * len(target)), replace=False
            )
            for c in chosen:
                labelled_target[c] = True
        return source + target, [True] * len(source) + labelled_target

    def train_dataloader(self) -> DataLoader:
        items, labelled = self.training_items()
        if not items:
            raise ConfigError(
                "data.mode",
                f"mode {self.mode} has no training images in {self.root}",
                "check data.source / data.target",
            )
        domains = [int(i.domain == self.target) for i in items]
        self._train = PatchSet(
            items, [self.normalised(i) for i in items], labelled, domains, self.patches_per_image, self.seed
        )
        return DataLoader(
            self._train,
            batch_size=self.batch_size,
            shuffle=True,
            collate_fn=_concat,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _eval(self, split: str) -> DataLoader:
        items = [i for i in self.splits[split] if i.domain in (self.source, self.target)]
        return DataLoader(
            ImageSet(items, [self.normalised(i) for i in items]),
            batch_size=1,
            collate_fn=_single,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval("test")
