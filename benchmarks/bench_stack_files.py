"""Reading microscopy stack files plane by plane (gmaiqa.data.stackfile): milliseconds per plane for a
multi-page TIFF, an OME-TIFF, an ImageJ hyperstack with a page per plane, and an ImageJ stack stored
behind one page (how ImageJ writes stacks over 4 GB), where the reader takes the plane's bytes alone;
beside it, decoding the whole series once per plane (the reader before it) on the same file.

    uv run python benchmarks/bench_stack_files.py [--planes 40] [--size 1024] [--out FILE]

Figures are ratios within one run; absolute times depend on the machine and its page cache.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from gmaiqa.data.dataset import load_dataset  # noqa: E402
from gmaiqa.data.io import read_raw  # noqa: E402


def one_page(path: Path) -> None:
    """End the IFD chain after page 0: one page, every plane behind it."""
    with tifffile.TiffFile(path) as tif:
        page, order = tif.pages[0], tif.byteorder
        link = page.offset + 2 + 12 * len(page.tags)
    with open(path, "r+b") as handle:
        handle.seek(link)
        handle.write(struct.pack(f"{order}I", 0))


def write_layouts(folder: Path, stack: np.ndarray) -> dict[str, Path]:
    layouts = {
        "multi-page TIFF": ({}, None),
        "OME-TIFF": ({"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": 0.5}}, None),
        "ImageJ, page per plane": ({"imagej": True, "metadata": {"axes": "ZYX", "spacing": 0.5}}, None),
        "ImageJ, one page (> 4 GB)": (
            {"imagej": True, "metadata": {"axes": "ZYX", "spacing": 0.5}},
            one_page,
        ),
    }
    paths = {}
    for index, (name, (options, after)) in enumerate(layouts.items()):
        own = folder / f"layout{index}"
        own.mkdir()
        path = own / ("stack.ome.tif" if options.get("ome") else "stack.tif")
        tifffile.imwrite(path, stack, **options)
        if after:
            after(path)
        paths[name] = path
    return paths


def read_every_plane(folder: Path) -> tuple[float, int]:
    (group,) = load_dataset(folder)
    start = time.perf_counter()
    for plane in group.paths:
        read_raw(plane)
    return time.perf_counter() - start, len(group)


def whole_series_per_plane(path: Path, planes: int) -> float:
    start = time.perf_counter()
    for z in range(planes):
        with tifffile.TiffFile(path) as tif:
            tif.series[0].asarray()[z]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=40)
    parser.add_argument("--size", type=int, default=1024, help="height and width of a plane")
    parser.add_argument("--out", default="benchmarks/results/bench_stack_files.json")
    args = parser.parse_args()
    stack = np.random.default_rng(0).integers(0, 65535, (args.planes, args.size, args.size), dtype=np.uint16)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_layouts(Path(tmp), stack)
        for name, path in paths.items():
            read_every_plane(path.parent)  # page cache warm, as for the timed pass
            seconds, planes = read_every_plane(path.parent)
            rows.append(
                {"layout": name, "reader": "gmaiqa", "planes": planes, "ms_per_plane": 1e3 * seconds / planes}
            )
        name = "ImageJ, one page (> 4 GB)"
        seconds = whole_series_per_plane(paths[name], args.planes)
        rows.append(
            {
                "layout": name,
                "reader": "whole series per plane",
                "planes": args.planes,
                "ms_per_plane": 1e3 * seconds / args.planes,
            }
        )
    one_page_rows = {r["reader"]: r["ms_per_plane"] for r in rows if r["layout"] == name}
    fast, slow = one_page_rows["gmaiqa"], one_page_rows["whole series per plane"]
    for row in rows:
        row["plane_mib"] = round(args.size * args.size * 2 / 2**20, 2)
    report("stack_files", rows, args.out)
    print(f"one-page ImageJ stack: reading a plane's bytes is {slow / fast:.0f}x faster than decoding all")


if __name__ == "__main__":
    main()
