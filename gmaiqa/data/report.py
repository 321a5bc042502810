"""What validating a dataset found: every problem (where, what, the fix), the report ``gmaiqa check``
prints, and the error a command raises when a dataset it needs is invalid."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmaiqa.data.stack import FocusStack
from gmaiqa.data.stackfile import parse_reference
from gmaiqa.errors import GmaiqaError


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
    stack_files: dict = field(default_factory=dict)  # relative path -> gmaiqa.data.stackfile.StackInfo

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
            "stack_files": {
                rel: {
                    "planes": i.planes,
                    "size": [i.height, i.width],
                    "dtype": i.dtype,
                    "z_step_um": i.z_step_um,
                    "channels": list(i.channels),
                    "times": i.times,
                    "pixel_um": i.pixel_um,
                    "scene": i.scene,  # a vendor file's scene, where it has several (else null)
                    "scene_name": i.scene_name,
                }
                for rel, i in self.stack_files.items()
            },
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


def layout_of(report: Report) -> str:
    image_files = [Path(p) for s in report.stacks or [] for p in s.paths if parse_reference(p) is None]
    if image_files and all(p.parent == report.root for p in image_files):
        return "images of one z-stack"
    layouts = (("folder of folders", bool(image_files)), ("stack files", bool(report.stack_files)))
    return " and ".join(name for name, used in layouts if used) or "folder"


def format_report(report: Report) -> str:
    s = report.summary()
    layout = (
        ""
        if report.stacks is None and not report.has_manifest
        else f"  ({'manifest.csv' if report.has_manifest else layout_of(report)})"
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
        lines += [f"stack    {rel}: {info.describe()}" for rel, info in report.stack_files.items()]
    for kind, items in (("ERROR", report.errors), ("warning", report.warnings)):
        for p in items:
            lines.append(f"{kind}  {p}")
    lines.append("OK: dataset is valid" if report.ok else f"INVALID: {len(report.errors)} problem(s)")
    return "\n".join(lines)
