"""The MOS dataset contract (quality metrics such as SAQM): ``manifest.csv`` in the dataset folder.

Columns (paths relative to the dataset folder)::

    image      required  image file
    mos        required  mean opinion score (any scale; normalised per domain for training)
    domain     optional  e.g. ``natural`` / ``ultrasound``; default ``default``
    reference  optional  the pristine image this one was distorted from (images sharing a reference
                         never straddle splits)
    split      optional  train / val / test; else split by reference (or image) with a seed

TID2013's denoised subset and MD72 plug in by writing such a manifest. Validation collects every
problem (missing or unreadable files, non-numeric MOS, duplicates, bad splits, mistyped columns) with
its line and the fix, as ``gmaiqa check`` does for z-stacks. Nothing here writes to the dataset folder.
"""

from __future__ import annotations

import csv
import difflib
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gmaiqa.data.io import image_size, read_raw
from gmaiqa.data.manifest import MANIFEST
from gmaiqa.data.report import DatasetError, Problem
from gmaiqa.data.splits import SPLITS, seeded_split
from gmaiqa.errors import ImageReadError

REQUIRED = ("image", "mos")
OPTIONAL = ("domain", "reference", "split")


@dataclass(frozen=True)
class RatedImage:
    path: Path
    mos: float
    domain: str
    reference: str | None
    split: str | None


def load_mos_dataset(root: str | Path, validate: str = "full") -> list[RatedImage]:
    """Every rated image of ``root``; raises DatasetError listing all problems found."""
    root = Path(root)
    path = root / MANIFEST
    problems: list[Problem] = []
    if not path.is_file():
        raise DatasetError(
            root,
            [
                Problem(
                    str(path), "no manifest.csv", "write one with columns image,mos[,domain,reference,split]"
                )
            ],
        )
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise DatasetError(
                root,
                [
                    Problem(
                        str(path),
                        f"missing column(s) {missing}; found {columns}",
                        f"the header needs {list(REQUIRED)}",
                    )
                ],
            )
        for column in columns:
            if column not in REQUIRED + OPTIONAL:
                close = difflib.get_close_matches(column, REQUIRED + OPTIONAL, n=1, cutoff=0.7)
                problems.append(
                    Problem(
                        str(path),
                        f"unknown column {column!r}",
                        f"did you mean {close[0]!r}?" if close else "remove it or it is ignored",
                        severity="warning",
                    )
                )
        rows = [
            ({(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}, n)
            for n, raw in enumerate(reader, 2)
        ]
    items = []
    seen: Counter = Counter()
    for row, line in rows:
        where = f"{MANIFEST} line {line}"
        image = row.get("image", "")
        if not image:
            problems.append(Problem(where, "empty image path", "fill it in or remove the row"))
            continue
        seen[image] += 1
        if seen[image] == 2:
            problems.append(Problem(where, f"{image} is listed twice", "keep one row per image"))
        try:
            mos = float(row["mos"])
            if math.isnan(mos) or math.isinf(mos):
                raise ValueError
        except ValueError:
            problems.append(
                Problem(
                    where, f"mos {row['mos']!r} is not a number", "write the mean opinion score as a number"
                )
            )
            continue
        split = row.get("split") or None
        if split is not None and split not in SPLITS:
            problems.append(
                Problem(where, f"split {split!r}", f"use one of {list(SPLITS)} or leave it empty")
            )
        reference = row.get("reference") or None
        if reference and validate != "none" and not (root / reference).is_file():
            problems.append(
                Problem(
                    where, f"reference {reference} does not exist", "fix the path or leave the column empty"
                )
            )
        file = root / image
        if validate != "none":
            try:
                read_raw(file) if validate == "full" else image_size(file)
            except ImageReadError as exc:
                problems.append(Problem(where, f"{image}: {exc.reason}", exc.fix))
                continue
        items.append(RatedImage(file, mos, row.get("domain") or "default", reference, split))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DatasetError(root, problems)
    if not items:
        raise DatasetError(root, [Problem(str(path), "no rated images", "add rows image,mos")])
    return items


def split_rated(
    items: list[RatedImage], ratios=(0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, list[RatedImage]]:
    """The manifest's split where given; otherwise seeded per reference image (so the distortions of one
    pristine image never appear in two splits) within each domain."""
    out: dict[str, list[RatedImage]] = {s: [] for s in SPLITS}
    free: dict[str, set[str]] = {}
    for item in items:
        if item.split:
            out[item.split].append(item)
        else:
            free.setdefault(item.domain, set()).add(item.reference or str(item.path))
    assigned = {}
    for domain, keys in free.items():
        for split, chosen in seeded_split(sorted(keys), ratios=tuple(ratios), seed=seed).items():
            assigned.update({(domain, k): split for k in chosen})
    for item in items:
        if not item.split:
            out[assigned[(item.domain, item.reference or str(item.path))]].append(item)
    return out


def normalise_mos(items: list[RatedImage]) -> dict[str, tuple[float, float]]:
    """Per-domain (min, max) of the MOS: SAQM normalises each domain's scores to [0, 1] ("to have
    probability distributions", §2.3) so one BCE loss serves both scales."""
    ranges: dict[str, tuple[float, float]] = {}
    for item in items:
        lo, hi = ranges.get(item.domain, (item.mos, item.mos))
        ranges[item.domain] = (min(lo, item.mos), max(hi, item.mos))
    return ranges
