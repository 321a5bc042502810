"""Microscopy stack files as z-stacks: a multi-page TIFF, an OME-TIFF or an ImageJ hyperstack is one
group, one image per z plane in stored order.

A plane is addressed by a *plane reference*, the file's path with ``#z<i>`` (and ``c<k>`` / ``t<k>``
for a channel or time point) appended - ``stacks/cell1.ome.tif#z12c1`` - so that every reader of an
image path (``gmaiqa.data.io``), every table (``predictions.csv``) and a manifest row can name a plane
like a file. The physical z step comes from the metadata: OME ``Pixels/@PhysicalSizeZ`` (with its unit),
ImageJ ``spacing`` (with ``unit``); the planes then get ``z_um = index * step``. The pixel size likewise:
OME ``PhysicalSizeX``, or an ImageJ file's TIFF resolution (pixels per ``unit``) -> ``pixel_um``.

Which axes count: ``Z`` (and the anonymous page axes ``I``/``Q`` of a plain multi-page TIFF) are the
planes; a ``C`` axis of more than one channel needs ``channel=`` (a name or an index), a ``T`` axis of
more than one time point ``t=``. RGB samples (``S``) stay one colour image.

A stack stored as 8- or 16-bit is read as its levels (``gmaiqa.data.io``); one stored as floats or as
other integers (an ImageJ 32-bit stack, a deconvolved or background-subtracted one, a signed camera) is
scaled into [0, 1] by one map for all its planes, from the stack's own range (``stack_range``): by its
highest value where none is negative (zero stays zero), from lowest to highest otherwise; a float stack
already within [0, 1] is used as stored. One map keeps the planes comparable, which per-plane scaling
would not: a blurred plane would be stretched to the contrast of the sharp one.

Reading a plane keeps its file open (a few files per process, see ``_open_stack``): opening a TIFF
walks its chain of pages, so reopening it for every plane made reading a stack quadratic in its depth.

Vendors' files (Zeiss CZI, Nikon ND2, Leica LIF) are stack files too, read through bioio
(``gmaiqa.data.vendor``); each of their scenes that holds a z-stack is a group, as is each series of
a TIFF (an OME-TIFF's images: stage positions), and a plane reference names the scene or series when
there are several: ``plate.czi#s2z12c1``.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import tifffile

from gmaiqa.data.stack_info import StackInfo, StackReader
from gmaiqa.data.tiff_stack import PLANE_AXES, TIFF
from gmaiqa.data.vendor import VENDOR, VENDOR_FORMATS
from gmaiqa.errors import ImageReadError
from gmaiqa.registry import Registry

# suffix -> reader: a new format is a module with its StackReader and a line here
READERS: Registry[StackReader] = Registry("stack file format", normalize=str.lower)
for _suffix, _reader in {".tif": TIFF, ".tiff": TIFF, **dict.fromkeys(VENDOR_FORMATS, VENDOR)}.items():
    READERS.add(_suffix, _reader)
STACK_SUFFIXES = tuple(READERS)
_REFERENCE = re.compile(r"^(?P<file>.+)#(?:s(?P<s>\d+))?z(?P<z>\d+)(?:c(?P<c>\d+))?(?:t(?P<t>\d+))?$")


def reader_for(path: Path) -> StackReader:
    """The reader of a stack file, by its suffix (``is_stack_candidate`` said it is one)."""
    return READERS.lookup(path.suffix)


def is_stack_candidate(path: Path) -> bool:
    return path.suffix.lower() in STACK_SUFFIXES and "#" not in path.name


def stack_name(path: Path) -> str:
    """The group a stack file's z-stack is named after: ``cell.1.ome.tif`` -> ``cell.1``, ``plate.czi`` ->
    ``plate`` (only the stack suffix goes: dots inside a name stay)."""
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", *STACK_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def plane_reference(
    path: Path, z: int, channel: int | None = None, t: int | None = None, scene: int | None = None
) -> str:
    text = f"{path}#" + (f"s{scene}" if scene is not None else "") + f"z{z}"
    if channel is not None:
        text += f"c{channel}"
    if t is not None:
        text += f"t{t}"
    return text


def parse_reference(path: str | Path) -> tuple[Path, int, int | None, int | None, int | None] | None:
    """(file, z, channel, t, scene) of a plane reference; None for a plain path (or an existing file
    whose name happens to contain ``#``)."""
    path = Path(path)
    if "#" not in path.name or path.exists():
        return None
    match = _REFERENCE.match(str(path))
    if match is None:
        return None
    c, t, scene = (int(match.group(k)) if match.group(k) else None for k in ("c", "t", "s"))
    return Path(match.group("file")), int(match.group("z")), c, t, scene


def stack_infos(path: Path) -> list[StackInfo]:
    """The z-stacks of a stack file: one per series of a TIFF (an OME-TIFF's images: stage positions)
    or scene of a vendor file that holds a z-stack, none for a single image. ``scene`` names the
    series or scene only where the file has several. Read once per process and file version, through
    the handle its planes are read with: reading a folder, the dataset's report, a stack's range and a
    manifest's metadata all ask, and each used to parse the file again."""
    key = file_version(path)
    with _open_files_lock:
        if key in _stack_infos:
            _stack_infos.move_to_end(key)
        else:
            opened = _open_stack(path)
            _stack_infos[key] = reader_for(path).infos(path, opened)
            while len(_stack_infos) > _INFOS_KEPT:
                _stack_infos.popitem(last=False)
        return list(_stack_infos[key])


def not_a_stack_note(path: Path) -> tuple[str, str] | None:
    """(what, fix) for a TIFF that holds several images yet is no z-stack, as a user who wrote a stack
    may have made it; None for any other file (an ordinary single image needs no note):
    * one RGB(A) page of separate colour planes: how tifffile.imwrite stores a (3, H, W) or (4, H, W)
      array unless given photometric='minisblack', so a 3- or 4-plane z-stack saved without it;
    * a time series without z planes: a focus sweep recorded as a time-lapse."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with _open_files_lock:  # the handle stack_infos just read it with
            tif = _open_stack(path)
            page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
            separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
            rgb = page.photometric == tifffile.PHOTOMETRIC.RGB
            if len(tif.pages) == 1 and separate and rgb and page.samplesperpixel in (3, 4):
                samples = int(page.samplesperpixel)
                return (
                    f"read as one colour image: its {samples} planes are the samples of one RGB page, "
                    f"as tifffile.imwrite stores a ({samples}, H, W) array unless told otherwise",
                    "if they are z planes, write the stack with tifffile.imwrite(path, planes, "
                    "photometric='minisblack'); nothing to do for a colour image",
                )
            series = tif.series[0]
            sizes = dict(zip(series.axes, series.shape))
            if sizes.get("T", 1) > 1 and not any(sizes.get(a, 1) > 1 for a in PLANE_AXES):
                return (
                    f"a time series of {sizes['T']} time points without z planes, not a z-stack",
                    "if its frames are focus positions (a focus sweep recorded as a time-lapse), save "
                    "them as z planes: tifffile.imwrite(path, frames, metadata={'axes': 'ZYX'}), or in "
                    "ImageJ swap frames and slices (Image > Hyperstacks > Re-order Hyperstack)",
                )
    except Exception:  # not a TIFF tifffile reads: the image reader says what is wrong with it
        return None
    return None


_OPEN_FILES_KEPT = 4
_INFOS_KEPT = 256
_stack_infos: OrderedDict[tuple, list[StackInfo]] = OrderedDict()
_open_files: OrderedDict[tuple, object] = OrderedDict()  # a tifffile.TiffFile or a bioio.BioImage
_open_files_lock = threading.Lock()


def _close(opened) -> None:
    close = getattr(opened, "close", None)  # a BioImage has none: its reader opens the file per read
    if close is not None:
        close()


def file_version(path: Path) -> tuple[str, int, int, int]:
    """A file as read now: its resolved path, inode, size and modification time. What is kept about a
    stack file (its open handle, its range, its planes in the resized cache) is keyed by it, so a file
    replaced or rewritten is read anew."""
    stat = path.stat()
    return str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns


def _open_stack(path: Path):
    """The file, parsed once and kept open while its planes are read (the caller holds the lock): a
    ``tifffile.TiffFile``, or for a vendor file a ``bioio.BioImage``, kept by ``file_version``.
    Evicted and leftover handles are closed."""
    key = file_version(path)
    opened = _open_files.pop(key, None)
    if opened is None:
        opened = reader_for(path).open(path)
    _open_files[key] = opened
    while len(_open_files) > _OPEN_FILES_KEPT:
        _close(_open_files.popitem(last=False)[1])
    return opened


def _forget_inherited_files() -> None:
    """In a forked child (a data-loader worker): an inherited handle shares its read position with the
    parent's, and the lock may have been held by a thread that does not exist here; start afresh."""
    global _open_files_lock, _ranges_lock
    _open_files.clear()
    _open_files_lock = threading.Lock()
    _ranges_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_files)


@atexit.register
def close_open_stacks() -> None:
    """Close every stack file ``read_plane`` keeps open (benchmarks also call it to time a cold read)."""
    with _open_files_lock:
        while _open_files:
            _close(_open_files.popitem()[1])


def read_plane(
    path: Path, z: int, channel: int | None, t: int | None, scene: int | None = None
) -> np.ndarray:
    """One plane as stored: (H, W) or (H, W, S)."""
    with _open_files_lock:
        return reader_for(path).plane(_open_stack(path), path, z, channel, t, scene)


_RANGES_KEPT = 256
_stack_ranges: OrderedDict[tuple, tuple[float, float]] = OrderedDict()
_ranges_lock = threading.Lock()


def check_finite_plane(plane: np.ndarray, reference: str | Path) -> None:
    """Raise ``ImageReadError`` (naming the stack file and the plane) for a float plane holding NaN or
    infinite values, which leave the stack's range, hence its scaling, undefined."""

    if plane.dtype.kind == "f" and not np.isfinite(plane).all():
        file, *_ = parse_reference(reference)
        raise ImageReadError(
            file,
            f"NaN or infinite values in plane {Path(reference).name} (a float stack is scaled by its "
            "range, which they leave undefined)",
            "replace them, e.g. with the stack's lowest value, before scoring",
        )


def stack_range(
    path: Path, channel: int | None, t: int | None, scene: int | None = None
) -> tuple[float, float]:
    """(lowest, highest) value over every plane of the z-stack that a plane reference's channel, time
    point and scene select: what scales a stack stored as floats or wide integers into [0, 1] with one
    map for all its planes (``gmaiqa.data.io``), so they stay comparable. Read once per process and
    file version; a NaN or infinite value raises ``ImageReadError`` naming the plane."""

    key = (*file_version(path), channel, t, scene)
    with _ranges_lock:  # threads of a check wait for the one reading the stack, then share its range
        if key in _stack_ranges:
            _stack_ranges.move_to_end(key)
            return _stack_ranges[key]
        infos = stack_infos(path)
        info = next((i for i in infos if i.scene == scene), infos[0] if infos else None)
        planes = info.planes if info is not None else 1
        lowest, highest = np.inf, -np.inf
        for z in range(planes):
            plane = read_plane(path, z, channel, t, scene)
            check_finite_plane(plane, plane_reference(path, z, channel, t, scene))
            lowest, highest = min(lowest, float(plane.min())), max(highest, float(plane.max()))
        _stack_ranges[key] = (lowest, highest)
        while len(_stack_ranges) > _RANGES_KEPT:
            _stack_ranges.popitem(last=False)
        return lowest, highest


def choose(value, names: tuple[str, ...]) -> int | None:
    """A ``channel=`` choice (a name or an index) as an index into ``names``; None when not found."""
    if value is None:
        return None
    text = str(value)
    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    return None
