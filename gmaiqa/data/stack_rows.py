"""The rows of a dataset (``manifest.csv`` or a folder of folders, ``gmaiqa.data.manifest``) grouped
into z-stacks and checked row by row: groups, capture order, labels, splits, paths that stay inside the
dataset folder. Every problem is collected (``Problem``), none raised; ``gmaiqa.data.dataset`` then checks
the files themselves."""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from gmaiqa.data.manifest import MANIFEST, manifest_line, natural_key, parse_flag, parse_float
from gmaiqa.data.report import Problem
from gmaiqa.data.splits import SPLITS
from gmaiqa.data.stack import SCORE_SCALE, FocusStack


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


def build_stacks(
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
