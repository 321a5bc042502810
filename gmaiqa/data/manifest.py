"""The dataset contract: read and validate ``manifest.csv`` (or a plain folder of folders and stack files).

Columns (paths relative to the dataset folder)::

    group     required  one autofocus z-stack (one field of view)
    image     required  image file, or a plane of a stack file: ``stack.tif#z3`` (gmaiqa.data.stackfile)
    z         required  integer capture order within the group
    score     optional  clarity 0-100 (GMANet §4.1: clearest 100, other clear 95-99, blurred 94 -> 0)
    clearest  optional  1 on exactly one image per labelled group; else derived from the max score
    split     optional  train / val / test; else split by group with a seed
    z_um      optional  physical focus position in µm (for z-error)
    pixel_um  optional  pixel size in µm of the stored images, one value per group (the scale a model
                        was trained at is recorded from it and checked when scoring)

This module reads the rows; ``gmaiqa.data.dataset`` builds and validates the stacks from them,
collecting every problem before reporting (``gmaiqa.data.report``), each naming the manifest line, file
or group and the fix. Nothing here writes to the dataset folder.
"""

from __future__ import annotations

import csv
import difflib
import re
from pathlib import Path

from gmaiqa.data.io import is_image
from gmaiqa.data.report import Problem
from gmaiqa.data.stackfile import (
    choose,
    is_stack_candidate,
    not_a_stack_note,
    parse_reference,
    plane_reference,
    stack_infos,
    stack_name,
)
from gmaiqa.errors import ImageReadError

MANIFEST = "manifest.csv"
REQUIRED_COLUMNS = ("group", "image", "z")
OPTIONAL_COLUMNS = ("score", "clearest", "split", "z_um", "pixel_um")


def manifest_line(row: int) -> str:
    return f"{MANIFEST} line {row}"


def parse_float(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    return float(text)  # raises ValueError; "nan" parses and is rejected by the caller


def parse_flag(text: str) -> int | None:
    text = text.strip().lower()
    if not text:
        return None
    if text in ("1", "true", "yes"):
        return 1
    if text in ("0", "false", "no"):
        return 0
    raise ValueError(text)


def natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def read_manifest_rows(root: Path, problems: list[Problem]) -> list[dict] | None:
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


def take_stack_metadata(root: Path, rows: list[dict]) -> None:
    """A manifest group whose rows name the planes of one stack (``stack.tif#z3``) takes the z step and
    pixel size the stack's metadata states where its rows leave z_um / pixel_um empty, as the same stack
    read from a folder does: z_um is the plane's index times the step, so z-errors come in µm. Rows'
    own values win; a group naming planes of several stacks takes none (no one step holds for it)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row.get("group") or "", []).append(row)
    infos: dict[Path, list] = {}  # a multi-position file is read once for all its groups

    def empty(row: dict, column: str) -> bool:
        return not (row.get(column) or "").strip()

    for members in groups.values():
        references = [parse_reference(root / r["image"]) if r.get("image") else None for r in members]
        if not all(references) or len({(f, c, t, s) for f, _, c, t, s in references}) != 1:
            continue
        file, _, _, _, scene = references[0]
        if file not in infos:
            try:
                infos[file] = stack_infos(file)
            except Exception:  # an unreadable file is reported by the file checks, with its reason
                infos[file] = []
        info = next((i for i in infos[file] if i.scene == scene), None)
        if info is None:
            continue
        if info.z_step_um is not None and all(empty(r, "z_um") for r in members):
            for row, (_, plane, *_) in zip(members, references):
                row["z_um"] = f"{plane * info.z_step_um:g}"
        if info.pixel_um is not None:
            for row in (r for r in members if empty(r, "pixel_um")):
                row["pixel_um"] = f"{info.pixel_um:g}"


def hidden(path: Path) -> bool:
    """Hidden files and folders (``.name``, macOS ``._name`` resource forks) and macOS ``__MACOSX``."""
    return path.name.startswith(".") or path.name == "__MACOSX"


def rows_from_folders(root: Path, problems: list[Problem], channel=None, t=None) -> list[dict]:
    """root/<group>/<images>, capture order = natural sort order of the file names, and root/<stack
    file> (a multi-page TIFF, OME-TIFF, ImageJ hyperstack or vendor file: one group per z-stack, its
    planes in stored order, ``channel``/``t`` choosing within more than one). A folder holding nothing
    but single images is one z-stack named after the folder; single images beside groups belong to
    none (a warning names them). Hidden files and folders are skipped, with a warning that counts them."""
    rows, skipped, single_images = [], [], []
    entries = sorted(root.iterdir(), key=lambda p: natural_key(p.name))
    for path in (p for p in entries if p.is_file() and not hidden(p)):
        reported = len(problems)
        file_rows = rows_of_stack_file(root, path, channel, t, problems) if is_stack_candidate(path) else []
        rows += file_rows
        if not file_rows and len(problems) == reported and is_image(path):  # one image, not a z-stack
            single_images.append(path)
    skipped += [p for p in entries if p.is_dir() and hidden(p)]
    for group_dir in (p for p in entries if p.is_dir() and not hidden(p)):
        files = sorted((p for p in group_dir.iterdir() if p.is_file()), key=lambda p: natural_key(p.name))
        skipped += [p for p in files if hidden(p)]
        images = [p for p in files if not hidden(p) and is_image(p)]
        rows += _image_rows(root, group_dir.name, images)
        if len(images) == 1:  # a group of one image is refused: say so where it is a stack misread
            _warn_not_stacks(root, images, problems)
    one_stack = bool(single_images) and not rows and not any(p.severity == "error" for p in problems)
    # a file that holds several images but no z-stack is named alone or beside stacks, not among the
    # planes of a folder that is one z-stack (colour planes there are its images' own layout)
    noted = set() if one_stack and len(single_images) > 1 else _warn_not_stacks(root, single_images, problems)
    if one_stack:
        # nothing but images: the folder is one z-stack (a microscope's export of one file per plane)
        rows = _image_rows(root, root.resolve().name, single_images)
    elif plain := [p for p in single_images if p not in noted]:  # the others have their own warning
        names = ", ".join(p.name for p in plain[:3]) + (", ..." if len(plain) > 3 else "")
        problems.append(
            Problem(
                str(root),
                f"{len(plain)} single image(s) beside the z-stacks belong to no group ({names})",
                "put a z-stack's images in a sub-folder of their own (or list them in manifest.csv); "
                "nothing to do if they are not part of the data",
                severity="warning",
            )
        )
    if skipped:
        names = ", ".join(str(p.relative_to(root)) for p in skipped[:3]) + (
            ", ..." if len(skipped) > 3 else ""
        )
        problems.append(
            Problem(
                str(root),
                f"skipped {len(skipped)} hidden file(s)/folder(s) ({names})",
                "nothing to do: hidden and macOS ._ files are never read as images",
                severity="warning",
            )
        )
    if not rows and not any(p.severity == "error" for p in problems):
        problems.append(
            Problem(
                str(root),
                f"no {MANIFEST}, no sub-folders with images and no stack files",
                f"add a {MANIFEST}, put each z-stack in its own sub-folder, or give multi-page TIFF stacks",
            )
        )
    return rows


def _warn_not_stacks(root: Path, images: list[Path], problems: list[Problem]) -> set[Path]:
    """A warning for each image file that holds several images yet is no z-stack (a 3-plane stack
    saved as one colour image, a time series without z): what it is and how to save it as a stack.
    Returns the files warned about."""
    noted = set()
    for image in images:
        note = not_a_stack_note(image)
        if note:
            problems.append(Problem(str(image.relative_to(root)), *note, severity="warning"))
            noted.add(image)
    return noted


def _image_rows(root: Path, group: str, images: list[Path]) -> list[dict]:
    """One group of image files, in the order given (the natural order of their names)."""
    return [
        {"group": group, "image": str(image.relative_to(root)), "z": str(z), "_line": 0}
        for z, image in enumerate(images)
    ]


def rows_of_stack_file(root: Path, path: Path, channel, t, problems: list[Problem]) -> list[dict]:
    """The rows of a stack file's z-stacks: one group, or (a vendor file's scenes) ``<name>/s<k>`` each."""
    rel = str(path.relative_to(root))
    try:
        infos = stack_infos(path)
    except ImageReadError as exc:  # e.g. a vendor file without the vendor extra
        problems.append(Problem(rel, exc.reason, exc.fix))
        return []
    except Exception as exc:  # tifffile and the vendors' readers raise many types for corrupt files
        problems.append(
            Problem(rel, f"unreadable stack file ({type(exc).__name__}: {exc})", "re-export the stack")
        )
        return []
    name = stack_name(path)
    rows = []
    for info in infos:
        where = rel if info.scene is None else f"{rel} scene {info.scene} ({info.scene_name})"
        problems += [
            Problem(where, note, "its planes get no z_um / pixel_um from it", severity="warning")
            for note in info.notes
        ]
        c = _choice(where, "channel", channel, info.channels, problems)
        k = _choice(where, "t", t, tuple(str(i) for i in range(info.times)), problems)
        if (len(info.channels) > 1 and c is None) or (info.times > 1 and k is None):
            continue
        rows += [
            {
                "group": name if info.scene is None else f"{name}/s{info.scene}",
                "image": plane_reference(
                    Path(rel),
                    z,
                    c if len(info.channels) > 1 else None,
                    k if info.times > 1 else None,
                    info.scene,
                ),
                "z": str(z),
                "z_um": f"{z * info.z_step_um:g}" if info.z_step_um is not None else "",
                "pixel_um": f"{info.pixel_um:g}" if info.pixel_um is not None else "",
                "_line": 0,
            }
            for z in range(info.planes)
        ]
    return rows


def _choice(rel: str, key: str, value, names: tuple[str, ...], problems: list[Problem]) -> int | None:
    """The index ``channel=`` / ``t=`` picks among ``names``; a problem naming the choices when a stack
    has several and none (or an unknown one) is given."""
    if len(names) <= 1:
        return 0
    index = choose(value, names)
    if index is None:
        given = "none was chosen" if value is None else f"{key}={value} is not one of them"
        problems.append(
            Problem(
                rel,
                f"has {len(names)} {'channels' if key == 'channel' else 'time points'} "
                f"({', '.join(names)}); {given}",
                f"choose one with {key}=NAME_OR_INDEX (data.{key}= for train, eval and benchmark)",
            )
        )
    return index
