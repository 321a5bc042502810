"""Whole-image scores by sliding window (GMANet §3.4, Fig. 4).

The image is resized to 1024x1536 and cut into 512x768 patches with a step of 256 in both directions
(3 x 4 = 12 patches, §5.3.1); the image score is the mean of the patches' Output1. The step is
configurable: §4.3 steps 384 in both directions over its leucorrhea set (768x1152) and 256 over its
blood set (1024x1536), as conf/eval_datasets/paper.yaml reads it. When the last step does not reach the
border, one more window is placed flush with it so every pixel is scored. Patches go through the
network in chunks of ``max_patches`` to bound memory.
"""

from __future__ import annotations

import torch
from torch import nn


def window_starts(length: int, window: int, step: int) -> list[int]:
    if window > length:
        raise ValueError(
            f"patch of {window} px does not fit an image of {length} px; "
            "lower inference.patch or raise data.resize"
        )
    starts = list(range(0, length - window + 1, step))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def extract_patches(tensor: torch.Tensor, patch: tuple[int, int], step: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> (N, P, C, ph, pw) in row-major window order."""
    ph, pw = patch
    tops = window_starts(tensor.shape[-2], ph, step[0])
    lefts = window_starts(tensor.shape[-1], pw, step[1])
    return torch.stack([tensor[..., t : t + ph, left : left + pw] for t in tops for left in lefts], dim=1)


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    image: torch.Tensor,
    attention: torch.Tensor | None,
    patch: tuple[int, int] | None = (512, 768),
    step: tuple[int, int] = (256, 256),
    max_patches: int = 12,
) -> torch.Tensor:
    """Mean patch Output1 per image: (N, 3, H, W) [+ (N, 1, H, W)] -> (N,). ``patch=None`` scores the
    whole image in one pass."""
    if patch is None:
        return model(image, attention)["output1"]
    patches = extract_patches(image, patch, step)
    n, p = patches.shape[:2]
    flat = patches.flatten(0, 1)
    flat_maps = extract_patches(attention, patch, step).flatten(0, 1) if attention is not None else None
    scores = []
    for start in range(0, flat.shape[0], max_patches):
        chunk_maps = flat_maps[start : start + max_patches] if flat_maps is not None else None
        scores.append(model(flat[start : start + max_patches], chunk_maps)["output1"])
    return torch.cat(scores).view(n, p).mean(dim=1)
