"""Gradient maps GMANet attends to, and the normalisation that precedes them.

All functions are batched torch on ``(B, C, H, W)`` float32 tensors and give the same numbers on CPU
and GPU (only differences, absolute values, max-pooling and fixed 3x3 convolutions are used).

Local maximum gradient (GMANet paper, §3.1, Eq. 1-6)
    For every 2x2 patch ξ with top-left pixel f(x, y) (x horizontal, y vertical)::

        g1 = |f(x+1, y)   - f(x, y)|        (Eq. 1, horizontal, upper-left pixel)
        g2 = |f(x, y+1)   - f(x, y)|        (Eq. 2, vertical,   upper-left pixel)
        g3 = |f(x+1, y+1) - f(x, y+1)|      (Eq. 3, horizontal, lower-right pixel)
        g4 = |f(x+1, y+1) - f(x+1, y)|      (Eq. 4, vertical,   lower-right pixel)
        g_ξ = (g1 + g2 + g3 + g4) / 4       (Eq. 5)

    and for every h x w block φ, ``g_φ = max over ξ ⊂ φ of g_ξ`` (Eq. 6). Blocks are laid with strides
    ``s_v`` (vertical) and ``s_h`` (horizontal). The text prints the differences without bars; a
    signed average would cancel on symmetric edges, so we take absolute values.

Two uses of the same g_φ:
    * ``local_max_gradient_map`` - stride 1, one block centred on every pixel, output the full image
      size: the attention map M fed into the GMA blocks (§3.2, Eq. 7).
    * ``local_max_gradient_blocks`` - blocks with strides (s_v, s_h), "valid" layout: the map used
      when the method is a focus measure on its own.

The 32x32 block max is computed separably (a rectangle max is a row max of column maxes), which
costs O(h + w) per pixel instead of O(h * w).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma, the usual RGB -> grey weights of microscope software and OpenCV.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# Guard for flat images in z-score: a constant image maps to zeros instead of NaN.
ZSCORE_EPS = 1e-6


def _as_4d(image: torch.Tensor) -> torch.Tensor:
    if image.ndim == 2:
        return image[None, None]
    if image.ndim == 3:
        return image[:, None] if image.shape[0] != 1 else image[None]
    if image.ndim == 4:
        return image
    raise ValueError(
        f"expected an image tensor of shape (H, W), (B, H, W) or (B, C, H, W); got {tuple(image.shape)}"
    )


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) or (B, 1, H, W) -> (B, 1, H, W) luma."""
    rgb = _as_4d(rgb)
    if rgb.shape[1] == 1:
        return rgb
    if rgb.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {rgb.shape[1]}")
    w = torch.tensor(LUMA_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(dim=1, keepdim=True)


def zscore(image: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    """Z-score normalisation of each image in a batch (GMANet §3.4).

    ``per_channel=True`` normalises every colour channel by its own mean and std (the colour input);
    a grey image has one channel, so this is also the grey normalisation before the gradient maps.
    Removes brightness (offset) and contrast (gain): ``zscore(a * x + b) == zscore(x)`` for a > 0.
    """
    image = _as_4d(image)
    mean, scale = zscore_stats(image, per_channel)
    return (image - mean) / scale


def zscore_stats(image: torch.Tensor, per_channel: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the (guarded) standard deviation :func:`zscore` uses, (B, C or 1, 1, 1) each: a crop
    normalised with its whole image's statistics equals that crop of the normalised image."""
    image = _as_4d(image)
    dims = (2, 3) if per_channel else (1, 2, 3)
    mean = image.mean(dim=dims, keepdim=True)
    std = image.std(dim=dims, keepdim=True, unbiased=False)
    return mean, std.clamp_min(ZSCORE_EPS)


def patch_gradient(gray: torch.Tensor) -> torch.Tensor:
    """g_ξ of Eq. 1-5 for every 2x2 patch: (B, 1, H, W) -> (B, 1, H-1, W-1)."""
    f = _as_4d(gray)
    if f.shape[1] != 1:
        raise ValueError(f"patch_gradient takes a grey image (1 channel), got {f.shape[1]} channels")
    if f.shape[-2] < 2 or f.shape[-1] < 2:
        raise ValueError(f"image of size {tuple(f.shape[-2:])} has no 2x2 patch")
    tl, tr = f[..., :-1, :-1], f[..., :-1, 1:]
    bl, br = f[..., 1:, :-1], f[..., 1:, 1:]
    g1 = (tr - tl).abs()
    g2 = (bl - tl).abs()
    g3 = (br - bl).abs()
    g4 = (br - tr).abs()
    return (g1 + g2 + g3 + g4) / 4


def sliding_max(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """The max of every ``size`` consecutive entries along ``dim`` (stride 1, "valid": the dimension
    shrinks by ``size - 1``), by doubling: windows of 2, 4, 8 ... entries each take the max of two
    windows half their size, and the last step covers ``size`` with two overlapping power-of-two
    windows. log2(size) + 1 element-wise maxima instead of ``size`` comparisons per entry; the numbers are
    those of a max pooling (a max is exact in any order; a NaN propagates in both)."""
    if size < 1 or size > x.shape[dim]:
        raise ValueError(f"window of {size} entries along a dimension of {x.shape[dim]}")
    span = 1
    while span * 2 <= size:
        n = x.shape[dim] - span
        x = torch.maximum(x.narrow(dim, 0, n), x.narrow(dim, span, n))
        span *= 2
    if span < size:
        n = x.shape[dim] - (size - span)
        x = torch.maximum(x.narrow(dim, 0, n), x.narrow(dim, size - span, n))
    return x


def _window_max(x: torch.Tensor, kh: int, kw: int, sv: int, sh: int) -> torch.Tensor:
    # A rectangle max equals the max along rows of the max along columns; strides apply once each.
    # At stride 1 (the attention map) doubling is several times faster than max pooling on the CPU
    # (benchmarks/bench_model.py --trunks times the map).
    if sv == 1 and sh == 1:
        return sliding_max(sliding_max(x, kw, -1), kh, -2)
    x = F.max_pool2d(x, kernel_size=(1, kw), stride=(1, sh)) if kw > 1 or sh > 1 else x
    return F.max_pool2d(x, kernel_size=(kh, 1), stride=(sv, 1)) if kh > 1 or sv > 1 else x


def _check_block(block: tuple[int, int], height: int, width: int) -> tuple[int, int]:
    h, w = (int(block[0]), int(block[1]))
    if h < 2 or w < 2:
        raise ValueError(f"block φ must be at least 2x2 pixels (it holds 2x2 patches ξ); got {h}x{w}")
    if h > height or w > width:
        raise ValueError(f"block φ {h}x{w} is larger than the image {height}x{width}")
    return h, w


def local_max_gradient_blocks(
    gray: torch.Tensor, block: tuple[int, int] = (32, 32), stride: tuple[int, int] | None = None
) -> torch.Tensor:
    """g_φ (Eq. 6) for blocks φ of ``block=(h, w)`` laid with ``stride=(s_v, s_h)`` (default: h, w).

    (B, 1, H, W) -> (B, 1, (H - h) // s_v + 1, (W - w) // s_h + 1).
    """
    f = _as_4d(gray)
    h, w = _check_block(block, f.shape[-2], f.shape[-1])
    sv, sh = (h, w) if stride is None else (int(stride[0]), int(stride[1]))
    # an h x w block holds (h-1) x (w-1) overlapping 2x2 patches
    return _window_max(patch_gradient(f), h - 1, w - 1, sv, sh)


def local_max_gradient_map(gray: torch.Tensor, block: tuple[int, int] = (32, 32)) -> torch.Tensor:
    """Stride-1 local maximum gradient at full size: (B, 1, H, W) -> (B, 1, H, W).

    Pixel (y, x) gets g_φ of the h x w block centred on it (for even sizes the extra row/column
    lies below/right); blocks reaching past the border keep their in-image patches. NaN pixels count as
    outside the image (a crop with its context beyond the border, ``gmaiqa.data.transforms``).
    """
    f = _as_4d(gray)
    h, w = _check_block(block, f.shape[-2], f.shape[-1])
    g = patch_gradient(f).nan_to_num(nan=0.0)
    # g has (H-1) x (W-1) entries; h-1 rows and w-1 columns of padding give an H x W output.
    # g >= 0, so zero padding never wins a max against a real patch.
    top, left = (h - 1) // 2, (w - 1) // 2
    g = F.pad(g, (left, w - 1 - left, top, h - 1 - top))
    return _window_max(g, h - 1, w - 1, 1, 1)


_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def sobel(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives (Gx, Gy) at full size, replicate padding: (B, 1, H, W) each."""
    f = _as_4d(gray)
    kx = torch.tensor(_SOBEL_X, dtype=f.dtype, device=f.device).view(1, 1, 3, 3)
    padded = F.pad(f, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kx), F.conv2d(padded, kx.transpose(-1, -2))


def tenengrad_map(gray: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Tenengrad gradient map (Krotkov 1988; GMANet ref. [7]): Sobel magnitude sqrt(Gx² + Gy²).

    ``squared=True`` returns Gx² + Gy², whose image mean is the TENG focus measure (Pertuz 2013).
    Used as the alternative attention map of the paper's ablation (§5.1.2).
    """
    gx, gy = sobel(gray)
    energy = gx * gx + gy * gy
    return energy if squared else energy.sqrt()


ATTENTION_MAPS = {"local_max": "local_max_gradient_map", "tenengrad": "tenengrad_map"}


def attention_map(
    rgb: torch.Tensor, kind: str = "local_max", block: tuple[int, int] = (32, 32)
) -> torch.Tensor:
    """The attention map M of an RGB image as GMANet builds it (§3.4): grey, z-score, then the map."""
    return map_of_zscored_gray(zscore(to_gray(rgb)), kind, block)


def map_of_zscored_gray(
    gray: torch.Tensor, kind: str = "local_max", block: tuple[int, int] = (32, 32)
) -> torch.Tensor:
    """The attention map of a grey image already z-scored (by its own statistics or its stack's)."""
    if kind == "local_max":
        return local_max_gradient_map(gray, block)
    if kind == "tenengrad":
        return tenengrad_map(gray)
    raise ValueError(f"unknown attention map {kind!r}; choose one of {sorted(ATTENTION_MAPS)}")
