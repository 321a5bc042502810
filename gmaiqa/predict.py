"""gmaiqa predict ckpt=PATH input=DIR out=DIR: a score per image and the clearest image per group, for
labelled datasets and plain folders of folders alike, with a network or (``method=TENG``) a classical
focus measure. Writes ``predictions.csv`` (group, image, z, score), ``clearest.csv`` (group, image, z,
score) and, unless ``clearest_images=false``, the clearest image itself as ``clearest/<group>.<suffix>``
(``save_clearest``): what an autofocus run is for. A defocus-regressor checkpoint writes its defocus
instead, and a per-tile defocus map of every image. The clearest image follows the checkpoint's score
direction (``gmaiqa.scoring.clarity``)."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from omegaconf import DictConfig

from gmaiqa.checkpoints import load_net
from gmaiqa.config_check import OUTPUTS, check_out
from gmaiqa.data.dataset import load_dataset
from gmaiqa.errors import ConfigError
from gmaiqa.scoring import clarity, device_for, reading_options, score_groups, scoring_of

CLEAREST_DIR = "clearest"


def add_group(rows: list, best: list, stack, values: torch.Tensor, meta: dict, root, fmt: str = ".4f") -> int:
    """A group's rows of predictions.csv (group, image, z, value) and its clearest image's row, the
    clearest following the checkpoint's score direction; returns the clearest image's index. ``fmt``:
    a network's 0-100 scores to 4 decimals; a focus measure's values, of any magnitude, to 6 digits."""
    for z, (path, value) in enumerate(zip(stack.paths, values.tolist())):
        rows.append([stack.group, os.path.relpath(path, root), stack.z[z], format(value, fmt)])
    i = int(torch.argmax(clarity(values, meta)))
    best.append(
        [stack.group, os.path.relpath(stack.paths[i], root), stack.z[i], format(float(values[i]), fmt)]
    )
    return i


def save_clearest(folder: Path, stack, index: int) -> Path:
    """The group's clearest image as a file of its own under ``folder``, named after the group (its
    sub-folders kept): an image file copied byte for byte, a plane of a stack file written as a TIFF of
    its stored pixels (dtype and channels as read; the pixel size, where known, as ImageJ writes it)."""
    from gmaiqa.data.io import read_raw
    from gmaiqa.data.stackfile import parse_reference

    parts = [p for p in PurePosixPath(stack.group).parts if p not in ("/", ".", "..")] or ["group"]
    source = stack.paths[index]
    plane = parse_reference(source) is not None
    target = folder.joinpath(*parts[:-1], parts[-1] + (".tif" if plane else source.suffix.lower()))
    target.parent.mkdir(parents=True, exist_ok=True)
    if not plane:
        shutil.copyfile(source, target)
        return target
    import tifffile

    pixels = read_raw(source)
    rgb = pixels.ndim == 3 and pixels.shape[-1] in (3, 4)
    options = {
        "photometric": "rgb" if rgb else "minisblack",
        "planarconfig": "contig" if pixels.ndim == 3 else None,
    }
    # ImageJ's TIFF (where its pixel size lives) holds grey planes of these types, and 8-bit RGB
    grey = pixels.ndim == 2 and pixels.dtype in (np.uint8, np.uint16, np.float32)
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3 and pixels.dtype == np.uint8
    if stack.pixel_um and (grey or colour):
        per_um = 1.0 / stack.pixel_um
        options.update(imagej=True, resolution=(per_um, per_um), metadata={"unit": "um"})
    tifffile.imwrite(target, pixels, **options)
    return target


def replace_folder(new: Path, old: Path) -> None:
    """``old`` becomes ``new``'s content, the previous one removed only once the new one is complete."""
    if old.exists():
        shutil.rmtree(old)
    new.rename(old)


def model_line(ckpt, meta: dict) -> str:
    """Which network scores: the default model by name and provenance, else the file and its stage."""
    from gmaiqa import default_model
    from gmaiqa.checkpoints import checkpoint_path

    path = checkpoint_path(ckpt)
    if str(ckpt) == default_model.NAME:
        return default_model.describe(meta, path)
    return f"{path} ({meta.get('family', 'model')} {meta.get('stage', '')})".replace(" )", ")")


def write_tables(out, value: str, rows: list, best: list) -> None:
    for name, table in (("predictions.csv", rows), ("clearest.csv", best)):
        with open(out / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["group", "image", "z", value])
            writer.writerows(table)


def predict(cfg: DictConfig) -> None:
    if not cfg.input:
        raise ConfigError(
            "input", "no input folder", "pass input=DIR (a dataset or a folder of z-stack folders)"
        )
    out = check_out(cfg.out, cfg.overwrite, OUTPUTS["predict"])
    if cfg.get("method"):
        return predict_with_measure(cfg, out)
    net, meta = load_net(cfg.ckpt)
    print(f"model: {model_line(cfg.ckpt, meta)}")
    stacks = load_dataset(cfg.input, validate=cfg.validate, **reading_options(cfg))
    out.mkdir(parents=True, exist_ok=True)
    device = device_for(cfg.accelerator)
    net.to(device)
    if scoring_of(meta) == "defocus_tiles":
        return predict_defocus(net, meta, stacks, cfg, out, device)
    rows, best = [], []
    images = _clearest_folder(out, cfg)
    for index, scores in score_groups(net, meta, stacks, cfg, device, desc="predict"):
        clearest = add_group(rows, best, stacks[index], scores, meta, cfg.input)
        if images is not None:
            save_clearest(images, stacks[index], clearest)
    write_tables(out, "score", rows, best)
    print(
        f"scored {len(rows)} images in {len(best)} groups "
        f"-> {out / 'predictions.csv'}, {out / 'clearest.csv'}{_finish_clearest(out, images)}"
    )


def _clearest_folder(out: Path, cfg: DictConfig) -> Path | None:
    """Where this run writes the clearest images (beside ``clearest/``, which it replaces at the end),
    or None with ``clearest_images=false``."""
    if not cfg.get("clearest_images", True):
        return None
    partial = out / f"{CLEAREST_DIR}.partial"
    if partial.exists():  # left by an interrupted run of this command
        shutil.rmtree(partial)
    partial.mkdir()
    return partial


def _finish_clearest(out: Path, images: Path | None) -> str:
    if images is None:
        return ""
    replace_folder(images, out / CLEAREST_DIR)
    return f", the clearest images in {out / CLEAREST_DIR}"


def predict_with_measure(cfg: DictConfig, out: Path) -> None:
    """``method=NAME``: a classical focus measure scores every image (its own value, on the images as
    stored: float RGB -> luma, as ``gmaiqa benchmark`` scores them), one image at a time, so a deep
    stack of large planes is never held whole; the same tables and clearest images as a network's."""
    from tqdm import tqdm

    from gmaiqa.config_check import predict_measure

    measure = predict_measure(cfg)
    print(f"method: {measure.name}, a classical focus measure ({measure.reference}); no network")
    stacks = load_dataset(cfg.input, validate=cfg.validate, **reading_options(cfg))
    out.mkdir(parents=True, exist_ok=True)
    direction = {"higher_is_better": measure.higher_is_better}
    rows, best = [], []
    images = _clearest_folder(out, cfg)
    with torch.no_grad():
        for stack in tqdm(stacks, unit="group", desc=measure.name):
            values = torch.cat(
                [measure(torch.from_numpy(stack.read(i)).permute(2, 0, 1)[None]) for i in range(len(stack))]
            )
            clearest = add_group(rows, best, stack, values, direction, cfg.input, fmt=".6g")
            if images is not None:
                save_clearest(images, stack, clearest)
    write_tables(out, "score", rows, best)
    print(
        f"scored {len(rows)} images in {len(best)} groups with {measure.name} "
        f"-> {out / 'predictions.csv'}, {out / 'clearest.csv'}{_finish_clearest(out, images)}"
    )


def predict_defocus(net, meta: dict, stacks, cfg: DictConfig, out, device) -> None:
    """A defocus regressor: per image its defocus (mean over tiles; lower = clearer) in predictions.csv,
    the least defocused image per group in clearest.csv, and the per-tile map of every image as
    ``defocus_maps/<group>/<image>.csv`` and ``.png``."""
    from tqdm import tqdm

    from gmaiqa.defocus_maps import save_map, stack_defocus

    rows, best = [], []
    images = _clearest_folder(out, cfg)
    for stack in tqdm(stacks, unit="group", desc="defocus"):
        maps, defocus = stack_defocus(net, meta, stack, device)
        folder = out / "defocus_maps" / stack.group
        folder.mkdir(parents=True, exist_ok=True)
        for path, values, value in zip(stack.paths, maps, defocus.tolist()):
            save_map(folder / path.stem, values, f"{stack.group}/{path.name}: mean {value:.2f}")
        clearest = add_group(rows, best, stack, defocus, meta, cfg.input)
        if images is not None:
            save_clearest(images, stack, clearest)
    write_tables(out, "defocus", rows, best)
    print(
        f"defocus of {len(rows)} images in {len(best)} groups "
        f"-> {out / 'predictions.csv'}, maps in {out / 'defocus_maps'}{_finish_clearest(out, images)}"
    )
