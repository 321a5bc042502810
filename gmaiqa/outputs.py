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

from gmaiqa.errors import ConfigError


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


# what each scoring command writes into out= (refused when there unless overwrite=true)
PREDICT_TABLES = ("predictions.csv", "clearest.csv")  # every image's score; each group's clearest
PREDICT_IMAGES = "clearest"  # the folder of each group's clearest image
OUTPUTS = {
    "eval": ("metrics.json", "per_group.csv"),
    "predict": (*PREDICT_TABLES, PREDICT_IMAGES),
    "benchmark": ("benchmark.csv",),
}


def check_out(out: str | None, overwrite: bool, files: tuple[str, ...]) -> Path:
    """The output folder, refusing to replace results already there unless ``overwrite``. Nothing is
    created here: a command makes the folder only once its inputs have been read."""
    if not out:
        raise ConfigError("out", "no output folder", "pass out=DIR")
    path = Path(out)
    existing = [p for p in files if (path / p).exists()]
    if existing and not overwrite:
        raise ConfigError(
            "out", f"{path} already holds {existing}", "choose another folder or pass overwrite=true"
        )
    if path.exists() and not path.is_dir():
        raise ConfigError("out", f"{path} is a file", "choose a folder")
    return path
