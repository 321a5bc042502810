"""Stack files for the tests: a focus series, and TIFF layouts tifffile does not write by itself."""

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
