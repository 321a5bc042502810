"""The Lightning Trainer's settings that a user types on the command line (``trainer.devices=4``),
checked before a run folder exists and again where the stage builds its Trainer (``gmaiqa.stages``).

Lightning checks them itself, but only once ``lightning`` is imported and the run folder, its log and
its W&B run exist; a wrong value then ended in Hydra's "Error executing job" (exit 1). This module
imports nothing heavy at import, so ``train trainer.devices=abc`` is refused in the precheck's time.

``trainer.precision=auto`` is ours (Lightning has no such value): bf16 autocast where the hardware runs
bf16 natively, fp32 elsewhere, resolved by :func:`resolve_precision` where the stage builds its Trainer.
bf16 autocast halves a training step on a CPU with AVX512-BF16 or AMX and on a GPU with bf16; on a CPU
without them PyTorch emulates bf16 and a step takes many times longer
(``benchmarks/bench_train_step.py``), so a recipe that asked for bf16 for speed was a trap there.
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
AUTO_PRECISION = "auto"
BF16_MIXED = ("bf16-mixed", "bf16")


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
    known = (AUTO_PRECISION, *PRECISIONS)
    if str(precision) not in known:
        raise ConfigError(
            f"{key}.precision",
            f"{precision!r} is not a precision gmaiqa knows{did_you_mean(str(precision), known)}",
            "e.g. 32-true (the paper), bf16-mixed (AMP), or auto (bf16-mixed where the hardware runs bf16 "
            "natively, else 32-true)",
        )


def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` (cpu, cuda) runs bf16 arithmetic in hardware rather than emulating it."""
    import torch  # here: the precheck imports this module and must not wait for torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        # oneDNN's own test of AVX512-BF16 / AMX; torch has no public spelling of it (2.14)
        probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(probe()) if probe is not None else False
    return False


def training_device_type(accelerator: str) -> str:
    """The device kind Lightning's ``accelerator`` setting trains on here: cpu, cuda, or another."""
    import torch

    accelerator = str(accelerator).lower()
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return accelerator


def resolve_precision(
    trainer: Mapping, key: str = "trainer", started_in: str | None = None
) -> tuple[str, str | None]:
    """The precision to give Lightning and a line for the log (None: nothing to say).

    ``auto``: bf16-mixed where the training device runs bf16 natively, else 32-true. A bf16-mixed the user
    chose is kept, with a warning where it is emulated.

    ``started_in``: the precision a resumed stage was trained in so far (its checkpoint records it), for
    a job requeued on another machine. Under ``auto`` the stage keeps it, never lowering its precision
    half-way (fp32 stays fp32 on a machine with bf16), except that a bf16 stage moved to a device without
    native bf16 continues in fp32 rather than emulate bf16, the trap ``auto`` exists to avoid; the line
    says which. A precision the user names is part of the job's overrides, so a relaunch keeps it."""
    precision = str(trainer.get("precision", "32-true"))
    if started_in is not None:
        return _resumed_precision(trainer, key, precision, str(started_in))
    if precision != AUTO_PRECISION and precision not in BF16_MIXED:
        return precision, None
    device = training_device_type(trainer.get("accelerator", "auto"))
    native = native_bf16(device)
    if precision == AUTO_PRECISION:
        chosen = "bf16-mixed" if native else "32-true"
        why = "runs bf16 natively" if native else "has no native bf16, which autocast would emulate"
        return chosen, f"{key}.precision=auto: {chosen} (the {device} {why})"
    if native:
        return precision, None
    return precision, (
        f"WARNING {key}.precision={precision}: the {device} has no native bf16, so autocast emulates it and "
        f"a training step takes many times longer than in fp32 (benchmarks/bench_train_step.py); "
        f"{key}.precision=auto or 32-true trains in fp32"
    )


def _resumed_precision(trainer: Mapping, key: str, precision: str, started_in: str) -> tuple[str, str | None]:
    fresh, fresh_note = resolve_precision(trainer, key)
    if precision != AUTO_PRECISION:
        return fresh, fresh_note  # a named precision is part of the job: a relaunch cannot change it
    if fresh == started_in:
        return started_in, f"{key}.precision=auto: {started_in}, as the stage started"
    device = training_device_type(trainer.get("accelerator", "auto"))
    if started_in in BF16_MIXED:
        return fresh, (
            f"WARNING {key}.precision=auto: {fresh}; the stage started in {started_in} and continues in "
            f"fp32, since the {device} has no native bf16 and would emulate it many times slower (fp32 "
            f"is the more precise; the run is not bit-identical to one never moved)"
        )
    return started_in, (
        f"{key}.precision=auto: {started_in}, as the stage started (the {device} runs bf16 natively, but "
        f"a stage does not lower its precision half-way)"
    )
