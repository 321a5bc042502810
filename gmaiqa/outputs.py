"""Files a command writes for users appear under their final names only once complete: each is written
under ``NAME.partial`` and renamed (``os.replace``, atomic on POSIX), and a write that fails or is
interrupted (Ctrl-C) removes its partial file. So a file that looks complete is complete, and an earlier
result under the same name stays until the new one replaces it whole."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def partial_name(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


@contextmanager
def written(path: str | Path) -> Iterator[Path]:
    """``with written(out / "table.csv") as part: write(part)``: ``part`` becomes ``table.csv`` when the
    block ends normally, and is removed when it raises (KeyboardInterrupt included)."""
    path = Path(path)
    part = partial_name(path)
    try:
        yield part
    except BaseException:
        if part.is_dir():
            shutil.rmtree(part, ignore_errors=True)
        else:
            part.unlink(missing_ok=True)
        raise
    if not part.exists():  # nothing was written: whatever stood under the name stays
        return
    if path.is_dir() and part.is_dir():
        shutil.rmtree(path)
    os.replace(part, path)
