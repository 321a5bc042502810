"""A dataset folder as z-stacks: the rows of ``manifest.csv`` (or of a folder of folders, see
``gmaiqa.data.manifest``) grouped and checked - capture order, labels, splits, files that exist and
decode, one image size per group - with every problem collected before anything is reported."""

from __future__ import annotations

import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gmaiqa.data.io import check_pixels, image_size, read_raw
from gmaiqa.data.manifest import (
    MANIFEST,
    read_manifest_rows,
    rows_from_folders,
    rows_of_stack_file,
    take_stack_metadata,
)
from gmaiqa.data.report import DatasetError, Problem, Report
from gmaiqa.data.stack import FocusStack
from gmaiqa.data.stack_rows import build_stacks
from gmaiqa.data.stackfile import is_stack_candidate, not_a_stack_note, parse_reference, stack_infos
from gmaiqa.errors import ConfigError, ImageReadError, did_you_mean
from gmaiqa.schemas.data import UniformSizes, Validation

VALIDATION_LEVELS = tuple(level.value for level in Validation)  # full | headers | none
UNIFORM_SIZES = tuple(choice.value for choice in UniformSizes)  # require | crop


def dataset_folder(root: str | Path) -> Path:
    """The folder a dataset's paths are relative to: ``root`` itself, or the folder of a single stack
    file given as the dataset (``input=stack.ome.tif``: one group, or one per scene of a vendor file)."""
    root = Path(root)
    return root.parent if root.is_file() and is_stack_candidate(root) else root


def root_problem(root: str | Path) -> tuple[str, str] | None:
    """(what is wrong with it, the fix) when ``root`` is neither a dataset folder nor a stack file."""
    root = Path(root)
    if root.is_dir() or (root.is_file() and is_stack_candidate(root)):
        return None
    if root.name == MANIFEST and root.is_file():
        return "is a manifest, not a dataset folder", f"point it at {root.parent}, the folder holding it"
    if root.is_file():
        return (
            "is a file but not a z-stack file (multi-page TIFF, OME-TIFF, ImageJ hyperstack, CZI, ND2, LIF)",
            "point it at a dataset folder (a manifest.csv, a sub-folder of images per z-stack, or stack "
            "files)",
        )
    return (
        "does not exist",
        "point it at a dataset folder or a stack file (`gmaiqa synth out=DIR` makes a dataset to try)",
    )


def _probe(path: Path, level: str) -> tuple[int, int]:
    if level == "full":  # decoded, and its pixels usable (type, range, layout) as training reads them
        array = read_raw(path)
        check_pixels(array, path)
        return array.shape[:2]
    return image_size(path)  # raises ImageReadError("file not found") itself


def _check_files(
    root: Path,
    stacks: list[FocusStack],
    level: str,
    workers: int,
    problems: list[Problem],
    uniform: str,
    prefix: str = "data.",
) -> dict:
    sizes: dict[str, tuple[int, int]] = {}
    paths = [p for s in stacks for p in s.paths]

    def probe(path: Path):
        try:
            return path, _probe(path, level), None
        except ImageReadError as exc:
            return path, None, exc

    # (file, why, fix) -> its failing planes, or None for a problem of the whole stack (its range)
    failing: dict[tuple[str, str, str], list[str] | None] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, size, error in pool.map(probe, paths):
            rel = os.path.relpath(path, root)
            if error is None:
                sizes[rel] = (int(size[0]), int(size[1]))
            elif (plane := parse_reference(path)) is not None and Path(error.path) == plane[0]:
                failing[(os.path.relpath(plane[0], root), error.reason, error.fix)] = None
            elif plane is not None:
                failing.setdefault((os.path.relpath(plane[0], root), error.reason, error.fix), []).append(rel)
            else:
                problems.append(Problem(rel, error.reason, error.fix))
    for (file, reason, fix), planes in failing.items():  # one problem per file, not per plane
        if planes is None:
            where = file
        else:
            where = planes[0] if len(planes) == 1 else f"{file} ({len(planes)} planes, {planes[0]} first)"
        problems.append(Problem(where, reason, fix))
    for stack in stacks:
        group_sizes = Counter(sizes.get(os.path.relpath(p, root)) for p in stack.paths)
        group_sizes.pop(None, None)
        if len(group_sizes) > 1:
            (h, w), n = group_sizes.most_common(1)[0]
            odd = [
                f"{os.path.relpath(p, root)} ({sizes[rel][0]}x{sizes[rel][1]})"
                for p in stack.paths
                if (rel := os.path.relpath(p, root)) in sizes and sizes[rel] != (h, w)
            ]
            problems.append(
                Problem(
                    f"group {stack.group!r}",
                    f"mixed image sizes: {n} images are {h}x{w}, but {', '.join(odd[:5])}"
                    + (f" and {len(odd) - 5} more" if len(odd) > 5 else ""),
                    "all images of one z-stack come from one camera setting: re-export them at one size, "
                    f"or let gmaiqa centre-crop each group to its smallest size ({prefix}uniform_sizes=crop)",
                    severity="warning" if uniform == "crop" else "error",
                )
            )
    return sizes


def check_reading(validate, uniform_sizes, prefix: str = "data.") -> None:
    """How a dataset is read: ``validate`` and ``uniform_sizes`` are choices (keys named as the command
    spells them: ``data.validate`` for train, eval and benchmark, ``validate`` for check and predict)."""
    for key, value, choices in (
        ("validate", validate, VALIDATION_LEVELS),
        ("uniform_sizes", uniform_sizes, UNIFORM_SIZES),
    ):
        if value not in choices:
            hint = did_you_mean(str(value), choices)
            raise ConfigError(f"{prefix}{key}", f"{value!r}{hint}", f"choose one of {list(choices)}")


def inspect_dataset(
    root: str | Path,
    validate: str = "full",
    workers: int | None = None,
    allow_outside: bool = False,
    uniform_sizes: str = "require",
    channel=None,
    t=None,
    option_prefix: str = "data.",
) -> Report:
    """Validate a dataset folder and collect every problem (never raises on bad data).

    ``allow_outside``: read images that a symlink inside the folder points outside it;
    ``uniform_sizes``: ``require`` one image size per group, or ``crop`` (the reader centre-crops each
    image of a group to the group's smallest size; mixed sizes are then a warning); ``channel`` / ``t``:
    the channel (name or index) and time point of stack files that hold several
    (``gmaiqa.data.stackfile``)."""
    check_reading(validate, uniform_sizes, option_prefix)
    root = Path(root)
    problems: list[Problem] = []
    if (bad := root_problem(root)) is not None:
        problems.append(Problem(str(root), *bad))
        return Report(root, None, problems, has_manifest=False)
    given, root = root, dataset_folder(root)
    has_manifest = given.is_dir() and (root / MANIFEST).is_file()
    if given.is_file():
        rows = rows_of_stack_file(root, given, channel, t, problems)
        if not rows and not any(p.severity == "error" for p in problems):
            what, fix = not_a_stack_note(given) or (
                "holds a single image, not a z-stack",
                "give a stack file of two or more planes, or a folder with one sub-folder of images "
                "per z-stack",
            )
            problems.append(Problem(str(given), what, fix))
    elif has_manifest:
        rows = read_manifest_rows(root, problems)
        if rows:
            take_stack_metadata(root, rows)
    else:
        rows = rows_from_folders(root, problems, channel, t)
    if rows is None:
        return Report(given, None, problems, has_manifest=has_manifest)
    if not rows and has_manifest:
        problems.append(Problem(str(root / MANIFEST), "no rows", "list one row per image"))
    stacks = build_stacks(root, rows, problems, allow_outside, option_prefix)
    sizes = {}
    if validate != "none":
        workers = workers or min(8, (os.cpu_count() or 1) * 2)
        sizes = _check_files(root, stacks, validate, workers, problems, uniform_sizes, option_prefix)
    files = _stack_files(root, stacks)
    for key, value, what, count in (
        ("channel", channel, "channels", lambda info: len(info.channels)),
        ("t", t, "time points", lambda info: info.times),
    ):
        if value is not None and not any(count(info) > 1 for info in files.values()):
            # a choice nothing needed was ignored: say so, it may be meant for another dataset
            problems.append(
                Problem(
                    str(given),
                    f"{key}={value} was given, but no stack file here holds several {what}: it is ignored",
                    f"drop {key}= (it chooses within stack files that hold several), or check the dataset",
                    severity="warning",
                )
            )
    return Report(given, stacks, problems, sizes, has_manifest, files)


def _stack_files(root: Path, stacks: list[FocusStack]) -> dict:
    """relative path (``<path> scene <k>`` for one of a vendor file's scenes) -> StackInfo of every
    stack file's z-stack whose planes the groups read."""
    files, read = {}, set()
    for path in (p for s in stacks for p in s.paths):
        plane = parse_reference(path)
        if plane is None or plane[0] in read:
            continue
        read.add(plane[0])
        rel = os.path.relpath(plane[0], root)
        try:
            infos = stack_infos(plane[0])
        except Exception:  # the file's own problem is reported where it is read
            continue
        for info in infos:
            files[rel if info.scene is None else f"{rel} scene {info.scene}"] = info
    return files


def load_dataset(
    root: str | Path,
    validate: str = "full",
    workers: int | None = None,
    require_labels: bool = False,
    allow_outside: bool = False,
    uniform_sizes: str = "require",
    channel=None,
    t=None,
    option_prefix: str = "data.",
) -> list[FocusStack]:
    """Stacks of a valid dataset; raises ``DatasetError`` listing every problem otherwise. Warnings
    (files skipped, gaps in the capture order, ...) are printed to stderr. ``option_prefix``: how the
    command names its reading options in hints (``data.`` for train, eval and benchmark; empty for
    check, predict and autofocus, whose keys are top level)."""
    report = inspect_dataset(
        root, validate, workers, allow_outside, uniform_sizes, channel, t, option_prefix=option_prefix
    )
    problems = list(report.problems)
    if require_labels and report.stacks is not None:
        for stack in report.stacks:
            if not stack.has_scores:
                problems.append(
                    Problem(
                        f"group {stack.group!r}",
                        "has no scores",
                        "training needs the score column (0-100) for every image of a training group",
                    )
                )
    if any(p.severity == "error" for p in problems):
        raise DatasetError(root, problems)
    for warning in report.warnings:
        print(f"note: {warning}", file=sys.stderr)
    if uniform_sizes == "crop" and report.stacks:
        folder = dataset_folder(root)
        return [stack.cropped_to(_smallest_size(stack, report.sizes, folder)) for stack in report.stacks]
    return report.stacks or []


def _smallest_size(stack: FocusStack, sizes: dict, root: Path) -> tuple[int, int] | None:
    known = [sizes[rel] for p in stack.paths if (rel := os.path.relpath(p, root)) in sizes]
    if len(set(known)) <= 1:
        return None
    return min(h for h, _ in known), min(w for _, w in known)
