"""Reading microscopy stack files plane by plane (gmaiqa.data.stackfile): milliseconds per plane for a
multi-page TIFF, an OME-TIFF, an ImageJ hyperstack with a page per plane, and an ImageJ stack stored
behind one page (how ImageJ writes stacks over 4 GB), where the reader takes the plane's bytes alone;
beside it, decoding the whole series once per plane (the reader before it) on the same file. Then a
deep OME-TIFF (a light-sheet stack: many small planes) read with its file kept open, as gmaiqa reads,
and reopened for every plane (the reader before it: parsing the chain of pages again each time made a
stack's reading quadratic in its depth). With the vendor extra, the same stacks as Zeiss CZI files
read through bioio: the main one, and the deep one to show the time per plane does not grow with depth.

    uv run python benchmarks/bench_stack_files.py [--planes 40] [--size 1024] [--deep-planes 400]
        [--deep-size 256] [--out FILE]

Figures are ratios within one run; absolute times depend on the machine and its page cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))  # the test suite's file-layout helpers
from _common import report  # noqa: E402

from gmaiqa.data.dataset import load_dataset  # noqa: E402
from gmaiqa.data.io import read_raw  # noqa: E402
from gmaiqa.data.stackfile import close_open_stacks  # noqa: E402
from helpers.stack_files import keep_only_the_first_page, write_czi  # noqa: E402

CZI = "Zeiss CZI (bioio)"


def has_czi() -> bool:
    """bioio-czi to read, pylibCZIrw to write: both come with the vendor extra."""
    try:
        import bioio_czi  # noqa: F401
        import pylibCZIrw  # noqa: F401
    except ImportError:
        return False
    return True


def write_layouts(folder: Path, stack: np.ndarray) -> dict[str, Path]:
    layouts = {
        "multi-page TIFF": ({}, None),
        "OME-TIFF": ({"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": 0.5}}, None),
        "ImageJ, page per plane": ({"imagej": True, "metadata": {"axes": "ZYX", "spacing": 0.5}}, None),
        "ImageJ, one page (> 4 GB)": (
            {"imagej": True, "metadata": {"axes": "ZYX", "spacing": 0.5}},
            keep_only_the_first_page,
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
    if has_czi():
        (folder / "czi").mkdir()
        write_czi(folder / "czi" / "stack.czi", stack[:, None], z_um=0.5)
        paths[CZI] = folder / "czi" / "stack.czi"
    return paths


def read_every_plane(folder: Path, reopen: bool = False) -> tuple[float, int]:
    (group,) = load_dataset(folder)
    close_open_stacks()
    start = time.perf_counter()
    for plane in group.paths:
        if reopen:
            close_open_stacks()
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
    parser.add_argument("--deep-planes", type=int, default=400)
    parser.add_argument("--deep-size", type=int, default=256)
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
    for row in rows:
        row["plane_mib"] = round(args.size * args.size * 2 / 2**20, 2)
    deep = np.random.default_rng(1).integers(
        0, 65535, (args.deep_planes, args.deep_size, args.deep_size), dtype=np.uint16
    )
    deep_name = f"OME-TIFF, {args.deep_planes} planes"
    deep_layouts = [(deep_name, "gmaiqa", False), (deep_name, "reopened per plane", True)]
    deep_czi = f"{CZI}, {args.deep_planes} planes"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ome").mkdir()
        tifffile.imwrite(Path(tmp) / "ome" / "deep.ome.tif", deep, ome=True, metadata={"axes": "ZYX"})
        if has_czi():
            (Path(tmp) / "czi").mkdir()
            write_czi(Path(tmp) / "czi" / "deep.czi", deep[:, None], z_um=0.5)
            deep_layouts.append((deep_czi, "gmaiqa", False))
        for layout, reader, reopen in deep_layouts:
            folder = Path(tmp) / ("czi" if layout == deep_czi else "ome")
            read_every_plane(folder, reopen)  # page cache warm
            seconds, planes = read_every_plane(folder, reopen)
            rows.append(
                {
                    "layout": layout,
                    "reader": reader,
                    "planes": planes,
                    "ms_per_plane": 1e3 * seconds / planes,
                    "plane_mib": round(args.deep_size**2 * 2 / 2**20, 2),
                }
            )
    report("stack_files", rows, args.out)
    if not has_czi():
        print("no CZI rows: the vendor extra (bioio-czi, pylibCZIrw) is not installed")
    for layout, slower in ((name, "whole series per plane"), (deep_name, "reopened per plane")):
        times = {r["reader"]: r["ms_per_plane"] for r in rows if r["layout"] == layout}
        print(f"{layout}: gmaiqa's reader is {times[slower] / times['gmaiqa']:.0f}x faster than {slower}")


if __name__ == "__main__":
    main()
