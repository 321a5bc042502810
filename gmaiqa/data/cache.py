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
