"""Stack files for the tests and benchmarks: a focus series, a TIFF layout tifffile does not write by
itself, and Zeiss CZI files (written with pylibCZIrw, which the vendor extra brings)."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import tifffile

SHARPEST = 2


def focus_series(seed: int = 0, planes: int = 5) -> np.ndarray:
    """(planes, 48, 64) uint16: sharp at SHARPEST, blurred more with the distance from it."""
    base = np.random.default_rng(seed).random((48, 64)).astype(np.float32)
    series = [
        cv2.GaussianBlur(base, (0, 0), 1.2 * abs(z - SHARPEST)) if z != SHARPEST else base
        for z in range(planes)
    ]
    return (np.stack(series) * 60000).astype(np.uint16)


def keep_only_the_first_page(path: Path) -> None:
    """End the IFD chain after page 0, as ImageJ writes a stack over 4 GB: one page, every plane behind
    it (in place; classic TIFF, either byte order)."""
    with tifffile.TiffFile(path) as tif:
        page, order = tif.pages[0], tif.byteorder
        link = page.offset + 2 + 12 * len(page.tags)  # where page 0 stores the offset of the next IFD
    with open(path, "r+b") as handle:
        handle.seek(link)
        handle.write(struct.pack(f"{order}I", 0))


def write_czi(path: Path, data: np.ndarray, names=None, z_um=1.5, pixel_um=0.4) -> None:
    """A z-stack (Z, C, Y, X) as a Zeiss CZI with its channel names and its scaling (stored in metres)."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for z in range(data.shape[0]):
            for c in range(data.shape[1]):
                writer.write(data[z, c][..., None], plane={"Z": z, "C": c, "T": 0})
        writer.write_metadata(
            document_name=path.stem,
            channel_names=names,
            scale_x=pixel_um * 1e-6,
            scale_y=pixel_um * 1e-6,
            scale_z=z_um * 1e-6,
        )
