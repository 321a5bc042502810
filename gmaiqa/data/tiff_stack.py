"""TIFF stacks (multi-page TIFF, OME-TIFF, ImageJ hyperstack) read through tifffile: what each series
holds (``StackInfo``: planes, channels, time points, z step and pixel size from OME or ImageJ metadata)
and one plane at a time. The reader ``gmaiqa.data.stackfile`` chooses for ``.tif``/``.tiff``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile

from gmaiqa.data.stack_info import StackInfo, StackReader

PLANE_AXES = ("Z", "I", "Q")  # Z, and a plain multi-page TIFF's anonymous page axes
# OME's UnitsLength that microscopes use, and ImageJ's spellings of the micron; "pixel" (ImageJ's
# uncalibrated unit, OME's "pixel" and "reference frame") states no physical size at all
_UNITS_UM = {
    "m": 1e6,
    "dm": 1e5,
    "cm": 1e4,
    "mm": 1e3,
    "µm": 1.0,  # MICRO SIGN, as OME writes it
    "μm": 1.0,  # GREEK SMALL LETTER MU
    "\\u00B5m": 1.0,  # ImageJ's escaped micro sign
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "nm": 1e-3,
    "pm": 1e-6,
    "Å": 1e-4,
    "in": 25400.0,
    "inch": 25400.0,
}
_UNCALIBRATED = ("pixel", "pixels", "reference frame", "")


def _length_um(value: float, unit: str, what: str, notes: list[str]) -> float | None:
    """``value`` in ``unit`` as µm; None, with a note saying why, for an uncalibrated or unknown unit
    (an unknown one used to be taken as µm)."""
    if unit in _UNITS_UM:
        return value * _UNITS_UM[unit]
    reason = "uncalibrated" if unit in _UNCALIBRATED else "a unit gmaiqa does not know"
    notes.append(f"{what} {value:g} {unit!r} ignored: {reason}")
    return None


def _ome_pixels(tif: tifffile.TiffFile) -> list[ET.Element | None]:
    """The ``Pixels`` element of each OME ``Image`` (the file's series, in order); empty for a file
    without OME metadata. Parsed once per file: a multi-position file's XML can run to megabytes."""
    if not (tif.is_ome and tif.ome_metadata):
        return []
    root = ET.fromstring(tif.ome_metadata)
    images = [e for e in root if e.tag.endswith("Image")]
    return [next((e for e in image.iter() if e.tag.endswith("Pixels")), None) for image in images]


def _ome_physical_size(pixels: ET.Element | None, axis: str, notes: list[str]) -> float | None:
    """OME ``Pixels/@PhysicalSize<axis>`` in µm (its unit attribute read), or None."""
    if pixels is None or not pixels.get(f"PhysicalSize{axis}"):
        return None
    unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")  # the OME schema's default
    return _length_um(float(pixels.get(f"PhysicalSize{axis}")), unit, f"PhysicalSize{axis}", notes)


def _z_step_um(tif: tifffile.TiffFile, pixels: ET.Element | None, notes: list[str]) -> float | None:
    step = _ome_physical_size(pixels, "Z", notes)
    if step is not None:
        return step
    meta = tif.imagej_metadata or {}
    if meta.get("spacing"):
        # a spacing without a unit is taken as µm, as ImageJ scripts write it
        return _length_um(float(meta["spacing"]), str(meta.get("unit", "micron")), "ImageJ spacing", notes)
    return None


def _pixel_um(tif: tifffile.TiffFile, pixels: ET.Element | None, notes: list[str]) -> float | None:
    size = _ome_physical_size(pixels, "X", notes)
    if size is not None:
        return size
    unit = str((tif.imagej_metadata or {}).get("unit", ""))
    tag = tif.pages[0].tags.get("XResolution")
    if unit in _UNITS_UM and tag is not None:  # no unit: a TIFF resolution in inches or none, not µm
        numerator, denominator = tag.value
        if numerator > 0 and numerator == denominator:
            # what tifffile (and other writers) store when given no resolution: taken as 1 µm/pixel it
            # would have predict advise a resize for an image that never stated its pixel size
            notes.append(
                f"ImageJ resolution of 1 pixel per {unit}, the TIFF writers' default when none is given: "
                "not taken as the pixel size (give pixel_um= where it is)"
            )
        elif numerator > 0:
            return denominator / numerator * _UNITS_UM[unit]  # the tag is pixels per unit
    return None


def _channel_names(tif: tifffile.TiffFile, pixels: ET.Element | None, count: int) -> tuple[str, ...]:
    names: list[str] = []
    if pixels is not None:
        names = [e.get("Name") or "" for e in pixels if e.tag.endswith("}Channel") or e.tag == "Channel"]
    if len(names) != count or not all(names):
        labels = (tif.imagej_metadata or {}).get("Labels")
        names = list(labels[:count]) if isinstance(labels, list) and len(labels) >= count else []
    return tuple(names) if len(names) == count and all(names) else tuple(str(i) for i in range(count))


def tiff_infos(path: Path, tif: tifffile.TiffFile) -> list[StackInfo]:
    ome = _ome_pixels(tif)
    infos = [
        info
        for index in range(len(tif.series))
        if (info := _series_info(path, tif, index, ome[index] if index < len(ome) else None))
    ]
    if len(infos) == 1 and infos[0].scene == 0:  # one z-stack, first in its file: named as the file
        infos = [replace(infos[0], scene=None, scene_name=None)]
    return infos


def _series_info(
    path: Path, tif: tifffile.TiffFile, index: int, pixels: ET.Element | None
) -> StackInfo | None:
    """Series ``index`` of a TIFF (``pixels``: its OME metadata, if any) as a z-stack, or None when it
    holds a single image (a thumbnail, an overview, an ordinary TIFF)."""
    series = tif.series[index]
    axes, shape = series.axes, series.shape
    sizes = dict(zip(axes, shape))
    planes = (
        int(np.prod([sizes[a] for a in axes if a in PLANE_AXES])) if any(a in axes for a in PLANE_AXES) else 1
    )
    if planes < 2:
        return None
    notes: list[str] = []
    return StackInfo(
        path=path,
        axes=axes,
        planes=planes,
        height=int(sizes["Y"]),
        width=int(sizes["X"]),
        dtype=str(series.dtype),
        z_step_um=_z_step_um(tif, pixels, notes),
        channels=_channel_names(tif, pixels, int(sizes.get("C", 1))),
        times=int(sizes.get("T", 1)),
        pixel_um=_pixel_um(tif, pixels, notes),
        scene=index,
        scene_name=series.name or f"series {index}",
        notes=tuple(notes),
    )


def read_tiff_plane(
    tif: tifffile.TiffFile, path: Path, z: int, channel: int | None, t: int | None, scene: int | None
) -> np.ndarray:
    """One plane of series ``scene`` as stored, read alone (never the whole stack per plane)."""
    series = tif.series[scene or 0]
    axes, shape = series.axes, series.shape
    index, page_shape = [], []
    for axis, size in zip(axes, shape):
        if axis in "YXS":
            continue
        page_shape.append(size)
        if axis in PLANE_AXES:
            index.append(z)
        elif axis == "C":
            index.append(channel or 0)
        elif axis == "T":
            index.append(t or 0)
        else:
            index.append(0)
    flat = int(np.ravel_multi_index(index, page_shape)) if page_shape else 0
    pages = series.pages
    page = pages[flat] if flat < len(pages) else None
    if page is not None:
        return page.asarray()
    # One page with every plane stored behind it (ImageJ writes stacks over 4 GB so): read this
    # plane's bytes alone, never the whole stack once per plane.
    plane_shape = tuple(shape[len(page_shape) :])
    if series.dataoffset is not None:  # uncompressed and contiguous
        stored = np.dtype(series.dtype).newbyteorder(tif.byteorder)
        planes = int(np.prod(page_shape))  # 1 for a single page: the product of nothing
        stack = np.memmap(
            path, dtype=stored, mode="r", offset=series.dataoffset, shape=(planes, *plane_shape)
        )
        return np.asarray(stack[flat], dtype=stored.newbyteorder("="))
    data = series.asarray()  # compressed planes behind one page: tifffile decodes them together
    return data.reshape(-1, *plane_shape)[flat]


def open_tiff(path: Path) -> tifffile.TiffFile:
    return tifffile.TiffFile(path)


TIFF = StackReader("TIFF", open=open_tiff, infos=tiff_infos, plane=read_tiff_plane)
