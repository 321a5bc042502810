"""The Lightning Trainer's settings that a user types on the command line (``trainer.devices=4``),
checked before a run folder exists and again where the stage builds its Trainer (``gmaiqa.stages``).

Lightning checks them itself, but only once ``lightning`` is imported and the run folder, its log and
its W&B run exist; a wrong value then ended in Hydra's "Error executing job" (exit 1). This module
imports nothing heavy, so ``train trainer.devices=abc`` is refused in the precheck's time.
"""

from __future__ import annotations

from collections.abc import Mapping

from gmaiqa.errors import ConfigError, did_you_mean

# lightning.pytorch.trainer.connectors.accelerator_connector: the names its registry knows
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")
# lightning.fabric.connector._PRECISION_INPUT (Lightning 2.x), the spellings it accepts
PRECISIONS = (
    "64-true",
    "32-true",
    "16-true",
    "bf16-true",
    "16-mixed",
    "bf16-mixed",
    "transformer-engine",
    "transformer-engine-float16",
    "64",
    "32",
    "16",
    "bf16",
)


def _is_whole(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def devices_problem(devices) -> str | None:
    """Why Lightning would refuse ``devices``, or None: a count (-1: all), ``auto``, a list of device
    indices, or the same as text (``"0,1"``, ``"2"``, ``"-1"``)."""
    if _is_whole(devices, -1) and devices != 0:
        return None
    if isinstance(devices, str):
        text = devices.strip()
        if text == "auto":
            return None
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if parts and all(p.lstrip("-").isdigit() for p in parts):
            numbers = [int(p) for p in parts]
            if (len(numbers) == 1 and numbers[0] >= -1 and numbers[0] != 0) or all(n >= 0 for n in numbers):
                return None
    if isinstance(devices, list | tuple) and devices and all(_is_whole(d, 0) for d in devices):
        return None
    return f"{devices!r} is not a number of devices"


def check_trainer(trainer: Mapping, key: str = "trainer") -> None:
    """Raise ConfigError naming ``<key>.<setting>`` for a value Lightning's Trainer would refuse."""
    devices = trainer.get("devices", "auto")
    if not isinstance(devices, str) and hasattr(devices, "__iter__"):
        devices = list(devices)  # a ListConfig
    problem = devices_problem(devices)
    if problem:
        raise ConfigError(
            f"{key}.devices",
            problem,
            "give a count (1, 4; -1 for all), auto, or the devices' indices ([0,2] or '0,2')",
        )
    nodes = trainer.get("num_nodes", 1)
    if not _is_whole(nodes, 1):
        raise ConfigError(f"{key}.num_nodes", f"{nodes!r}", "give a number of machines, at least 1")
    accelerator = trainer.get("accelerator", "auto")
    if not isinstance(accelerator, str) or accelerator.lower() not in ACCELERATORS:
        raise ConfigError(
            f"{key}.accelerator",
            f"{accelerator!r} is not an accelerator{did_you_mean(str(accelerator), ACCELERATORS)}",
            f"choose one of {list(ACCELERATORS)}",
        )
    precision = trainer.get("precision", "32-true")
    if str(precision) not in PRECISIONS:
        raise ConfigError(
            f"{key}.precision",
            f"{precision!r} is not a precision Lightning knows{did_you_mean(str(precision), PRECISIONS)}",
            "e.g. 32-true (the paper), 16-mixed or bf16-mixed (AMP on a GPU)",
        )
