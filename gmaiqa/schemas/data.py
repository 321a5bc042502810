"""``data`` for a dataset folder or the built-in synthetic stacks (``conf/data/folder.yaml``,
``conf/data/synthetic.yaml``): what ``gmaiqa.data.datamodule.FocusStackDataModule`` takes. Values, the
paper's sections and comments: the YAML; types and choices: here. The ranges that compare keys
(crop within resize, a batch of at least two) are the data module's, which the precheck builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING


class Validation(StrEnum):
    """How much of every image is read before training or scoring (``gmaiqa check``'s levels)."""

    full = "full"  # decode every image: a truncated file is found before it costs a run
    headers = "headers"  # read sizes and types only
    none = "none"


class UniformSizes(StrEnum):
    """A group whose images differ in size: refuse it, or centre-crop it to its smallest image."""

    require = "require"
    crop = "crop"


class Normalization(StrEnum):
    """``image``: each image z-scored on its own (GMANet §3.4); ``stack``: by its stack's statistics."""

    image = "image"
    stack = "stack"


class ImageCache(StrEnum):
    """``resized``: keep every image resized to ``data.resize`` (keyed by the file's content)."""

    resized = "resized"


@dataclass
class FocusStackData:
    _target_: str = "gmaiqa.data.datamodule.FocusStackDataModule"
    root: str | None = MISSING  # ??? merged onto a default would keep the default (OmegaConf)
    synthetic: Any = None  # gmaiqa.data.synthetic's options, or a mixture of them
    cache_dir: str = ".gmaiqa_cache"
    batch_size: int = 7
    resize: list[int] | None = None
    scale_range: list[float] | None = None
    pixel_um: float | None = None
    crop: list[int] | None = None
    eval_crop: list[int] | None = None
    normalize: Normalization = Normalization.image
    attention: str = "local_max"
    block: list[int] = field(default_factory=lambda: [32, 32])
    split_ratios: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    split_seed: int = 0
    seed: int = 0
    num_workers: Any = "auto"  # a count or auto
    pin_memory: Any = "auto"  # true, false or auto
    persistent_workers: bool = True
    prefetch_factor: int = 2
    cache: ImageCache | None = None
    maps_on_device: bool = True
    flips: bool = False
    rot90: bool = False
    crop_per_image: bool = False
    validate: Validation = Validation.full
    allow_outside: bool = False
    uniform_sizes: UniformSizes = UniformSizes.require
    channel: Any = None  # a name or an index
    t: int | None = None
