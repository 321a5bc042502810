"""The dataset contract: read and validate ``manifest.csv`` (or a plain folder of folders).

Columns (paths relative to the dataset folder)::

    group     required  one autofocus z-stack (one field of view)
    image     required  image file
    z         required  integer capture order within the group
    score     optional  clarity 0-100 (GMANet §4.1: clearest 100, other clear 95-99, blurred 94 -> 0)
    clearest  optional  1 on exactly one image per labelled group; else derived from the max score
    split     optional  train / val / test; else split by group with a seed
    z_um      optional  physical focus position in µm (for z-error)

Validation collects every problem before reporting, each naming the manifest line, file or group and
the fix. Nothing here writes to the dataset folder.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
import re
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmaiqa.data.io import image_size, is_image, read_raw
from gmaiqa.data.splits import SPLITS
from gmaiqa.data.stack import FocusStack
from gmaiqa.errors import GmaiqaError, ImageReadError

MANIFEST = "manifest.csv"
REQUIRED_COLUMNS = ("group", "image", "z")
OPTIONAL_COLUMNS = ("score", "clearest", "split", "z_um")
VALIDATION_LEVELS = ("full", "headers", "none")


@dataclass(frozen=True)
class Problem:
    where: str
    what: str
    fix: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.what} -> {self.fix}"


class DatasetError(GmaiqaError):
    def __init__(self, root: Path | str, problems: list[Problem]):
        self.root, self.problems = Path(root), [p for p in problems if p.severity == "error"]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"dataset {root} is invalid ({len(self.problems)} problem(s)); "
            f"run `gmaiqa check root={root}` after fixing:\n{lines}"
        )


@dataclass
class Report:
    """What ``check`` found: the stacks (None when the manifest itself is unusable) and every problem."""

    root: Path
    stacks: list[FocusStack] | None
    problems: list[Problem] = field(default_factory=list)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # image path -> (H, W)
    has_manifest: bool = True

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> dict:
        stacks = self.stacks or []
        lengths = [len(s) for s in stacks]
        splits = Counter(s.split or "by seed" for s in stacks)
        size_counts = Counter(f"{h}x{w}" for h, w in self.sizes.values())
        return {
            "root": str(self.root),
            "groups": len(stacks),
            "images": sum(lengths),
            "images_per_group": (min(lengths), int(np.median(lengths)), max(lengths)) if lengths else None,
            "image_sizes": dict(size_counts.most_common()),
            "groups_with_scores": sum(s.has_scores for s in stacks),
            "groups_with_clearest_only": sum(s.labelled and not s.has_scores for s in stacks),
            "unlabelled_groups": sum(not s.labelled for s in stacks),
            "groups_with_z_um": sum(s.z_um is not None for s in stacks),
            "splits": dict(splits),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


def _line(row: int) -> str:
    return f"{MANIFEST} line {row}"


def _parse_float(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    return float(text)  # raises ValueError; "nan" parses and is rejected by the caller


def _parse_flag(text: str) -> int | None:
    text = text.strip().lower()
    if not text:
        return None
    if text in ("1", "true", "yes"):
        return 1
    if text in ("0", "false", "no"):
        return 0
    raise ValueError(text)


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _read_rows(root: Path, problems: list[Problem]) -> list[dict] | None:
    path = root / MANIFEST
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                problems.append(
                    Problem(
                        str(path),
                        f"missing required column(s) {missing}; found {columns}",
                        f"add them; the header must contain {list(REQUIRED_COLUMNS)}",
                    )
                )
                return None
            for column in columns:
                if column in REQUIRED_COLUMNS or column in OPTIONAL_COLUMNS:
                    continue
                close = difflib.get_close_matches(column, OPTIONAL_COLUMNS, n=1, cutoff=0.75)
                if close and close[0] not in columns:
                    problems.append(
                        Problem(
                            str(path),
                            f"unknown column {column!r}",
                            f"did you mean {close[0]!r}? rename it, or it is ignored",
                            severity="warning",
                        )
                    )
            rows = []
            for number, raw in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                row["_line"] = number
                rows.append(row)
            return rows
    except UnicodeDecodeError:
        problems.append(Problem(str(path), "not UTF-8 text", "save manifest.csv as UTF-8 CSV"))
    except csv.Error as exc:
        problems.append(Problem(str(path), f"malformed CSV ({exc})", "fix the quoting on that line"))
    return None


def _rows_from_folders(root: Path, problems: list[Problem]) -> list[dict]:
    """root/<group>/<images>, capture order = natural sort order of the file names."""
    rows = []
    for group_dir in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name)):
        images = sorted(
            (p for p in group_dir.iterdir() if p.is_file() and is_image(p)),
            key=lambda p: _natural_key(p.name),
        )
        for z, image in enumerate(images):
            rows.append(
                {"group": group_dir.name, "image": str(image.relative_to(root)), "z": str(z), "_line": 0}
            )
    if not rows:
        problems.append(
            Problem(
                str(root),
                f"no {MANIFEST} and no sub-folders with images",
                f"add a {MANIFEST} or put each z-stack in its own sub-folder",
            )
        )
    return rows


def _build_stacks(root: Path, rows: list[dict], problems: list[Problem]) -> list[FocusStack]:
    by_group: dict[str, list[dict]] = defaultdict(list)
    seen_images: dict[str, int] = {}
    for row in rows:
        where = _line(row["_line"]) if row["_line"] else row["image"]
        bad = False
        if not row.get("group"):
            problems.append(Problem(where, "empty group", "give every row the name of its z-stack"))
            bad = True
        if not row.get("image"):
            problems.append(
                Problem(where, "empty image path", "give the image file relative to the dataset folder")
            )
            bad = True
        try:
            row["z"] = int(row.get("z", ""))
        except ValueError:
            problems.append(
                Problem(
                    where,
                    f"z={row.get('z')!r} is not an integer",
                    "z is the capture order within the group: 0, 1, 2, ...",
                )
            )
            bad = True
        for column in ("score", "z_um"):
            try:
                value = _parse_float(row.get(column, ""))
            except ValueError:
                problems.append(
                    Problem(
                        where,
                        f"{column}={row.get(column)!r} is not a number",
                        f"write a number or leave {column} empty",
                    )
                )
                bad, value = True, None
            if value is not None and math.isnan(value):
                problems.append(Problem(where, f"{column} is NaN", f"write a number or leave {column} empty"))
                bad = True
            elif column == "score" and value is not None and not 0 <= value <= 100:
                problems.append(
                    Problem(
                        where,
                        f"score {value:g} is outside [0, 100]",
                        "scores use the paper's 0-100 scale (clearest 100)",
                    )
                )
                bad = True
            row[column] = value
        try:
            row["clearest"] = _parse_flag(row.get("clearest", ""))
        except ValueError:
            problems.append(
                Problem(
                    where,
                    f"clearest={row.get('clearest')!r} is not 0/1",
                    "write 1 on the clearest image, 0 or empty elsewhere",
                )
            )
            bad = True
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
            if row["image"] in seen_images:
                problems.append(
                    Problem(
                        where,
                        f"image {row['image']} is listed twice (first on {_line(seen_images[row['image']])})",
                        "remove the duplicate row",
                    )
                )
                bad = True
            seen_images[row["image"]] = row["_line"]
        if not bad:
            by_group[row["group"]].append(row)

    stacks = []
    for group in sorted(by_group, key=_natural_key):
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
        stacks.append(
            FocusStack(
                group=group,
                paths=tuple(
                    Path(r["image"]) if Path(r["image"]).is_absolute() else root / r["image"] for r in members
                ),
                z=tuple(zs),
                scores=np.asarray(scores, dtype=np.float32) if has_scores else None,
                clearest=clearest,
                z_um=np.asarray(z_um, dtype=np.float64) if z_um[0] is not None else None,
                split=members[0]["split"],
            )
        )
    return stacks


def _probe(path: Path, level: str) -> tuple[int, int]:
    if level == "full":
        return read_raw(path).shape[:2]
    return image_size(path)  # raises ImageReadError("file not found") itself


def _check_files(
    root: Path, stacks: list[FocusStack], level: str, workers: int, problems: list[Problem]
) -> dict:
    sizes: dict[str, tuple[int, int]] = {}
    paths = [p for s in stacks for p in s.paths]

    def probe(path: Path):
        try:
            return path, _probe(path, level), None
        except ImageReadError as exc:
            return path, None, exc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for path, size, error in pool.map(probe, paths):
            rel = os.path.relpath(path, root)
            if error is not None:
                problems.append(Problem(rel, error.reason, error.fix))
            else:
                sizes[rel] = (int(size[0]), int(size[1]))
    for stack in stacks:
        group_sizes = Counter(sizes.get(os.path.relpath(p, root)) for p in stack.paths)
        group_sizes.pop(None, None)
        if len(group_sizes) > 1:
            listing = ", ".join(f"{h}x{w} ({n} images)" for (h, w), n in group_sizes.most_common())
            problems.append(
                Problem(
                    f"group {stack.group!r}",
                    f"mixed image sizes inside the group: {listing}",
                    "all images of one z-stack come from one camera setting; re-export them at one size",
                )
            )
    return sizes


def inspect_dataset(root: str | Path, validate: str = "full", workers: int | None = None) -> Report:
    """Validate a dataset folder and collect every problem (never raises on bad data)."""
    if validate not in VALIDATION_LEVELS:
        raise GmaiqaError(f"data.validate={validate!r}: choose one of {list(VALIDATION_LEVELS)}")
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        problems.append(
            Problem(
                str(root),
                "dataset folder does not exist",
                "point root= / data.root= at a folder with manifest.csv (or make one with `gmaiqa synth`)",
            )
        )
        return Report(root, None, problems, has_manifest=False)
    has_manifest = (root / MANIFEST).is_file()
    rows = _read_rows(root, problems) if has_manifest else _rows_from_folders(root, problems)
    if rows is None:
        return Report(root, None, problems, has_manifest=has_manifest)
    if not rows and has_manifest:
        problems.append(Problem(str(root / MANIFEST), "no rows", "list one row per image"))
    stacks = _build_stacks(root, rows, problems)
    sizes = {}
    if validate != "none":
        sizes = _check_files(root, stacks, validate, workers or min(8, (os.cpu_count() or 1) * 2), problems)
    return Report(root, stacks, problems, sizes, has_manifest)


def load_dataset(
    root: str | Path, validate: str = "full", workers: int | None = None, require_labels: bool = False
) -> list[FocusStack]:
    """Stacks of a valid dataset; raises ``DatasetError`` listing every problem otherwise."""
    report = inspect_dataset(root, validate, workers)
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
    return report.stacks or []


def format_report(report: Report) -> str:
    s = report.summary()
    layout = (
        ""
        if report.stacks is None and not report.has_manifest
        else f"  ({'manifest.csv' if report.has_manifest else 'folder of folders'})"
    )
    lines = [f"dataset  {s['root']}{layout}"]
    if report.stacks is not None:
        ipg = s["images_per_group"]
        lines += [
            f"groups   {s['groups']}   images {s['images']}"
            + (f"   per group min/median/max {ipg[0]}/{ipg[1]}/{ipg[2]}" if ipg else ""),
            "sizes    " + (", ".join(f"{k} ({v})" for k, v in s["image_sizes"].items()) or "not read"),
            f"labels   scored {s['groups_with_scores']}   clearest only {s['groups_with_clearest_only']}   "
            f"unlabelled {s['unlabelled_groups']}   with z_um {s['groups_with_z_um']}",
            "splits   " + ", ".join(f"{k} {v}" for k, v in s["splits"].items()),
        ]
    for kind, items in (("ERROR", report.errors), ("warning", report.warnings)):
        for p in items:
            lines.append(f"{kind}  {p}")
    lines.append("OK: dataset is valid" if report.ok else f"INVALID: {len(report.errors)} problem(s)")
    return "\n".join(lines)
