"""Preprocessing and focus-preserving augmentation (GMANet §3.4).

Per image: bilinear resize (default 1024x1536), z-score of the colour image, the attention map from
the z-scored grey image at full size, then a crop taken jointly from image and map.

``normalize``: ``image`` z-scores every image by its own mean and standard deviation (§3.4), which
removes the contrast that defocus lowers; ``stack`` (ours, ``data.normalize=stack``) z-scores every image
of a group by the statistics of the whole group (:func:`stack_statistics`, pooled over all its pixels),
so a defocused image keeps its lower contrast beside the sharp one - the cue the best classical measures
on real stacks rely on (GLVN is a normalised variance). A group of one image falls back to its own.

Augmentations only move pixels (flips, 90-degree rotations of square crops): blur, sharpening, noise or
resampling would change the very clarity the labels describe, so they are never offered.

One draw per batch: every image of a group batch gets the same crop and flips (the crop location can
be drawn per image with ``crop_per_image``), so the rank loss compares the same field of view.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gmaiqa.errors import ConfigError, did_you_mean
from gmaiqa.focus.gradient import (
    ZSCORE_EPS,
    local_max_gradient_map,
    map_of_zscored_gray,
    tenengrad_map,
    to_gray,
    zscore_stats,
)
from gmaiqa.schemas.data import Normalization

NORMALIZATIONS = tuple(choice.value for choice in Normalization)  # image | stack


def normalization(value: str, key: str) -> str:
    """``data.normalize`` checked: one of :data:`NORMALIZATIONS`."""

    if value not in NORMALIZATIONS:
        raise ConfigError(
            key,
            f"{value!r}{did_you_mean(str(value), NORMALIZATIONS)}",
            f"choose one of {list(NORMALIZATIONS)} (image: the paper's, §3.4)",
        )
    return value


@dataclass(frozen=True)
class Statistics:
    """The z-score of one image: per-channel mean and scale (1, 3, 1, 1), the grey's (1, 1, 1, 1)."""

    mean: torch.Tensor
    scale: torch.Tensor
    gray_mean: torch.Tensor
    gray_scale: torch.Tensor


def stack_statistics(images) -> Statistics:
    """The z-score statistics of a whole stack: mean and standard deviation of every channel (and of the
    grey) pooled over every pixel of every image (float RGB (H, W, 3) arrays, any sizes), accumulated in
    float64 so a deep stack of large frames loses nothing."""
    sums, squares, count = np.zeros(4), np.zeros(4), 0
    for rgb in images:
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].double()
        planes = torch.cat([x, to_gray(x)], dim=1).flatten(2)[0]  # (4, H*W)
        sums += planes.sum(dim=1).numpy()
        squares += (planes**2).sum(dim=1).numpy()
        count += planes.shape[1]
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    mean, scale = torch.from_numpy(mean).float(), torch.from_numpy(std).float().clamp_min(ZSCORE_EPS)
    return Statistics(
        mean[:3].view(1, 3, 1, 1),
        scale[:3].view(1, 3, 1, 1),
        mean[3:].view(1, 1, 1, 1),
        scale[3:].view(1, 1, 1, 1),
    )


class StackStatistics:
    """``data.normalize=stack``: each group's :func:`stack_statistics`, computed the first time one of its
    images is asked for (reading every image of the group once) and kept per dataset (per loader
    worker); ``None`` for a group of one image, which is normalised by its own."""

    def __init__(self):
        self._of: dict[int, Statistics] = {}

    def __call__(self, index: int, stack, read) -> Statistics | None:
        if len(stack) < 2:
            return None
        if index not in self._of:
            self._of[index] = stack_statistics(read(i) for i in range(len(stack)))
        return self._of[index]


@dataclass(frozen=True)
class Preprocess:
    resize: tuple[int, int] | None = (1024, 1536)
    attention: str = "local_max"
    block: tuple[int, int] = (32, 32)
    normalize: str = "image"  # or "stack": the z-score statistics come from the image's stack

    def resized(self, rgb: np.ndarray) -> torch.Tensor:
        """float RGB (H, W, 3) -> (1, 3, H', W') at the configured size."""
        if self.resize is not None and tuple(rgb.shape[:2]) != tuple(self.resize):
            rgb = cv2.resize(rgb, (self.resize[1], self.resize[0]), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]

    def block_for(self, height: int, width: int) -> tuple[int, int]:
        return (min(self.block[0], height), min(self.block[1], width))

    def __call__(self, rgb: np.ndarray, stats: Statistics | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """float RGB (H, W, 3) -> z-scored image (3, H', W') and attention map (1, H', W'); ``stats``: the
        stack's (``normalize=stack``), else the image's own."""
        x = self.resized(rgb)
        gray = to_gray(x)
        s = stats or Statistics(*zscore_stats(x), *zscore_stats(gray))
        amap = map_of_zscored_gray(
            (gray - s.gray_mean) / s.gray_scale, self.attention, self.block_for(*x.shape[-2:])
        )
        return ((x - s.mean) / s.scale)[0], amap[0]

    def crop_with_context(
        self,
        rgb: np.ndarray,
        crop: tuple[int, int] | None,
        rng: np.random.Generator | None,
        stats: Statistics | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """float RGB (H, W, 3) -> the z-scored crop (3, h, w), the z-scored grey context its attention map
        is computed from on the training device (1, h + 2m, w + 2m; :func:`maps_from_context`), and the
        size of the resized image. Only the crop is normalised, with the whole image's statistics (or,
        given ``stats``, its stack's)."""
        x = self.resized(rgb)
        gray = to_gray(x)
        s = stats or Statistics(*zscore_stats(x), *zscore_stats(gray))
        box = crop_box(x.shape[-2], x.shape[-1], crop, rng)
        top, left, h, w = box
        image = (x[0, :, top : top + h, left : left + w] - s.mean[0]) / s.scale[0]
        context = (context_crop(gray[0], box, self.margin, self.attention) - s.gray_mean[0]) / s.gray_scale[0]
        return image, context, tuple(x.shape[-2:])

    @property
    def margin(self) -> int:
        """Pixels of context each side of a crop that its attention map depends on: half the block φ
        (Eq. 6, centred blocks), one for Tenengrad's 3x3 Sobel."""
        return max(self.block[0] // 2, self.block[1] // 2) if self.attention == "local_max" else 1


def context_crop(gray: torch.Tensor, box: tuple[int, int, int, int], margin: int, kind: str) -> torch.Tensor:
    """The grey crop ``box`` (top, left, h, w) of (1, H, W) with ``margin`` pixels of context each side.
    Beyond the image border the context is what the map sees there: NaN (no 2x2 patch, as the local max
    gradient's zero padding) for ``local_max``, the border pixel (Sobel's replicate padding) otherwise."""
    top, left, h, w = box
    height, width = gray.shape[-2:]
    y0, y1 = max(0, top - margin), min(height, top + h + margin)
    x0, x1 = max(0, left - margin), min(width, left + w + margin)
    # only the sides that reach past the border are padded (not the whole image)
    pad = (x0 - (left - margin), (left + w + margin) - x1, y0 - (top - margin), (top + h + margin) - y1)
    region = gray[None, :, y0:y1, x0:x1]
    if not any(pad):
        return region[0]
    if kind == "local_max":
        return F.pad(region, pad, value=float("nan"))[0]
    return F.pad(region, pad, mode="replicate")[0]


def apply_flips(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """The flips the loader applied to the images, (horizontal, vertical, quarter turns) as
    :func:`augment_image` recorded them, to a (B, C, H, W) batch: every item of a batch shares one draw."""
    horizontal, vertical, turns = (int(v) for v in flips[0])
    if horizontal:
        x = x.flip(-1)
    if vertical:
        x = x.flip(-2)
    return torch.rot90(x, turns, dims=(-2, -1)) if turns else x


def maps_from_context(batch: dict) -> torch.Tensor:
    """Attention maps (B, 1, h, w) of a batch whose loader left them to the device: computed on the
    crops' grey context, then flipped as the images were. Equal to the loader's maps (tested)."""
    context, kind, block, margin = batch["attention_context"], *batch["attention_spec"]
    full = local_max_gradient_map(context, block) if kind == "local_max" else tenengrad_map(context)
    h, w = context.shape[-2] - 2 * margin, context.shape[-1] - 2 * margin
    return apply_flips(full[..., margin : margin + h, margin : margin + w], batch["flips"])


def with_attention(batch: dict) -> dict:
    """The batch with its ``attention`` maps, computing them where the loader left them to the device."""
    if "attention_context" in batch:
        batch["attention"] = maps_from_context(batch)
        del batch["attention_context"]
    return batch


def build_augment(flips: bool = True, rot90: bool = True, square: bool = False) -> A.Compose | None:
    ops = []
    if flips:
        ops += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]
    if rot90 and square:  # a quarter turn of a non-square crop would change the batch shape
        ops.append(A.RandomRotate90(p=0.5))
    # the applied flips are recorded so the device can flip attention maps it computes alike
    return A.Compose(ops, save_applied_params=True) if ops else None


def crop_box(
    height: int, width: int, crop: tuple[int, int] | None, rng: np.random.Generator | None
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a crop; random when ``rng`` is given, centred otherwise."""
    if crop is None:
        return 0, 0, height, width
    ch, cw = crop
    if ch > height or cw > width:
        raise ValueError(
            f"crop {ch}x{cw} is larger than the resized image {height}x{width}; "
            "lower data.crop or raise data.resize"
        )
    if rng is None:
        return (height - ch) // 2, (width - cw) // 2, ch, cw
    return int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)), ch, cw


NO_FLIPS = (0, 0, 0)


def augment_image(augment: A.Compose | None, image: torch.Tensor, seed: int) -> tuple[torch.Tensor, tuple]:
    """Apply one seeded draw of ``augment`` to image (3, H, W); also return what it did as
    (horizontal flip, vertical flip, quarter turns), the same draw as :func:`augment_pair`'s."""
    if augment is None:
        return image, NO_FLIPS
    augment.set_random_seed(seed)
    out = augment(image=image.permute(1, 2, 0).numpy())
    done = {name: params for name, params in out["applied_transforms"]}
    flips = (
        int("HorizontalFlip" in done),
        int("VerticalFlip" in done),
        int(done["RandomRotate90"]["factor"]) if "RandomRotate90" in done else 0,
    )
    return torch.from_numpy(np.ascontiguousarray(out["image"])).permute(2, 0, 1), flips


def augment_pair(
    augment: A.Compose | None, image: torch.Tensor, amap: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one seeded draw of ``augment`` to image (3, H, W) and map (1, H, W) alike."""
    if augment is None:
        return image, amap
    augment.set_random_seed(seed)
    out = augment(image=image.permute(1, 2, 0).numpy(), mask=amap[0].numpy())
    img = torch.from_numpy(np.ascontiguousarray(out["image"])).permute(2, 0, 1)
    return img, torch.from_numpy(np.ascontiguousarray(out["mask"]))[None]
