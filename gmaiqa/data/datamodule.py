"""FocusStackDataModule: the dataset contract turned into GMANet batches.

Training batches are group batches (``GroupBatchSampler``): clearest + (batch_size - 1) others from one
group, resized, z-scored, with their attention map, cropped jointly (one crop per batch by default)
and flipped alike. Validation and test batches are whole groups in capture order, uncropped unless
``eval_crop`` is set (models slide their own window, see ``gmaiqa.inference``).

With ``root=None`` and a ``synthetic`` spec, ``prepare_data`` writes a synthetic dataset once into
``cache_dir`` (keyed by the spec) and every later run reuses it: the product runs with no data at hand.

Lightning must not wrap the sampler (Trainer(use_distributed_sampler=False)): the group sampler
shards groups over ranks itself.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gmaiqa.data.cache import ResizedImageCache
from gmaiqa.data.dataset import check_reading, load_dataset

# where the images are; synthetic_configs and synthetic_members stay importable from here
from gmaiqa.data.dataset_root import dataset_root, plain, synthetic_configs, synthetic_members  # noqa: F401
from gmaiqa.data.pixels import pixel_size, size_pair, trained_range, zoom_factor, zoom_range
from gmaiqa.data.sampling import GroupBatchSampler, SampleKey, WholeGroupSampler
from gmaiqa.data.splits import split_stacks
from gmaiqa.data.stack import FocusStack
from gmaiqa.data.transforms import (
    Preprocess,
    StackStatistics,
    augment_image,
    augment_pair,
    build_augment,
    crop_box,
    normalization,
)
from gmaiqa.errors import ConfigError, is_count
from gmaiqa.schemas.data import ImageCache


def loader_workers(setting: int | str, processes: int = 1) -> int:
    """``data.num_workers``: a number, or ``auto``: the CPUs this process may use, shared by the training
    processes of the machine (each DDP process has its own loader)."""
    if setting != "auto":
        if not str(setting).lstrip("-").isdigit() or int(setting) < 0:
            raise ConfigError(
                "data.num_workers", f"{setting!r}", "give a number of workers (0: none) or auto"
            )
        return int(setting)

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", processes))
    return max(1, cpus // max(1, local))


class FocusStackDataset(Dataset):
    """Items are addressed by ``SampleKey`` (group, image, draw seed), not by a flat index."""

    def __init__(
        self,
        stacks: Sequence[FocusStack],
        preprocess: Preprocess,
        crop: tuple[int, int] | None,
        random_crop: bool,
        augment=None,
        crop_per_image: bool = False,
        maps_on_device: bool = False,
        cache: ResizedImageCache | None = None,
        scale_range: tuple[float, float] | None = None,
    ):
        self.stacks = list(stacks)
        self.scale_range = scale_range
        self.cache = cache
        self.preprocess = preprocess
        self.crop = crop
        self.random_crop = random_crop
        self.augment = augment
        self.crop_per_image = crop_per_image
        self.maps_on_device = maps_on_device
        self.stack_statistics = StackStatistics() if preprocess.normalize == "stack" else None

    def __len__(self) -> int:
        return sum(len(s) for s in self.stacks)

    def __getitem__(self, key: SampleKey) -> dict:
        stack = self.stacks[key.group]
        rgb = self.read(stack, key.image)
        stats = self.stack_statistics and self.stack_statistics(key.group, stack, partial(self.read, stack))
        rng = None
        preprocess = self.preprocess
        if self.random_crop:
            rng = np.random.default_rng(
                [key.draw_seed, key.image] if self.crop_per_image else [key.draw_seed]
            )
            if self.scale_range:
                preprocess = self.zoomed(preprocess, rgb.shape[:2], key.draw_seed)
        if self.maps_on_device:
            image, context, size = preprocess.crop_with_context(rgb, self.crop, rng, stats)
            image, flips = augment_image(self.augment, image, key.draw_seed)
            maps = {
                "attention_context": context,
                "attention_spec": (preprocess.attention, preprocess.block_for(*size), preprocess.margin),
                "flips": flips,
            }
        else:
            image, amap = preprocess(rgb, stats)
            top, left, h, w = crop_box(image.shape[-2], image.shape[-1], self.crop, rng)
            image, amap = image[:, top : top + h, left : left + w], amap[:, top : top + h, left : left + w]
            image, amap = augment_pair(self.augment, image, amap, key.draw_seed)
            maps = {"attention": amap.contiguous()}
        score = float(stack.scores[key.image]) if stack.scores is not None else math.nan
        z_um = float(stack.z_um[key.image]) if stack.z_um is not None else math.nan
        return {
            "image": image.contiguous(),
            **maps,
            "score": score,
            "z_um": z_um,
            "index": key.image,
            "group": key.group,
            "group_name": stack.group,
            "path": str(stack.paths[key.image]),
            "is_clearest": key.image == stack.clearest,
        }

    def read(self, stack: FocusStack, index: int) -> np.ndarray:
        if self.cache is not None:
            return self.cache.read(stack.paths[index], stack.crop_to)
        return stack.read(index)

    def zoomed(self, preprocess: Preprocess, source: tuple[int, int], draw_seed: int) -> Preprocess:
        """``data.scale_range``: the batch's images resized by one random zoom on top of ``data.resize``
        (or their native size), never below the crop."""
        height, width = preprocess.resize or source
        zoom = zoom_factor(draw_seed, self.scale_range)
        if self.crop is not None:
            zoom = max(zoom, self.crop[0] / height, self.crop[1] / width)
        return replace(preprocess, resize=(max(1, round(height * zoom)), max(1, round(width * zoom))))


def collate_group(items: list[dict]) -> dict:
    """One group per batch; ``clearest`` is the batch position of the clearest image (-1 if absent)."""
    flags = [it["is_clearest"] for it in items]
    if (
        "attention_context" in items[0]
    ):  # the device computes the maps (gmaiqa.data.transforms.with_attention)
        maps = {
            "attention_context": torch.stack([it["attention_context"] for it in items]),
            "attention_spec": items[0]["attention_spec"],
            "flips": torch.tensor([it["flips"] for it in items], dtype=torch.long),
        }
    else:
        maps = {"attention": torch.stack([it["attention"] for it in items])}
    return {
        "image": torch.stack([it["image"] for it in items]),
        **maps,
        "score": torch.tensor([it["score"] for it in items], dtype=torch.float32),
        "z_um": torch.tensor([it["z_um"] for it in items], dtype=torch.float64),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "group": items[0]["group"],
        "group_name": items[0]["group_name"],
        "paths": [it["path"] for it in items],
        "clearest": flags.index(True) if any(flags) else -1,
    }


class FocusStackDataModule(L.LightningDataModule):
    # a fit resumed mid-epoch continues with the batches it had left (state_dict / load_state_dict below)
    restores_sampler_position = True

    def __init__(
        self,
        *,
        root: str | None = None,
        synthetic: dict | None = None,
        cache_dir: str = ".gmaiqa_cache",
        batch_size: int = 7,
        resize: Sequence[int] | None = (1024, 1536),
        crop: Sequence[int] | None = (512, 768),
        eval_crop: Sequence[int] | None = None,
        attention: str = "local_max",
        block: Sequence[int] = (32, 32),
        split_ratios: Sequence[float] = (0.6, 0.2, 0.2),
        seed: int = 0,
        split_seed: int = 0,
        num_workers: int | str = "auto",
        flips: bool = False,
        rot90: bool = False,
        crop_per_image: bool = False,
        validate: str = "full",
        allow_outside: bool = False,
        uniform_sizes: str = "require",
        pin_memory: bool | str = "auto",
        maps_on_device: bool = True,
        persistent_workers: bool = True,
        prefetch_factor: int = 2,
        cache: str | None = None,
        channel: str | int | None = None,
        t: int | None = None,
        pixel_um: float | None = None,
        scale_range: Sequence[float] | None = None,
        normalize: str = "image",
    ):
        super().__init__()
        # a data.root of the user's wins over the built-in synthetic set of data=synthetic
        self.synthetic = plain(synthetic) if synthetic and root is None else None
        self.cache_dir = cache_dir
        self.root = dataset_root(root, self.synthetic, cache_dir, generate_now=False)
        if not is_count(batch_size, 2):
            raise ConfigError(
                "data.batch_size",
                f"{batch_size!r}: a group batch holds the clearest image and at least one other (§3.4)",
                "use data.batch_size=7 (the paper's: the clearest + 6) or another whole number of at least 2",
            )
        self.batch_size = batch_size
        self.crop = size_pair(crop, "data.crop")
        self.eval_crop = size_pair(eval_crop, "data.eval_crop")
        self.preprocess = Preprocess(
            size_pair(resize, "data.resize"),
            attention,
            size_pair(block, "data.block"),
            normalization(normalize, "data.normalize"),
        )
        self.split_ratios = tuple(split_ratios)
        self.seed = seed
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.augment = build_augment(
            flips, rot90, square=self.crop is not None and self.crop[0] == self.crop[1]
        )
        self.crop_per_image = crop_per_image
        check_reading(validate, uniform_sizes)
        self.validate = validate
        self.reading = {
            "allow_outside": allow_outside,
            "uniform_sizes": uniform_sizes,
            "channel": channel,
            "t": t,
        }
        self.pin_memory = torch.cuda.is_available() if pin_memory == "auto" else bool(pin_memory)
        self.maps_on_device = maps_on_device
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        if cache not in (None, *(kind.value for kind in ImageCache)):
            raise ConfigError("data.cache", f"{cache!r}", "use data.cache=resized, or null for no cache")
        self.pixel_um = pixel_size(pixel_um, "data.pixel_um")
        self.scale_range = zoom_range(scale_range, "data.scale_range")
        if cache and self.scale_range:
            raise ConfigError(
                "data.cache",
                "data.cache=resized keeps one size of every image; data.scale_range draws one per batch",
                "use one of them (the cache for the paper's fixed resize, scale_range for native-resolution "
                "training)",
            )
        self.cache = ResizedImageCache(cache_dir, self.preprocess.resize) if cache else None
        self.splits: dict[str, list[FocusStack]] | None = None
        self._train_sampler: GroupBatchSampler | None = None
        self._resume_state: dict | None = None

    # ---------------------------------------------------------------- data preparation
    def prepare_data(self) -> None:
        if self.synthetic:
            dataset_root(None, self.synthetic, self.cache_dir)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        stacks = load_dataset(self.root, validate=self.validate, **self.reading)
        self.splits = split_stacks(stacks, self.split_ratios, self.split_seed)
        if stage in (None, "fit"):
            unlabelled = [s.group for s in self.splits["train"] + self.splits["val"] if not s.has_scores]
            if unlabelled:
                raise ConfigError(
                    "data.root",
                    f"training/validation groups without scores: {unlabelled[:5]}",
                    "training needs the score column; evaluate clearest-only sets with `gmaiqa eval`",
                )
            for name in ("train", "val"):
                if not self.splits[name]:
                    raise ConfigError(
                        "data.split_ratios",
                        f"the {name} split of {self.root} is empty",
                        "use more groups or other split ratios",
                    )

    def dataset(self, split: str, train: bool = False) -> FocusStackDataset:
        if self.splits is None:
            self.setup()
        crop = self.crop if train else self.eval_crop
        return FocusStackDataset(
            self.splits[split],
            self.preprocess,
            crop,
            random_crop=train,
            augment=self.augment if train else None,
            crop_per_image=self.crop_per_image,
            maps_on_device=self.maps_on_device,
            cache=self.cache,
            scale_range=self.scale_range if train else None,
        )

    def trained_pixel_um(self) -> dict | None:
        """The µm per network pixel the training groups span (``gmaiqa.data.pixels``), for the checkpoint."""
        if self.splits is None:
            self.setup("fit")
        return trained_range(self.splits["train"], self.preprocess.resize, self.scale_range, self.pixel_um)

    def _loader(self, dataset: FocusStackDataset, sampler) -> DataLoader:
        workers = loader_workers(self.num_workers, self._world()[0])
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_group,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and workers > 0,
            prefetch_factor=self.prefetch_factor if workers > 0 else None,
        )

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train", train=True)
        world, rank = self._world()
        sampler = GroupBatchSampler(
            [len(s) for s in dataset.stacks],
            [s.clearest for s in dataset.stacks],
            self.batch_size,
            seed=self.seed,
            shuffle=True,
            num_replicas=world,
            rank=rank,
        )
        if self._resume_state is not None:
            sampler.load_state_dict(self._resume_state)
            self._resume_state = None
        self._train_sampler = sampler
        return self._loader(dataset, sampler)

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self.dataset(split)
        world, rank = self._world()
        if len(dataset.stacks) < world:
            raise ConfigError(
                "trainer.devices",
                f"the {split} split of {self.root} has {len(dataset.stacks)} groups for {world} processes",
                "every process needs at least one group: use fewer devices, more groups or other "
                "split_ratios",
            )
        return self._loader(dataset, WholeGroupSampler([len(s) for s in dataset.stacks], world, rank))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    # ---------------------------------------------------------------- resumable sampling
    def set_epoch(self, epoch: int) -> None:
        """New group order, companions and crops every epoch (called by ``gmaiqa.callbacks.data_epoch``)."""
        if self._train_sampler is not None:
            self._train_sampler.set_epoch(epoch)

    def state_dict(self) -> dict:
        """Saved into every checkpoint: where the training sampler stands."""
        if self._train_sampler is None:
            return {}
        consumed = 0
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            # a checkpoint written from on_train_batch_end has processed the current batch
            consumed = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"sampler": self._train_sampler.state_dict(consumed)}

    def load_state_dict(self, state: dict) -> None:
        """Only a fit that resumes restores the sampler position. Lightning also calls this when
        ``trainer.test(ckpt_path=...)`` or ``validate`` restores a checkpoint; taking the state then
        would make the next stage (which shares this DataModule) skip the batches the earlier stage
        had consumed, and start at its epoch."""
        trainer = getattr(self, "trainer", None)
        fitting = trainer is not None and trainer.state.fn == "fit"
        self._resume_state = state.get("sampler") if fitting else None
