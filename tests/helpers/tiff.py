"""TIFF layouts the stack reader must handle that tifffile does not write by itself."""

from __future__ import annotations

import struct
from pathlib import Path

import tifffile


def keep_only_the_first_page(path: Path) -> None:
    """End the IFD chain after page 0, as ImageJ writes a stack over 4 GB: one page, every plane behind
    it (in place; classic TIFF, either byte order)."""
    with tifffile.TiffFile(path) as tif:
        page, order = tif.pages[0], tif.byteorder
        link = page.offset + 2 + 12 * len(page.tags)  # where page 0 stores the offset of the next IFD
    with open(path, "r+b") as handle:
        handle.seek(link)
        handle.write(struct.pack(f"{order}I", 0))
