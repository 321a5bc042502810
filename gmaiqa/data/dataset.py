"""A dataset folder as z-stacks: the rows of ``manifest.csv`` (or of a folder of folders, see
``gmaiqa.data.manifest``) grouped and checked - capture order, labels, splits, files that exist and
decode, one image size per group - with every problem collected before anything is reported."""

from __future__ import annotations

import math
import os
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gmaiqa.data.io import check_pixels, image_size, read_raw
from gmaiqa.data.manifest import (
    MANIFEST,
    manifest_line,
    natural_key,
    parse_flag,
    parse_float,
    read_manifest_rows,
    rows_from_folders,
    rows_of_stack_file,
    take_stack_metadata,
)
from gmaiqa.data.report import DatasetError, Problem, Report
from gmaiqa.data.splits import SPLITS
from gmaiqa.data.stack import SCORE_SCALE, FocusStack
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


def outside_problem(root: Path, image: str, allow_outside: bool, prefix: str = "data.") -> str | None:
    """Why an image path of a manifest may not be read, or None. Every image lies inside the dataset
    folder: an absolute path or one climbing out with ``..`` is refused, and so is a symlink that leads
    out, unless the user allows it (``data.allow_outside=true``: a stack assembled by links)."""
    if Path(image).is_absolute():
        return f"absolute path {image}: paths are relative to the dataset folder"
    inside = os.path.normpath(image)
    if inside == ".." or inside.startswith(".." + os.sep):
        return f"path {image} leads outside the dataset folder"
    if not allow_outside:
        real, real_root = Path(os.path.realpath(root / inside)), Path(os.path.realpath(root))
        if not real.is_relative_to(real_root):
            outside = f"outside the dataset folder ({prefix}allow_outside=true reads it)"
            return f"{image} is a link to {real}, {outside}"
    return None


def _field(row: dict, column: str, parse, where: str, what: str, fix: str, problems: list[Problem]):
    """(parsed value, True), or (None, False) with a problem naming the line, the column and its text."""
    try:
        return parse(row.get(column, "")), True
    except ValueError:
        problems.append(Problem(where, f"{column}={row.get(column)!r} {what}", fix))
        return None, False


def _build_stacks(
    root: Path, rows: list[dict], problems: list[Problem], allow_outside: bool = False, prefix: str = "data."
) -> list[FocusStack]:
    by_group: dict[str, list[dict]] = defaultdict(list)
    seen_images: dict[str, int] = {}
    for row in rows:
        where = manifest_line(row["_line"]) if row["_line"] else row["image"]
        bad = False
        if not row.get("group"):
            problems.append(Problem(where, "empty group", "give every row the name of its z-stack"))
            bad = True
        if not row.get("image"):
            problems.append(
                Problem(where, "empty image path", "give the image file relative to the dataset folder")
            )
            bad = True
        row["z"], ok = _field(
            row,
            "z",
            int,
            where,
            "is not an integer",
            "z is the capture order within the group: 0, 1, 2, ...",
            problems,
        )
        bad |= not ok
        for column in ("score", "z_um", "pixel_um"):
            value, ok = _field(
                row,
                column,
                parse_float,
                where,
                "is not a number",
                f"write a number or leave {column} empty",
                problems,
            )
            bad |= not ok
            if value is not None and math.isnan(value):
                problems.append(Problem(where, f"{column} is NaN", f"write a number or leave {column} empty"))
                bad = True
            elif column == "pixel_um" and value is not None and not value > 0:
                problems.append(
                    Problem(where, f"pixel_um {value:g} is not positive", "write the pixel size in µm")
                )
                bad = True
            elif column == "score" and value is not None and not 0 <= value <= SCORE_SCALE:
                problems.append(
                    Problem(
                        where,
                        f"score {value:g} is outside [0, 100]",
                        "scores use the paper's 0-100 scale (clearest 100)",
                    )
                )
                bad = True
            row[column] = value
        row["clearest"], ok = _field(
            row,
            "clearest",
            parse_flag,
            where,
            "is not 0/1",
            "write 1 on the clearest image, 0 or empty elsewhere",
            problems,
        )
        bad |= not ok
        split = row.get("split", "").lower()
        if split and split not in SPLITS:
            problems.append(
                Problem(
                    where,
                    f"split {split!r} is not one of {list(SPLITS)}",
                    "fix the value or leave split empty",
                )
            )
            bad = True
        row["split"] = split or None
        if row.get("image"):
            refused = outside_problem(root, row["image"], allow_outside, prefix)
            if refused:
                problems.append(
                    Problem(
                        where, refused, "keep every image inside the dataset folder and list it from there"
                    )
                )
                bad = True
            if row["image"] in seen_images:
                problems.append(
                    Problem(
                        where,
                        f"image {row['image']} is listed twice "
                        f"(first on {manifest_line(seen_images[row['image']])})",
                        "remove the duplicate row",
                    )
                )
                bad = True
            seen_images[row["image"]] = row["_line"]
        if not bad:
            by_group[row["group"]].append(row)

    stacks = []
    for group in sorted(by_group, key=natural_key):
        members = by_group[group]
        where = f"group {group!r}"
        z_counts = Counter(r["z"] for r in members)
        duplicated = sorted(z for z, n in z_counts.items() if n > 1)
        for z in duplicated:
            lines = [r["_line"] for r in members if r["z"] == z]
            problems.append(
                Problem(
                    f"{where} ({MANIFEST} lines {lines})",
                    f"duplicate (group, z) = ({group}, {z})",
                    "each image of a stack needs its own capture position z",
                )
            )
        if duplicated:
            continue
        members.sort(key=lambda r: r["z"])
        if len(members) < 2:
            problems.append(
                Problem(
                    where,
                    f"only {len(members)} image",
                    "a z-stack needs at least 2 images; add the rest of the stack or drop the group",
                )
            )
            continue
        zs = [r["z"] for r in members]
        gaps = [b for a, b in zip(zs, zs[1:]) if b - a != 1]
        if gaps:
            problems.append(
                Problem(
                    where,
                    f"capture order has gaps before z={gaps[:5]}",
                    "neighbours should differ by 1; check for missing images "
                    "(positions are used as given order)",
                    severity="warning",
                )
            )
        splits = {r["split"] for r in members}
        if len(splits) > 1:
            problems.append(
                Problem(
                    where,
                    f"rows in several splits {sorted(s or '' for s in splits)}",
                    "a group belongs to exactly one split",
                )
            )
            continue
        scores = [r["score"] for r in members]
        flags = [r["clearest"] or 0 for r in members]
        if any(s is None for s in scores) and not all(s is None for s in scores):
            missing = [r["_line"] for r in members if r["score"] is None]
            problems.append(
                Problem(
                    where,
                    f"score missing on {MANIFEST} lines {missing}",
                    "score every image of the group or none",
                )
            )
            continue
        has_scores = scores[0] is not None
        clearest = None
        if sum(flags) > 1:
            lines = [r["_line"] for r, f in zip(members, flags) if f]
            problems.append(
                Problem(
                    where,
                    f"{sum(flags)} images marked clearest ({MANIFEST} lines {lines})",
                    "mark exactly one image per group as clearest",
                )
            )
            continue
        if sum(flags) == 1:
            clearest = flags.index(1)
            if has_scores and scores[clearest] < max(scores):
                problems.append(
                    Problem(
                        where,
                        f"the image marked clearest scores {scores[clearest]:g} "
                        f"but another scores {max(scores):g}",
                        "the clearest image must have the highest score (100 by the paper's rule)",
                    )
                )
                continue
        elif has_scores:
            best = [i for i, s in enumerate(scores) if s == max(scores)]
            if len(best) > 1:
                problems.append(
                    Problem(
                        where,
                        f"{len(best)} images share the top score {max(scores):g}",
                        "give the clearest 100 and the others less, or mark it in the clearest column",
                    )
                )
                continue
            clearest = best[0]
        z_um = [r["z_um"] for r in members]
        if any(v is None for v in z_um) and not all(v is None for v in z_um):
            problems.append(
                Problem(where, "z_um missing on some rows", "give z_um for every image of the group or none")
            )
            continue
        pixel_sizes = {r["pixel_um"] for r in members if r.get("pixel_um") is not None}
        if len(pixel_sizes) > 1:
            problems.append(
                Problem(
                    where,
                    f"pixel_um differs within the group ({', '.join(f'{v:g}' for v in sorted(pixel_sizes))})",
                    "one field of view has one pixel size: give the same pixel_um on every row",
                )
            )
            continue
        stacks.append(
            FocusStack(
                group=group,
                paths=tuple(root / r["image"] for r in members),
                pixel_um=next(iter(pixel_sizes), None),
                z=tuple(zs),
                scores=np.asarray(scores, dtype=np.float32) if has_scores else None,
                clearest=clearest,
                z_um=np.asarray(z_um, dtype=np.float64) if z_um[0] is not None else None,
                split=members[0]["split"],
            )
        )
    return stacks


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
    stacks = _build_stacks(root, rows, problems, allow_outside, option_prefix)
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
