"""Synthetic z-stacks written as a dataset in the contract (``manifest.csv`` + images, ``synth.json``
with the recipe): one preset (:func:`generate`) or a mixture of several (:func:`generate_mixture`).
Rendering is ``gmaiqa.data.synthetic``; groups are rendered in parallel and written identically
whatever the number of workers."""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from gmaiqa.data.io import write_png
from gmaiqa.data.manifest import MANIFEST
from gmaiqa.data.specimen import PRESETS
from gmaiqa.data.splits import seeded_split
from gmaiqa.data.synthetic import SynthConfig, images_in_group, render_group
from gmaiqa.errors import ConfigError


def _write_group(args: tuple[SynthConfig, int, str]) -> dict:
    cfg, index, out = args
    images, meta = render_group(cfg, index)
    name = f"g{index:04d}"
    folder = Path(out) / name
    folder.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(len(images) - 1)))
    meta["group"] = name
    meta["files"] = []
    for z, image in enumerate(images):
        rel = f"{name}/z{z:0{width}d}.png"
        write_png(Path(out) / rel, image)
        meta["files"].append(rel)
    return meta


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / "synth.json").is_file():
            raise ConfigError(
                "out",
                f"{out} exists and holds files that `gmaiqa synth` did not write",
                "choose an empty or new folder (nothing there is overwritten)",
            )
        if not overwrite:
            raise ConfigError(
                "out",
                f"{out} already holds a synthetic dataset",
                "pass overwrite=true to regenerate it, or choose another folder",
            )


def image_progress(bar):
    """A :func:`generate` progress callback that moves a tqdm bar over images."""

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update


def generate(
    cfg: SynthConfig,
    out: str | Path,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``cfg.groups`` z-stacks to ``out`` in the dataset contract (manifest.csv + PNGs);
    ``progress(images written, images in all)`` after each group."""
    out = Path(out)
    _check_output(out, overwrite)
    if overwrite and out.exists():
        previous = json.loads((out / "synth.json").read_text())
        for meta in previous.get("groups", []):
            shutil.rmtree(out / meta["group"], ignore_errors=True)
        (out / MANIFEST).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    workers = (os.cpu_count() or 1) if workers < 0 else max(1, workers)
    started = time.perf_counter()
    jobs = [(cfg, i, str(out)) for i in range(cfg.groups)]
    total = sum(images_in_group(cfg, i) for i in range(cfg.groups))
    metas = []

    def done(meta: dict) -> None:
        metas.append(meta)
        if progress:
            progress(sum(len(m["files"]) for m in metas), total)

    if workers == 1 or cfg.groups == 1:
        for job in jobs:
            done(_write_group(job))
    else:
        with ProcessPoolExecutor(max_workers=min(workers, cfg.groups)) as pool:
            for meta in pool.map(_write_group, jobs):
                done(meta)

    split_of = {}
    if cfg.split:
        names = [m["group"] for m in metas]
        for name, groups in seeded_split(names, cfg.split_ratios, seed=cfg.seed).items():
            split_of.update({g: name for g in groups})
    with open(out / MANIFEST, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", "image", "z", "score", "clearest", "split", "z_um", "pixel_um"])
        pixel_um = f"{cfg.pixel_um:.6g}"
        for meta in metas:
            for z, rel in enumerate(meta["files"]):
                writer.writerow(
                    [
                        meta["group"],
                        rel,
                        z,
                        f"{meta['scores'][z]:g}",
                        int(z == meta["clearest"]),
                        split_of.get(meta["group"], ""),
                        f"{meta['focus_um'][z]:.4f}",
                        pixel_um,
                    ]
                )
    record = {
        "generator": "gmaiqa.data.synthetic",
        "config": asdict(cfg),
        "preset": asdict(PRESETS[cfg.preset]),
        "seconds": round(time.perf_counter() - started, 2),
        "groups": [
            {k: m[k] for k in ("group", "images", "clearest", "concentration", "counts", "element_depth_um")}
            for m in metas
        ],
    }
    (out / "synth.json").write_text(json.dumps(record, indent=1))
    return out


def generate_mixture(members: list[SynthConfig], out: str | Path, workers: int = 1, progress=None) -> Path:
    """Several presets as one dataset (a model meant for many microscopes trains on a mixture): member
    ``i`` is written to ``out/<i>-<preset>/`` and one manifest names its groups ``<i>-<preset>/<group>``,
    so splits, checks and reports treat the mixture like any dataset."""
    out = Path(out)
    _check_output(out, overwrite=False)
    out.mkdir(parents=True, exist_ok=True)
    rows, header, records = [], None, []
    sizes = [sum(images_in_group(cfg, i) for i in range(cfg.groups)) for cfg in members]
    for index, cfg in enumerate(members):
        name = f"{index:02d}-{cfg.preset}"
        generate(cfg, out / name, workers=workers, progress=_offset(progress, sum(sizes[:index]), sum(sizes)))
        with open(out / name / MANIFEST, newline="") as handle:
            reader = csv.DictReader(handle)
            header = header or reader.fieldnames
            for row in reader:
                rows.append({**row, "group": f"{name}/{row['group']}", "image": f"{name}/{row['image']}"})
        records.append({"folder": name, **json.loads((out / name / "synth.json").read_text())})
    with open(out / MANIFEST, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    (out / "synth.json").write_text(
        json.dumps({"generator": "gmaiqa.data.synthetic (mixture)", "members": records}, indent=1)
    )
    return out


def _offset(progress, before: int, total: int):
    """A member's progress counted on the mixture's one bar."""
    if progress is None:
        return None
    return lambda done, _: progress(before + done, total)
