"""gmaiqa predict ckpt=PATH input=DIR out=DIR: a score per image and the clearest image per group, for
labelled datasets and plain folders of folders alike, with a network or (``method=TENG``) a classical
focus measure or a rank fusion of several (``method=rank:TENG+GLVN``); given neither, with gmaiqa's
default scorer (``gmaiqa.default_scorer``), named on the first line with the reason it is the default.
Writes ``predictions.csv`` (group, image, z, score), ``clearest.csv`` (group, image, z, score) and,
unless ``clearest_images=false``, the clearest image itself as ``clearest/<group>.<suffix>``
(``save_clearest``): what an autofocus run is for. A defocus-regressor checkpoint writes its defocus
instead, and a per-tile defocus map of every image. The clearest image follows the checkpoint's score
direction (``gmaiqa.scoring.clarity``)."""

from __future__ import annotations

import csv
import os
import shutil
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from gmaiqa import default_model, default_scorer
from gmaiqa.checkpoints import checkpoint_path, load_net
from gmaiqa.data.dataset import dataset_folder, load_dataset
from gmaiqa.data.stackfile import parse_reference
from gmaiqa.defocus_maps import save_map, stack_defocus
from gmaiqa.errors import ConfigError
from gmaiqa.focus import get_measure
from gmaiqa.methods import predict_measure
from gmaiqa.outputs import OUTPUTS, PREDICT_IMAGES, PREDICT_TABLES, check_out, written
from gmaiqa.scoring import clarity, device_for, reading_options, score_groups, scoring_of


def save_clearest(folder: Path, stack, index: int) -> Path:
    """The group's clearest image as a file of its own under ``folder``, named after the group (its
    sub-folders kept): an image file copied byte for byte, a plane of a stack file written as a TIFF of
    its stored pixels (``gmaiqa.data.io.write_tiff``: dtype and samples kept, the pixel size where known)."""
    # here, not at import: looked up per call (tests replace it)
    from gmaiqa.data.io import read_raw, write_tiff

    parts = [p for p in PurePosixPath(stack.group).parts if p not in ("/", ".", "..")] or ["group"]
    source = stack.paths[index]
    plane = parse_reference(source) is not None
    target = folder.joinpath(*parts[:-1], parts[-1] + (".tif" if plane else source.suffix.lower()))
    target.parent.mkdir(parents=True, exist_ok=True)
    if plane:
        write_tiff(target, read_raw(source), stack.pixel_um)
    else:
        shutil.copyfile(source, target)
    return target


def replace_folder(new: Path, old: Path) -> None:
    """``old`` becomes ``new``'s content, the previous one removed only once the new one is complete."""
    if old.exists():
        shutil.rmtree(old)
    new.rename(old)


class PredictOutputs:
    """What one predict run writes into ``out``, group by group: ``predictions.csv`` (group, image, z,
    value), ``clearest.csv`` (each group's clearest image, following the score direction of ``meta``)
    and, unless ``clearest_images=false``, the clearest images themselves - built in
    ``clearest.partial/`` and put in place of ``clearest/`` only by ``finish``, so an interrupted run
    leaves the previous result. ``fmt``: a network's 0-100 scores to 4 decimals; a focus measure's
    values, of any magnitude, to 6 digits."""

    def __init__(self, out: Path, cfg: DictConfig, value: str = "score", fmt: str = ".4f"):
        self.out, self.value, self.fmt = out, value, fmt
        self.root = dataset_folder(cfg.input)  # image paths are written relative to it
        self.rows: list[list] = []
        self.best: list[list] = []
        self.images = None
        if cfg.get("clearest_images", True):
            self.images = out / f"{PREDICT_IMAGES}.partial"
            if self.images.exists():  # left by an interrupted run of this command
                shutil.rmtree(self.images)
            self.images.mkdir()

    def add(self, stack, values: torch.Tensor, meta: dict) -> None:
        def row(i: int, value: float) -> list:
            return [
                stack.group,
                os.path.relpath(stack.paths[i], self.root),
                stack.z[i],
                format(value, self.fmt),
            ]

        self.rows += [row(i, value) for i, value in enumerate(values.tolist())]
        clearest = int(torch.argmax(clarity(values, meta)))
        self.best.append(row(clearest, float(values[clearest])))
        if self.images is not None:
            save_clearest(self.images, stack, clearest)

    def tally(self) -> str:
        """``7 images in 1 group``, for the last line."""
        images, groups = len(self.rows), len(self.best)
        return f"{images} image{'s' * (images != 1)} in {groups} group{'s' * (groups != 1)}"

    @contextmanager
    def kept_on_success(self):
        """The scoring loop: on any failure or Ctrl-C, :meth:`abandon` before the error goes on."""
        try:
            yield self
        except BaseException:
            self.abandon()
            raise

    def abandon(self) -> None:
        """A run that failed or was interrupted: its unfinished clearest images go (the previous
        result, if any, stays)."""
        if self.images is not None and self.images.exists():
            shutil.rmtree(self.images, ignore_errors=True)

    def finish(self) -> str:
        """Write the tables and put the clearest images in place; where they went, for the last line."""
        for name, table in zip(PREDICT_TABLES, (self.rows, self.best)):
            with written(self.out / name) as part, open(part, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["group", "image", "z", self.value])
                writer.writerows(table)
        tables = ", ".join(str(self.out / name) for name in PREDICT_TABLES)
        if self.images is None:
            return tables
        replace_folder(self.images, self.out / PREDICT_IMAGES)
        return f"{tables}, the clearest images in {self.out / PREDICT_IMAGES}"


def model_line(ckpt, meta: dict) -> str:
    """Which network scores: the default model by name and provenance, else the file and its stage."""

    path = checkpoint_path(ckpt)
    if str(ckpt) == default_model.NAME:
        return default_model.describe(meta, path)
    return f"{path} ({meta.get('family', 'model')} {meta.get('stage', '')})".replace(" )", ")")


def predict(cfg: DictConfig) -> None:
    if not cfg.input:
        raise ConfigError(
            "input",
            "no input",
            "pass input=PATH: a dataset folder, a folder of z-stack folders or stack files, or one "
            "stack file",
        )
    out = check_out(cfg.out, cfg.overwrite, OUTPUTS["predict"])
    ckpt = cfg.get("ckpt")
    if cfg.get("method"):
        return predict_with_measure(cfg, out, predict_measure(cfg))
    if ckpt is None:
        chosen = default_scorer.method()
        print(f"scorer: {default_scorer.describe()}")
        if not chosen.startswith("ckpt:"):
            return predict_with_measure(cfg, out, get_measure(chosen), announced=True)
        ckpt = chosen[len("ckpt:") :]
    net, meta = load_net(ckpt)
    print(f"model: {model_line(ckpt, meta)}")
    stacks = load_dataset(cfg.input, validate=cfg.validate, option_prefix="", **reading_options(cfg))
    out.mkdir(parents=True, exist_ok=True)
    device = device_for(cfg.accelerator)
    net.to(device)
    if scoring_of(meta) == "defocus_tiles":
        return predict_defocus(net, meta, stacks, cfg, out, device)
    outputs = PredictOutputs(out, cfg)
    with outputs.kept_on_success():
        for index, scores in score_groups(net, meta, stacks, cfg, device, desc="predict"):
            outputs.add(stacks[index], scores, meta)
        where = outputs.finish()
    print(f"scored {outputs.tally()} -> {where}")


def predict_with_measure(cfg: DictConfig, out: Path, measure, announced: bool = False) -> None:
    """A classical focus measure or a rank fusion (``gmaiqa.focus``) scores every image (on the images
    as stored: float RGB -> luma, as ``gmaiqa benchmark`` scores them), one image at a time, so a deep
    stack of large planes is never held whole (a fusion keeps its members' values, then ranks them per
    stack); the same tables and clearest images as a network's. ``announced``: the default scorer's
    line was printed already."""

    if not announced:
        print(f"method: {measure.name}, a classical focus measure ({measure.reference}); no network")
    stacks = load_dataset(cfg.input, validate=cfg.validate, option_prefix="", **reading_options(cfg))
    out.mkdir(parents=True, exist_ok=True)
    direction = {"higher_is_better": measure.higher_is_better}
    outputs = PredictOutputs(out, cfg, fmt=".6g")
    with torch.no_grad(), outputs.kept_on_success():
        for stack in tqdm(stacks, unit="group", desc=measure.name):
            rows = [
                measure.per_image(torch.from_numpy(stack.read(i)).permute(2, 0, 1)[None])
                for i in range(len(stack))
            ]
            outputs.add(stack, measure.of_stack(torch.cat(rows)), direction)
        where = outputs.finish()
    print(f"scored {outputs.tally()} with {measure.name} -> {where}")


def predict_defocus(net, meta: dict, stacks, cfg: DictConfig, out, device) -> None:
    """A defocus regressor: per image its defocus (mean over tiles; lower = clearer) in predictions.csv,
    the least defocused image per group in clearest.csv, and the per-tile map of every image as
    ``defocus_maps/<group>/<image>.csv`` and ``.png``."""

    outputs = PredictOutputs(out, cfg, value="defocus")
    with outputs.kept_on_success():
        for stack in tqdm(stacks, unit="group", desc="defocus"):
            maps, defocus = stack_defocus(net, meta, stack, device)
            folder = out / "defocus_maps" / stack.group
            folder.mkdir(parents=True, exist_ok=True)
            for path, values, value in zip(stack.paths, maps, defocus.tolist()):
                save_map(folder / path.stem, values, f"{stack.group}/{path.name}: mean {value:.2f}")
            outputs.add(stack, defocus, meta)
        where = outputs.finish()
    print(f"defocus of {outputs.tally()} -> {where}, maps in {out / 'defocus_maps'}")
