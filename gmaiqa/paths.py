"""Where the configuration lives: ``conf/`` beside the package in a checkout (editable install), or
``gmaiqa/conf`` inside an installed wheel (pyproject force-includes it there)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def conf_dir() -> Path:
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / "synth.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"gmaiqa's conf/ folder was not found next to {PACKAGE_DIR}; reinstall the package"
    )
