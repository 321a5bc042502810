"""Preprocessing and focus-preserving augmentation (GMANet §3.4).

Per image: bilinear resize (default 1024x1536), z-score of the colour image, the attention map from
the z-scored grey image at full size, then a crop taken jointly from image and map. Augmentations
only move pixels (flips, 90-degree rotations of square crops): blur, sharpening, noise or resampling
would change the very clarity the labels describe, so they are never offered.

One draw per batch: every image of a group batch gets the same crop and flips (the crop location can
be drawn per image with ``crop_per_image``), so the rank loss compares the same field of view.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
import torch

from gmaiqa.focus.gradient import attention_map, zscore


@dataclass(frozen=True)
class Preprocess:
    resize: tuple[int, int] | None = (1024, 1536)
    attention: str = "local_max"
    block: tuple[int, int] = (32, 32)

    def __call__(self, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """float RGB (H, W, 3) -> z-scored image (3, H', W') and attention map (1, H', W')."""
        if self.resize is not None and tuple(rgb.shape[:2]) != tuple(self.resize):
            rgb = cv2.resize(rgb, (self.resize[1], self.resize[0]), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        block = (min(self.block[0], x.shape[-2]), min(self.block[1], x.shape[-1]))
        return zscore(x)[0], attention_map(x, self.attention, block)[0]


def build_augment(flips: bool = True, rot90: bool = True, square: bool = False) -> A.Compose | None:
    ops = []
    if flips:
        ops += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]
    if rot90 and square:  # a quarter turn of a non-square crop would change the batch shape
        ops.append(A.RandomRotate90(p=0.5))
    return A.Compose(ops) if ops else None


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
