"""Datasets generated on first use into the cache (synthetic stacks, MOS pairs, defocus-level patches)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def cached_dir(cache_dir: str | Path, kind: str, name: str, spec: dict) -> Path:
    """``cache_dir/kind/name-KEY``, KEY a hash of ``spec``: one folder per distinct generation recipe."""
    key = hashlib.sha1(json.dumps(spec, sort_keys=True, default=list).encode()).hexdigest()[:10]
    return Path(cache_dir) / kind / f"{name}-{key}"


def build_once(path: Path, build: Callable[[Path], object]) -> Path:
    """Make ``path`` by ``build(folder)`` unless it already holds a manifest. Parallel jobs of a multirun
    may all find it missing: each builds its own copy and the first rename wins, so no job ever reads a
    half-written set."""
    path = Path(path)
    if (path / "manifest.csv").is_file():
        return path
    partial = path.parent / f".{path.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    build(partial)
    try:
        os.rename(partial, path)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return path


_RESIZABLE = ("uint8", "uint16", "int16", "float32", "float64")


class ResizedImageCache:
    """``data.cache=resized``: every image stored once as it is trained on - centre-cropped to its group's
    size (``data.uniform_sizes=crop``) and resized to ``data.resize`` - in its source dtype (uint8,
    uint16, a float or int16 stack's; float32 for wider integers), so an epoch loads small arrays
    instead of decoding large PNGs or TIFFs.

    An entry is keyed by a hash of the file's bytes (a stack plane's: ``identity``), the crop and the
    resize: a changed file or another resize finds no entry and makes its own (stale entries are never
    read; delete ``cache_dir/resized`` to reclaim them). Entries are written to a temporary name and
    renamed, so parallel workers or jobs never read a half-written one. Resizing in the source dtype
    rounds each pixel to its nearest level (at most half a level: 0.5/255 for 8-bit data) where the
    uncached path resizes in float.
    """

    def __init__(self, cache_dir: str | Path, resize: tuple[int, int] | None):
        self.folder = Path(cache_dir) / "resized"
        self.resize = tuple(resize) if resize else None

    def key(self, data: bytes, crop_to: tuple[int, int] | None) -> str:
        digest = hashlib.blake2b(data, digest_size=16)
        digest.update(repr((crop_to, self.resize)).encode())
        return digest.hexdigest()

    @staticmethod
    def identity(path: Path) -> bytes:
        """What an entry's key hashes: the file's bytes; for a plane of a stack file (``stack.tif#z3``),
        the stack's path, size and modification time with the plane, since hashing the whole stack for
        each plane would read it once per plane."""
        # here, not at import: loads tifffile, numpy only when this runs
        from gmaiqa.data.stackfile import file_version, parse_reference

        plane = parse_reference(path)
        if plane is None:
            return path.read_bytes()
        return repr((file_version(plane[0]), path.name.rpartition("#")[2])).encode()

    def read(self, path: Path, crop_to: tuple[int, int] | None):
        """The image at ``path`` as float RGB (H, W, 3) at the training size, from the cache when there."""
        # here, not at import: loads cv2, numpy only when this runs
        import cv2
        import numpy as np

        # here, not at import: loads cv2, tifffile only when this runs; tests replace read_raw
        from gmaiqa.data.io import read_raw, to_float_rgb

        path = Path(path)
        entry = self.folder / (key := self.key(self.identity(path), crop_to))[:2] / f"{key}.npy"
        if entry.is_file():
            return to_float_rgb(np.load(entry), path)
        raw = read_raw(path)
        if crop_to is not None:
            h, w = crop_to
            top, left = (raw.shape[0] - h) // 2, (raw.shape[1] - w) // 2
            raw = raw[top : top + h, left : left + w]
        if self.resize is not None and tuple(raw.shape[:2]) != self.resize:
            if raw.dtype not in _RESIZABLE:  # 32/64-bit integers, float16: OpenCV cannot resize them
                # the stored values, as float; to_float_rgb scales them by the stack's range
                raw = raw.astype(np.float32)
            raw = cv2.resize(raw, (self.resize[1], self.resize[0]), interpolation=cv2.INTER_LINEAR)
        entry.parent.mkdir(parents=True, exist_ok=True)
        partial = entry.with_name(f".{entry.stem}.{os.getpid()}.partial.npy")
        np.save(partial, np.ascontiguousarray(raw))
        os.replace(partial, entry)
        return to_float_rgb(raw, path)
