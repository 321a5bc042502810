"""A synthetic pair of quality domains for SAQM's domain adaptation (no public MOS set is reachable here).

* ``natural`` (source, a stand-in for TID2013's denoised subset): colour scenes of smooth shaded
  shapes over a textured background.
* ``ultrasound`` (target, a stand-in for MD72): grey B-mode-like images - smooth tissue echogenicity,
  dark vessel-like regions, multiplicative Rayleigh speckle.

Each pristine image gets graded distortions: Gaussian blur, additive noise, and the denoising
artefacts MD72 holds (over-smoothing that washes out speckle and edges, then intensity banding). The
MOS falls with the distortion strength through the same rule in both domains,
``mos = 100·exp(-(blur + noise + artefact))`` plus rater noise, and is written on a domain-specific
scale (natural 0-9 like TID2013, ultrasound 0-100) so normalisation per domain matters as it does
for the real sets. Deterministic per (seed, index).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from gmaiqa.data.io import write_png

DOMAINS = ("natural", "ultrasound")
SCALES = {"natural": 9.0, "ultrasound": 100.0}


def _natural(rng, size: int) -> np.ndarray:
    h = w = size
    y, x = np.mgrid[0:h, 0:w] / size
    base = np.stack([0.3 + 0.4 * x, 0.4 + 0.3 * y, 0.5 - 0.2 * x * y], -1)
    texture = ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.2)
    image = base + 0.08 * texture[..., None]
    for _ in range(rng.integers(4, 9)):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.06, 0.25)
        colour = rng.uniform(0.05, 0.95, 3)
        inside = ((y - cy) ** 2 + (x - cx) ** 2) < r * r
        shade = 1 - 0.4 * np.clip(((y - cy) + (x - cx)) / r, -1, 1)
        image[inside] = colour * shade[inside][:, None]
    return np.clip(image, 0, 1)


def _ultrasound(rng, size: int) -> np.ndarray:
    h = w = size
    tissue = 0.45 + 0.25 * ndimage.gaussian_filter(rng.standard_normal((h, w)), size / 10)
    y, x = np.mgrid[0:h, 0:w] / size
    for _ in range(rng.integers(1, 4)):
        cy, cx, ry, rx = (
            rng.uniform(0.2, 0.8),
            rng.uniform(0.2, 0.8),
            rng.uniform(0.05, 0.15),
            rng.uniform(0.1, 0.3),
        )
        tissue[((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1] *= 0.15
    depth_gain = 1.0 - 0.5 * y  # attenuation with depth
    speckle = rng.rayleigh(scale=0.8, size=(h, w))
    image = np.clip(tissue * depth_gain * speckle, 0, 1)
    return np.repeat(image[..., None], 3, axis=-1)


def distort(image: np.ndarray, blur: float, noise: float, artefact: float, rng) -> np.ndarray:
    """blur, noise, artefact in [0, 1]: Gaussian σ up to 3 px; noise σ up to 0.15; denoising artefacts
    (a σ-3 smoothing blended in, then banding into as few as 8 levels)."""
    out = image.copy()
    if blur > 0:
        out = np.stack([ndimage.gaussian_filter(out[..., c], 3.0 * blur) for c in range(3)], -1)
    if artefact > 0:
        smooth = np.stack([ndimage.gaussian_filter(out[..., c], 3.0) for c in range(3)], -1)
        out = (1 - artefact) * out + artefact * smooth
        levels = max(8, int(256 * (1 - artefact)))
        out = np.round(out * (levels - 1)) / (levels - 1)
    if noise > 0:
        out = out + rng.normal(0, 0.15 * noise, out.shape)
    return np.clip(out, 0, 1)


def mos_of(blur: float, noise: float, artefact: float, rng) -> float:
    return float(
        np.clip(100 * np.exp(-(1.6 * blur + 1.2 * noise + 1.4 * artefact)) + rng.normal(0, 2.0), 0, 100)
    )


def generate_mos_pair(
    out: str | Path,
    references: int = 6,
    distortions: int = 5,
    size: int = 96,
    seed: int = 0,
    domains: tuple[str, ...] = DOMAINS,
) -> Path:
    """``references`` pristine images per domain, each with ``distortions`` distorted versions (the
    pristine ones are not rated, as in TID2013 and MD72). Writes PNGs and manifest.csv."""
    out = Path(out)
    if (out / "manifest.csv").exists():
        raise FileExistsError(f"{out} already holds a dataset; choose another folder")
    rows = []
    for d, domain in enumerate(domains):
        make = _natural if domain == "natural" else _ultrasound
        for r in range(references):
            rng = np.random.default_rng([seed, d, r])
            pristine = make(rng, size)
            ref = f"{domain}/ref{r:03d}.png"
            (out / domain).mkdir(parents=True, exist_ok=True)
            write_png(out / ref, (pristine * 255).round().astype(np.uint8))
            for k in range(distortions):
                strength = (k + 1) / distortions
                kind = rng.integers(0, 3)
                # one dominant distortion per image plus a little of the others, as real sets mix them
                amounts = rng.uniform(0, 0.15, 3)
                amounts[kind] = strength
                image = distort(pristine, *amounts, rng)
                name = f"{domain}/ref{r:03d}_d{k}.png"
                write_png(out / name, (image * 255).round().astype(np.uint8))
                mos = mos_of(*amounts, rng) * SCALES[domain] / 100
                rows.append({"image": name, "mos": f"{mos:.4f}", "domain": domain, "reference": ref})
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "mos", "domain", "reference"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "synth.json").write_text(
        json.dumps(
            {
                "generator": "gmaiqa.data.synthetic_mos",
                "references": references,
                "distortions": distortions,
                "size": size,
                "seed": seed,
                "domains": list(domains),
            },
            indent=1,
        )
    )
    return out
