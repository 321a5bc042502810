"""Defocus-level patches for the absolute-defocus regressor (seed paper 001), built from any z-stack
dataset of our contract.

Per stack: the sharpest slice - by the largest standard deviation (the seed's rule, ``reference=std``)
or the annotated clearest image (``reference=clearest``) - is cut into non-overlapping patches; the
patches with the most content (the top ``keep_fraction`` by standard deviation: "areas clearly in
focus", not empty background) are kept, and each is written at every blur level of ``schedule``
(default ten evenly spaced levels: Gaussian σ = 0, 1, ..., 9 px, label = the level index, 0 = in focus).
With ``labels=z_um`` the real slices at known focus offsets are used instead: the same patch location in
every slice, labelled |z - z_sharpest| / ``um_per_level``.

Output: 8-bit RGB PNGs and ``manifest.csv`` (image, level, group, split); splits are per stack, seeded.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import DataLoader, Dataset

from gmaiqa.data.cache import build_once, cached_dir
from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.dataset_root import dataset_root
from gmaiqa.data.io import read_image, write_png
from gmaiqa.data.splits import seeded_split
from gmaiqa.errors import ConfigError


@dataclass
class LevelSpec:
    reference: str = "std"  # std (the seed's rule) | clearest (the annotation)
    labels: str = "artificial"  # artificial (Gaussian blur levels) | z_um (real slices)
    patch: int = 320  # the seed's input size
    schedule: list[float] = field(default_factory=lambda: [float(k) for k in range(10)])  # σ per level, px
    keep_fraction: float = 0.5  # patches kept per sharpest slice, by standard deviation
    max_patches_per_stack: int = 8
    um_per_level: float = 1.0  # labels=z_um: µm per level (the seed's stacks step 1 µm)
    split_ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0


def sharpest_by_std(images: list[np.ndarray]) -> int:
    """The seed's rule: the slice with the largest standard deviation of its grey levels."""
    return int(np.argmax([float(np.asarray(im, dtype=np.float64).mean(axis=-1).std()) for im in images]))


def content_tiles(image: np.ndarray, patch: int, keep_fraction: float, limit: int) -> list[tuple[int, int]]:
    """Top-left corners of the non-overlapping tiles with the largest standard deviation."""
    h, w = image.shape[:2]
    corners = [(t, left) for t in range(0, h - patch + 1, patch) for left in range(0, w - patch + 1, patch)]
    if not corners:
        return []
    spread = [float(image[t : t + patch, left : left + patch].std()) for t, left in corners]
    order = np.argsort(spread)[::-1]
    keep = max(1, min(limit, int(round(keep_fraction * len(corners)))))
    return [corners[i] for i in sorted(order[:keep])]


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return image
    return np.stack(
        [ndimage.gaussian_filter(image[..., c], sigma, mode="reflect") for c in range(image.shape[-1])], -1
    )


def build_levels(stack_root: str | Path, out: str | Path, spec: LevelSpec, validate: str = "full") -> Path:
    """Write the level dataset of ``stack_root`` to ``out`` (a new folder)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError("out", f"{out} is not empty", "choose a new folder")
    if spec.reference not in ("std", "clearest") or spec.labels not in ("artificial", "z_um"):
        raise ConfigError(
            "data.levels",
            f"reference={spec.reference!r}, labels={spec.labels!r}",
            "reference: std | clearest; labels: artificial | z_um",
        )
    stacks = load_dataset(stack_root, validate=validate)
    splits = seeded_split([s.group for s in stacks], spec.split_ratios, spec.seed)
    split_of = {g: name for name, groups in splits.items() for g in groups}
    rows = []
    margin = int(np.ceil(3 * max(spec.schedule))) if spec.labels == "artificial" else 0
    for stack in stacks:
        if spec.labels == "z_um" and stack.z_um is None:
            raise ConfigError(
                "data.levels.labels", f"group {stack.group} has no z_um column", "use labels=artificial"
            )
        images = [stack.read(i) for i in range(len(stack))]
        if spec.reference == "clearest":
            if stack.clearest is None:
                raise ConfigError(
                    "data.levels.reference",
                    f"group {stack.group} has no annotated clearest image",
                    "use reference=std",
                )
            sharpest = stack.clearest
        else:
            sharpest = sharpest_by_std(images)
        (out / stack.group).mkdir(parents=True, exist_ok=True)
        for t, left in content_tiles(
            images[sharpest], spec.patch, spec.keep_fraction, spec.max_patches_per_stack
        ):
            if spec.labels == "artificial":
                # blur a margin around the tile so the level's blur is the same at the tile's border
                t0, l0 = max(0, t - margin), max(0, left - margin)
                region = images[sharpest][t0 : t + spec.patch + margin, l0 : left + spec.patch + margin]
                versions = [
                    (k, blur(region, sigma)[t - t0 : t - t0 + spec.patch, left - l0 : left - l0 + spec.patch])
                    for k, sigma in enumerate(spec.schedule)
                ]
            else:
                offsets = np.abs(stack.z_um - stack.z_um[sharpest]) / spec.um_per_level
                versions = [
                    (float(offsets[z]), images[z][t : t + spec.patch, left : left + spec.patch])
                    for z in range(len(images))
                ]
            for level, tile in versions:
                name = f"{stack.group}/t{t}_l{left}_{level:g}.png"
                write_png(out / name, (np.clip(tile, 0, 1) * 255).round().astype(np.uint8))
                rows.append(
                    {
                        "image": name,
                        "level": f"{level:g}",
                        "group": stack.group,
                        "split": split_of[stack.group],
                    }
                )
    if not rows:
        raise ConfigError(
            "data.levels.patch",
            f"no {spec.patch}x{spec.patch} tile fits the images of {stack_root}",
            "use a smaller data.levels.patch",
        )
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "level", "group", "split"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "levels.json").write_text(
        json.dumps({"source": str(stack_root), **asdict(spec)}, indent=1, default=list)
    )
    return out


class LevelPatches(Dataset):
    def __init__(self, root: Path, rows: list[dict], size: int, flips: bool):
        self.root, self.rows, self.size, self.flips = root, rows, size, flips

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        image = torch.from_numpy(read_image(self.root / self.rows[index]["image"])).permute(2, 0, 1)
        if image.shape[-1] != self.size or image.shape[-2] != self.size:
            image = torch.nn.functional.interpolate(
                image[None], size=(self.size, self.size), mode="bilinear", align_corners=False
            )[0]
        if self.flips:  # blur has no direction: flips keep the label (workers are seeded by Lightning)
            if torch.rand(1) < 0.5:
                image = image.flip(-1)
            if torch.rand(1) < 0.5:
                image = image.flip(-2)
        return {
            "image": image.contiguous(),
            "level": float(self.rows[index]["level"]),
            "group": self.rows[index]["group"],
        }


class DefocusLevelDataModule(L.LightningDataModule):
    """Level patches from ``root`` (a built level dataset), or built on first use into the cache from
    ``stacks_root`` (any z-stack dataset) or ``stacks_synthetic`` (a built-in preset)."""

    def __init__(
        self,
        *,
        root: str | None = None,
        stacks_root: str | None = None,
        stacks_synthetic: dict | None = None,
        levels: dict | None = None,
        cache_dir: str = ".gmaiqa_cache",
        input_size: int = 320,
        batch_size: int = 16,
        num_workers: int = 2,
        flips: bool = True,
        seed: int = 0,
        validate: str = "full",
    ):
        super().__init__()
        self.spec = LevelSpec(**{**(levels or {}), "seed": seed})
        self.stacks_root, self.stacks_synthetic, self.cache_dir = stacks_root, stacks_synthetic, cache_dir
        if root is None and stacks_root is None and not stacks_synthetic:
            raise ConfigError(
                "data.root",
                "no dataset given",
                "set data.root (level patches), data.stacks_root (z-stacks) or data.stacks_synthetic",
            )
        self.root = Path(root) if root is not None else self._cached_root()
        self.input_size, self.batch_size, self.num_workers = input_size, batch_size, num_workers
        self.flips, self.validate = flips, validate
        self.rows: dict[str, list[dict]] | None = None

    def _cached_root(self) -> Path:

        recipe = {"stacks": self.stacks_root, "synthetic": self.stacks_synthetic, "spec": asdict(self.spec)}
        return cached_dir(self.cache_dir, "defocus_levels", "levels", recipe)

    def prepare_data(self) -> None:
        if (self.root / "manifest.csv").is_file() or self.stacks_root is None and not self.stacks_synthetic:
            return

        stacks = dataset_root(self.stacks_root, self.stacks_synthetic, self.cache_dir)
        build_once(self.root, lambda folder: build_levels(stacks, folder, self.spec, self.validate))

    def setup(self, stage: str | None = None) -> None:
        if self.rows is not None:
            return
        manifest = self.root / "manifest.csv"
        if not manifest.is_file():
            raise ConfigError(
                "data.root",
                f"{manifest} does not exist",
                "point data.root at a level dataset (manifest.csv: image,level,group,split)",
            )
        rows = list(csv.DictReader(open(manifest, newline="")))
        self.rows = {s: [r for r in rows if r.get("split") == s] for s in ("train", "val", "test")}
        for split in ("train", "val"):
            if not self.rows[split]:
                raise ConfigError(
                    "data.levels.split_ratios", f"no {split} patches in {self.root}", "use more stacks"
                )

    def _loader(self, split: str, train: bool) -> DataLoader:
        data = LevelPatches(self.root, self.rows[split], self.input_size, self.flips and train)
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(data) > self.batch_size,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.spec.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
