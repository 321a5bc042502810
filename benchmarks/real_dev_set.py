"""A real dev set in gmaiqa's dataset contract, from the public ``evanmacbride/microscope-autofocus``
repository's ``sample_data/`` (MIT licence): reflected-light brightfield tiles of a wafer, each imaged
at about 11 focus offsets, 1920x1200 8-bit RGB. It measures the synthetic-to-real gap of gmaiqa's
scorers; it is never used to tune them, never committed, and no test depends on it.

    uv run python benchmarks/real_dev_set.py SAMPLE_DATA OUT

``SAMPLE_DATA``: the repository's ``sample_data/`` folder (its ``level1``, ``level1_jpeg``, ``level2``
and ``level2_jpeg`` sub-folders). ``OUT``: a new folder outside the checkout; it receives a copy of
every image and ``manifest.csv``:

* group = one tile (``level1/ix000_iy000``); a tile stored both as TIFF and as JPEG (``level2`` and
  ``level2_jpeg`` hold the same four tiles) is taken once, from the lossless TIFF;
* z = capture order by focus offset; z_um = the offset in µm the file name carries (``..._-5.34.tiff``,
  ``..._zoff-5.34um.tiff``);
* clearest = the image at offset 0, the instrument's autofocus position (the set's own label); score is
  left empty, so SROCC is not reported, only the clearest image (t0, t1, acc) and the z-error;
* pixel_um = the field width in µm from the tile's JSON side-car (``imageWidth``) over its 1920 pixels,
  where the side-car exists (``level1``).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from pathlib import Path

# "Copy of adjustedFocus_tile__ix000_iy000_-10.226.tiff" (level1),
# "Copy of adjustustedFocus_tile__ix000_iy000_zoff-0.1025um.tiff" (level2)
NAME = re.compile(
    r"_tile__(?P<tile>ix\d+_iy\d+)_(?:zoff)?(?P<offset>-?\d+(?:\.\d+)?)(?:um)?\.(?P<ext>tiff?|jpe?g)$"
)
LEVELS = ("level1", "level2")  # each level's images may also sit in <level>_jpeg
LOSSLESS_FIRST = {"tif": 0, "jpg": 1}


def tiles(sample_data: Path) -> dict[str, list[tuple[float, Path]]]:
    """group -> [(offset µm, image)], one image per offset, TIFF preferred over JPEG of the same tile."""
    found: dict[str, dict[str, list[tuple[float, Path]]]] = {}
    for level in LEVELS:
        for folder in (sample_data / level, sample_data / f"{level}_jpeg"):
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                match = NAME.search(path.name)
                if match is None:
                    continue
                group = f"{level}/{match['tile']}"
                kind = "tif" if match["ext"].lower().startswith("tif") else "jpg"
                found.setdefault(group, {}).setdefault(kind, []).append((float(match["offset"]), path))
    chosen = {}
    for group, by_format in found.items():
        best = min(by_format, key=lambda ext: LOSSLESS_FIRST[ext])
        chosen[group] = sorted(by_format[best])
    return chosen


def pixel_size(image: Path, width_px: int = 1920) -> float | None:
    sidecar = image.with_suffix(".json")
    if not sidecar.is_file():
        return None
    field = json.loads(sidecar.read_text()).get("imageWidth")
    return float(field) / width_px if field else None


def convert(sample_data: Path, out: Path) -> list[dict]:
    groups = tiles(sample_data)
    if not groups:
        raise SystemExit(f"no tiles found under {sample_data}: give the repository's sample_data/ folder")
    rows = []
    for group, images in sorted(groups.items()):
        zeros = [i for i, (offset, _) in enumerate(images) if offset == 0.0]
        if len(zeros) != 1:
            print(f"skipped {group}: {len(zeros)} images at offset 0 (need exactly one)", file=sys.stderr)
            continue
        pixel = pixel_size(images[zeros[0]][1])
        for z, (offset, source) in enumerate(images):
            target = out / group / f"z{z:02d}_{offset:+.4f}um{source.suffix.lower()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            rows.append(
                {
                    "group": group,
                    "image": target.relative_to(out).as_posix(),
                    "z": z,
                    "clearest": int(z == zeros[0]),
                    "z_um": f"{offset:.4f}",
                    "pixel_um": "" if pixel is None else f"{pixel:.5f}",
                }
            )
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sample_data", type=Path, help="the repository's sample_data/ folder")
    parser.add_argument("out", type=Path, help="a new folder, outside the checkout")
    args = parser.parse_args()
    checkout = Path(__file__).resolve().parent.parent
    out = args.out.resolve()
    if out == checkout or checkout in out.parents:
        raise SystemExit(f"{args.out} lies inside the checkout: the dev set's images are never committed")
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{args.out} exists and is not empty: name a new folder")
    out.mkdir(parents=True, exist_ok=True)
    rows = convert(args.sample_data, out)
    groups = sorted({r["group"] for r in rows})
    print(f"{len(rows)} images in {len(groups)} groups -> {out / 'manifest.csv'}")
    print("check it with: uv run gmaiqa check root=" + str(out))


if __name__ == "__main__":
    main()
