"""gmaiqa's shipped default model (issue 18, replaced by measurement in issue 32): GMANet on
MobileNetV3-Large, trained on optics-randomised synthetic stacks with stack-relative normalisation and a
moving average of the weights (``experiment=default_model_mobile_ema``), then fine-tuned toward the
within-stack ranking of the VGG16-BN model it replaced (``experiment=default_model_mobile_distill``; the
file's metadata records the command, commit and ``data.normalize=stack``, which scoring applies).
Stored as ``gmaiqa export format=weights`` writes it (Output1's trunk and head; float32, since fp16
moved a score by more than the export's tolerance) inside the package, so ``gmaiqa predict input=DIR``
works without a checkpoint. ``ckpt=default`` names it wherever a checkpoint is accepted. How it was
trained and how it compares with the classical measures: experiments/default-model/README.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from gmaiqa.errors import ConfigError

NAME = "default"
WEIGHTS_FILE = "gmanet_default.pt"


def default_model_path(key: str = "ckpt") -> Path:
    """The shipped weights file, wherever the package is installed."""
    path = Path(str(resources.files(__name__) / WEIGHTS_FILE))
    if not path.is_file():
        raise ConfigError(
            key,
            f"gmaiqa's default model is missing from this installation ({path})",
            "reinstall gmaiqa, or pass ckpt=<a .ckpt written by `gmaiqa train`>",
        )
    return path


def describe(meta: dict, path: Path) -> str:
    """One line naming the model a command scores with: what `predict` prints before it starts."""
    made = meta.get("provenance") or {}
    commit = (made.get("git_commit") or "an unrecorded commit")[:10]
    command = f"`{made['command']}`" if made.get("command") else "training command not recorded"
    size = path.stat().st_size / 2**20
    pixels = meta.get("pixel_um") or {}
    trained = f", trained at {pixels['min']:.2g}-{pixels['max']:.2g} µm/px" if "min" in pixels else ""
    backbone = (meta.get("model") or {}).get("backbone")
    trunk = f"{backbone['name']}, " if isinstance(backbone, dict) and backbone.get("name") else ""
    return (
        f"gmaiqa default model ({trunk}{meta.get('stage', '?')}, {meta.get('weights_dtype', '?')} weights, "
        f"{size:.1f} MiB{trained}; {command} at {commit}): {path}"
    )
