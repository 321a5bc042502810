"""Using a trained absolute-defocus regressor (seed paper 001) on whole images: a per-tile defocus map
(the image cut into the training patch size, each tile resized to the network's input), and the image's
defocus as the mean over its tiles. Lower = clearer, so as a focus measure its clarity is -defocus."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def tile_geometry(meta: dict) -> tuple[int, int]:
    data = meta.get("data") or {}
    return int((data.get("levels") or {}).get("patch", 320)), int(data.get("input_size", 320))


@torch.no_grad()
def defocus_map(
    net, image: np.ndarray, tile: int, input_size: int, device, max_batch: int = 32
) -> np.ndarray:
    """(H, W, 3) float image -> (rows, cols) predicted defocus per non-overlapping tile (an image smaller
    than one tile is one tile)."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
    h, w = x.shape[-2:]
    rows, cols = max(1, h // tile), max(1, w // tile)
    th, tw = min(tile, h), min(tile, w)
    tiles = torch.cat(
        [x[..., r * th : (r + 1) * th, c * tw : (c + 1) * tw] for r in range(rows) for c in range(cols)]
    )
    tiles = F.interpolate(tiles, size=(input_size, input_size), mode="bilinear", align_corners=False)
    values = torch.cat([net(tiles[i : i + max_batch])["output1"] for i in range(0, len(tiles), max_batch)])
    return values.view(rows, cols).cpu().numpy()


def stack_defocus(net, meta: dict, stack, device) -> tuple[list[np.ndarray], torch.Tensor]:
    """The defocus maps of a stack's images and each image's mean defocus."""
    tile, size = tile_geometry(meta)
    maps = [defocus_map(net, stack.read(i), tile, size, device) for i in range(len(stack))]
    return maps, torch.tensor([float(m.mean()) for m in maps])


def save_map(path, values: np.ndarray, title: str) -> None:
    # here, not at import: loads matplotlib only when this runs
    import matplotlib

    matplotlib.use("Agg")
    # here, not at import: loads matplotlib only when this runs
    import matplotlib.pyplot as plt

    np.savetxt(path.with_suffix(".csv"), values, delimiter=",", fmt="%.4f")
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    shown = ax.imshow(values, cmap="magma", vmin=0)
    fig.colorbar(shown, ax=ax, label="defocus level")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"))
    plt.close(fig)
