"""The specimen of a synthetic z-stack: each object of a preset (``gmaiqa.data.presets``: the species and
the presets that mix them) rendered as a small soft-edged patch of signal (optical density, emission or
reflectance, by the preset's contrast mode) and phase, and their placement in depth for one field of
view. ``gmaiqa.data.synthetic`` images them through focus
with ``gmaiqa.data.imaging``.

Sizes are pixels at the paper's working resolution (``REFERENCE_SIZE``), scaled to the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

from gmaiqa.data.presets import KINDS, PRESETS, REFERENCE_PIXEL_UM, REFERENCE_SIZE, Kind, Preset  # noqa: F401

if TYPE_CHECKING:
    from gmaiqa.data.synth_config import SynthConfig


@dataclass
class SpecimenObject:
    kind: str
    depth_um: float
    y: int  # top-left of the patch in the padded canvas
    x: int
    od: np.ndarray  # (h, w, 3)
    phase: np.ndarray  # (h, w)


# --------------------------------------------------------------------------------------------------
# Object rendering: small patches with soft edges


def _grid(h: int, w: int, angle: float):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy -= (h - 1) / 2
    xx -= (w - 1) / 2
    c, s = math.cos(angle), math.sin(angle)
    return c * xx + s * yy, -s * xx + c * yy


def _soft_inside(rho: np.ndarray, radius_px: float, edge_px: float = 1.0) -> np.ndarray:
    """rho: distance normalised to the boundary (1 = edge). Smooth 1 -> 0 across ~edge_px pixels."""
    return (1.0 / (1.0 + np.exp(np.clip((rho - 1.0) * radius_px / max(edge_px, 0.3), -30, 30)))).astype(
        np.float32
    )


def _ellipse(ry: float, rx: float, angle: float, wobble: float = 0.0, rng=None, margin: float = 1.15):
    half = int(math.ceil(max(ry, rx) * margin)) + 2
    u, v = _grid(2 * half + 1, 2 * half + 1, angle)
    theta = np.arctan2(v, u)
    radius = np.ones_like(theta)
    if wobble and rng is not None:
        for k in range(2, 7):
            radius += wobble / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    rho = np.sqrt((u / rx) ** 2 + (v / ry) ** 2) / np.clip(radius, 0.4, None)
    return rho, _soft_inside(rho, min(rx, ry))


def smooth_noise(shape, sigma, rng):
    n = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return n / (n.std() + 1e-6)


def render_object(kind_name: str, size: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(density, phase) patches of one object; density is later tinted by the kind's colour."""
    angle = rng.uniform(0, math.pi)
    if kind_name == "rbc":  # biconcave disc: thicker rim, central pallor, strong phase object
        rho, inside = _ellipse(size / 2, size / 2 * rng.uniform(0.9, 1.0), angle)
        thickness = inside * (0.55 + 0.45 * np.clip(rho, 0, 1) ** 2)
        return thickness, thickness
    if kind_name == "wbc":  # faint granular cytoplasm and a darker lobed nucleus
        rho, inside = _ellipse(size / 2, size / 2 * rng.uniform(0.85, 1.0), angle, 0.05, rng)
        grains = np.clip(smooth_noise(inside.shape, max(size / 40, 0.6), rng), 0, None)
        nucleus = np.zeros_like(inside)
        half = inside.shape[0] // 2
        for _ in range(rng.integers(1, 5)):
            r = size * rng.uniform(0.14, 0.22)
            cy, cx = rng.normal(0, size * 0.12, 2)
            yy, xx = np.mgrid[0 : inside.shape[0], 0 : inside.shape[1]].astype(np.float32)
            d = np.sqrt((yy - half - cy) ** 2 + (xx - half - cx) ** 2) / r
            nucleus = np.maximum(nucleus, _soft_inside(d, r))
        density = inside * (0.3 + 0.15 * grains) + 0.9 * nucleus * inside
        return density, inside
    if kind_name == "spore":  # refractile: dark wall, clear bright interior
        ratio = rng.uniform(0.6, 0.9)
        rho, inside = _ellipse(size / 2, size / 2 * ratio, angle)
        interior = _soft_inside(rho / 0.72, size * ratio / 2 * 0.72)
        wall = np.clip(inside - interior, 0, 1)
        return wall - 0.6 * interior, inside
    if kind_name == "bacterium":  # rod: a capsule
        length, width = size, size * rng.uniform(0.25, 0.4)
        half = int(length / 2 + width) + 2
        u, v = _grid(2 * half + 1, 2 * half + 1, angle)
        d = np.sqrt(np.clip(np.abs(u) - (length - width) / 2, 0, None) ** 2 + v**2) / (width / 2)
        inside = _soft_inside(d, width / 2, 0.7)
        return inside, inside
    if kind_name == "residue":  # irregular plant tissue: cell-wall network, dense and high-contrast
        ratio = rng.uniform(0.45, 1.0)
        rho, inside = _ellipse(size / 2, size / 2 * ratio, angle, 0.35, rng)
        cells = smooth_noise(inside.shape, rng.uniform(3.0, 7.0) * max(size / 180, 0.3), rng)
        walls = np.exp(-((cells / 0.25) ** 2))
        body = 0.35 + 0.25 * smooth_noise(inside.shape, max(size / 25, 1.0), rng)
        density = inside * np.clip(body + 0.9 * walls, 0, None)
        return density, inside * (0.5 + 0.5 * walls)
    if kind_name in ("fibre", "filament"):  # curved strand drawn with OpenCV, then softened
        half = int(size / 2) + 8
        canvas = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
        t = np.linspace(-0.5, 0.5, 40)
        bend = rng.normal(0, 0.25)
        pts = np.stack([t * size, bend * size * (t**2 - 0.25) * 4], 1)
        c, s = math.cos(angle), math.sin(angle)
        pts = pts @ np.array([[c, s], [-s, c]], np.float32) + half
        thin = kind_name == "filament"  # cytoskeletal strands: near the resolution limit
        width = max(1, int(round(size * (rng.uniform(0.004, 0.008) if thin else rng.uniform(0.02, 0.04)))))
        cv2.polylines(
            canvas,
            [pts.astype(np.int32).reshape(-1, 1, 2)],
            False,
            1.0,
            thickness=width,
            lineType=cv2.LINE_AA,
        )
        canvas = gaussian_filter(canvas, 0.6)
        return canvas, canvas
    if kind_name == "epithelial":  # large flat cell: faint, folded, small nucleus, slightly dark rim
        rho, inside = _ellipse(size / 2, size / 2 * rng.uniform(0.6, 0.95), angle, 0.12, rng)
        folds = smooth_noise(inside.shape, max(size / 30, 1.0), rng)
        rim = np.exp(-(((rho - 0.97) / 0.03) ** 2))
        nr = size * rng.uniform(0.05, 0.08)
        ny, nx = rng.normal(0, size * 0.1, 2)
        yy, xx = np.mgrid[0 : inside.shape[0], 0 : inside.shape[1]].astype(np.float32)
        half = inside.shape[0] // 2
        nucleus = _soft_inside(np.sqrt((yy - half - ny) ** 2 + (xx - half - nx) ** 2) / nr, nr)
        density = inside * (1.0 + 0.4 * folds + 1.5 * rim) + 4.0 * nucleus
        return density, inside * (1 + 0.3 * folds)
    if kind_name in ("debris", "speck", "particle"):
        rho, inside = _ellipse(size / 2, size / 2 * rng.uniform(0.5, 1.0), angle, 0.3, rng)
        return inside, inside
    if kind_name == "nucleus":  # labelled DNA: textured chromatin, brighter nucleoli-free rim
        rho, inside = _ellipse(size / 2, size / 2 * rng.uniform(0.7, 0.95), angle, 0.08, rng)
        chromatin = 0.75 + 0.25 * smooth_noise(inside.shape, max(size / 30, 0.7), rng)
        return inside * np.clip(chromatin, 0.2, None), inside
    if kind_name == "bead":  # a sub-resolution point source: the in-focus PSF alone
        half = int(size) + 2
        yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
        spot = np.exp(-(xx**2 + yy**2) / (2 * (size / 4) ** 2))
        return spot, spot
    if kind_name == "cell_glow":  # a whole labelled cell body: smooth, dim, large
        rho, inside = _ellipse(size / 2, size / 2 * rng.uniform(0.5, 0.9), angle, 0.2, rng)
        body = inside * (0.7 + 0.3 * smooth_noise(inside.shape, max(size / 12, 1.0), rng))
        return np.clip(body, 0, None), inside
    raise KeyError(kind_name)


def place_objects(preset: Preset, cfg: SynthConfig, pad: int, rng) -> tuple[list[SpecimenObject], dict]:
    high = rng.random() < cfg.high_concentration
    area = (cfg.height * cfg.width) / (cfg.scale**2 * REFERENCE_SIZE[0] * REFERENCE_SIZE[1])
    objects: list[SpecimenObject] = []
    counts = {}
    for name, (low_n, high_n) in preset.counts.items():
        kind = KINDS[name]
        mean = (high_n if high else low_n) * area
        n = int(rng.poisson(mean)) if mean > 0 else 0
        counts[name] = n
        for _ in range(n):
            size = rng.uniform(*kind.size) * cfg.scale
            if size < 1.5:
                continue
            if kind.role == "element":
                depth = rng.normal(0.0, preset.element_depth_sd_um)
            elif kind.role == "large":
                if rng.random() < preset.large_near_focus:
                    depth = rng.normal(0.0, preset.element_depth_sd_um)
                else:
                    depth = rng.choice([-1, 1]) * rng.uniform(*preset.large_offset_um)
            else:
                depth = rng.uniform(-preset.debris_depth_um, preset.debris_depth_um)
            density, phase = render_object(name, size, rng)
            strength = rng.uniform(*kind.od)
            tint = np.asarray(kind.colour, np.float32) * rng.uniform(0.85, 1.15, 3).astype(np.float32)
            od = density[..., None] * strength * tint
            h, w = density.shape
            y = int(rng.integers(pad - h // 2, pad + cfg.height - h // 2))
            x = int(rng.integers(pad - w // 2, pad + cfg.width - w // 2))
            objects.append(SpecimenObject(name, float(depth), y, x, od, phase * rng.uniform(*kind.phase)))
    return objects, {"concentration": "high" if high else "low", "counts": counts}


def surface_layers(
    cfg: SynthConfig, shape: tuple[int, int], rng
) -> tuple[list[tuple[float, np.ndarray]], dict]:
    """Reflected light: the reflectance changes of a patterned top layer (the focus target, depth 0)
    and of a buried layer seen through the dielectric, on the padded canvas. Step edges scatter light
    out of the objective, so they image dark; the top surface has a fine grain that only focus shows."""
    s = cfg.scale
    pitch = rng.uniform(50, 160) * s
    style = str(rng.choice(["lines", "pads", "blocks"]))
    top = _pattern(style, shape, pitch, rng)
    buried_style = "lines" if style != "lines" else "pads"
    buried = _pattern(buried_style, shape, rng.uniform(1.2, 2.5) * pitch, rng)
    edge_px = max(1, round(1.5 * s))
    grain = 0.03 * smooth_noise(shape, max(0.8 * s, 0.5), rng)
    top_delta = rng.uniform(0.2, 0.45) * top - 0.35 * _edges(top, edge_px) + grain * (0.5 + top)
    buried_delta = (rng.uniform(0.1, 0.25) * buried - 0.12 * _edges(buried, edge_px)) * (1 - top)
    depth = -rng.uniform(1.5, 4.0)
    layers = [(0.0, top_delta.astype(np.float32)), (float(depth), buried_delta.astype(np.float32))]
    return layers, {"pattern": style, "pitch_px": round(float(pitch), 1), "buried_um": round(float(depth), 3)}


def _pattern(style: str, shape: tuple[int, int], pitch: float, rng) -> np.ndarray:
    """A Manhattan layout mask (1 = patterned material), anti-aliased."""
    h, w = shape
    mask = np.zeros(shape, np.float32)
    if style == "lines":
        width = pitch * rng.uniform(0.3, 0.6)
        vertical = rng.random() < 0.5
        extent = w if vertical else h
        for start in np.arange(rng.uniform(0, pitch), extent, pitch):
            a, b = int(start), int(start + width)
            if vertical:
                mask[:, a:b] = 1
            else:
                mask[a:b, :] = 1
    elif style == "pads":
        size = pitch * rng.uniform(0.3, 0.7)
        offset = rng.uniform(0, pitch, 2)
        for y in np.arange(offset[0], h, pitch):
            for x in np.arange(offset[1], w, pitch):
                mask[int(y) : int(y + size), int(x) : int(x + size)] = 1
    else:  # blocks: rectangles of many sizes, as logic layouts look
        for _ in range(int(h * w / pitch**2 * 0.6) + 1):
            bh, bw = rng.uniform(0.3, 3.0, 2) * pitch
            y, x = rng.uniform(0, h), rng.uniform(0, w)
            mask[int(y) : int(y + bh), int(x) : int(x + bw)] = 1
    return gaussian_filter(mask, 0.5)


def _edges(mask: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    binary = (mask > 0.5).astype(np.uint8)
    edge = (cv2.dilate(binary, kernel) - cv2.erode(binary, kernel)).astype(np.float32)
    return gaussian_filter(edge, 0.5)
