"""Each command's own keys (``conf/<command>.yaml``): types and closed choices here, values and comments
in the YAML, which names its schema first in its defaults (``- schema_predict``, Hydra's structured
config example 5.1). A wrong type or choice then fails at composition and the precheck names the key
(``gmaiqa.config_compose.schema_error``).

Open choices stay text and are checked by their owners' registries with did-you-mean: focus measures
and rank fusions (``method``, ``methods``), search strategies (``gmaiqa.autofocus.search``), synthetic
presets and PSF shapes (``gmaiqa.data.synth_config``). Keys that take more than one shape (``resize``: a
size or ``native``; ``channel``: a name or an index; ``curves``: a count or group names; ``methods``: a list
or one name such as ``all_classical``) stay ``Any``
and are checked by the command, which says what each shape means. Ranges are the command's too
(``commands/<name>.py``): a type error says what the key takes, a range error why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

from gmaiqa.schemas.data import UniformSizes, Validation
from gmaiqa.schemas.logger import CommandLogger


class Accelerator(StrEnum):
    """Where a scoring command runs: auto is CUDA where torch sees a device, else the CPU."""

    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"
    cuda = "cuda"


class Split(StrEnum):
    """The groups a command scores: all, or one split as training makes it (``gmaiqa.data.splits``)."""

    all = "all"
    train = "train"
    val = "val"
    test = "test"


class ExportFormat(StrEnum):
    """What ``gmaiqa export`` writes (``gmaiqa.export``)."""

    onnx = "onnx"
    torchscript = "torchscript"
    weights = "weights"


class AutofocusStage(StrEnum):
    """``simulated``: the synthetic renderer at any z; ``recorded``: recorded stacks played back."""

    simulated = "simulated"
    recorded = "recorded"


class ReportMode(StrEnum):
    """``offline``: an HTML page beside the runs; ``online``: a W&B Report."""

    offline = "offline"
    online = "online"


@dataclass
class DeprecatedWandb:
    """benchmark's and summarize's ``wandb:`` of the last release (read once more, with a message)."""

    mode: str | None = None
    project: str | None = None
    entity: str | None = None


@dataclass
class Reading:
    """How a command reads a dataset or stack files (the names ``data.*`` has in training)."""

    validate: Validation = Validation.full
    allow_outside: bool = False
    uniform_sizes: UniformSizes = UniformSizes.require
    channel: Any = None
    t: int | None = None


@dataclass
class ReadingOptions(Reading):
    """eval's and benchmark's ``data:``."""

    root: str = MISSING
    seed: int | None = None  # deprecated: split_seed


@dataclass
class EvalData(ReadingOptions):
    split_seed: int | None = None


@dataclass
class BenchmarkData(ReadingOptions):
    split_seed: int = 0
    split_ratios: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])


@dataclass
class _Scoring:
    """What eval, predict and benchmark share."""

    inference: Any = None  # conf/inference: the checkpoint's settings or the paper's
    out: str = MISSING
    overwrite: bool = False
    accelerator: Accelerator = Accelerator.auto
    num_workers: int = 2
    resize: Any = None
    block: Any = None


@dataclass
class EvalCommand(_Scoring):
    ckpt: str = MISSING
    split: Split = Split.all
    pixel_um: float | None = None
    data: EvalData = field(default_factory=EvalData)


@dataclass
class PredictCommand(_Scoring, Reading):
    ckpt: str | None = None
    method: str | None = None
    input: str = MISSING
    clearest_images: bool = True
    pixel_um: float | None = None


@dataclass
class BenchmarkCommand(_Scoring):
    methods: Any = field(default_factory=lambda: ["TENG", "LMG"])  # a list, or one name (all_classical)
    split: Split = Split.all
    data: BenchmarkData = field(default_factory=BenchmarkData)
    curves: Any = 4
    curve_methods: list[str] | None = None
    logger: CommandLogger = field(default_factory=CommandLogger)
    wandb: DeprecatedWandb = field(default_factory=DeprecatedWandb)


@dataclass
class ExportCommand:
    ckpt: str = MISSING
    out: str = MISSING
    format: ExportFormat = ExportFormat.onnx
    overwrite: bool = False
    half_tolerance: float = 0.01


@dataclass
class CheckCommand(Reading):
    root: str = MISSING
    workers: int | None = None
    json: bool = False


@dataclass
class SynthCommand:
    """``gmaiqa synth``'s keys are ``gmaiqa.data.synth_config.SynthConfig``'s (which checks their ranges
    and its registries' names) plus where and how it writes."""

    out: str = MISSING
    preset: str = "feces"
    groups: int = 8
    seed: int = 0
    height: int = 1200
    width: int = 1600
    images: list[int] = field(default_factory=lambda: [10, 30])
    object_scale: float | None = None
    bit_depth: int | None = None
    exposure_drift: float | None = None
    step_um: float = 1.0
    gamma: float = 1.0
    psf: str = "disk"
    aberration: float = 0.4
    astigmatism_um: float = 2.0
    numerical_aperture: float | None = None
    immersion_index: float = 1.0
    wavelength_um: float = 0.55
    split: bool = False
    split_ratios: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    workers: int = 1
    overwrite: bool = False


@dataclass
class AutofocusCommand(Reading):
    stage: AutofocusStage = AutofocusStage.simulated
    strategy: str = "brent"
    method: str | None = None
    ckpt: str | None = None
    crop: float = 1.0
    range_um: float | None = 40.0
    tolerance_um: float | None = None
    budget: int = 60
    out: str = MISSING
    overwrite: bool = False
    preset: str = "feces"
    trials: int = 20
    seed: int = 0
    synthetic: Any = None  # any `gmaiqa synth` option, checked as synth checks it
    backlash_um: float = 0.0
    move_seconds: float = 0.0
    exposure_seconds: float = 0.0
    input: str | None = None
    step_um: float = 1.0
    dof_um: float | None = None
    validate: Validation = Validation.headers  # a recorded stack is read plane by plane as the search asks
    accelerator: Accelerator = Accelerator.auto
    logger: CommandLogger = field(default_factory=CommandLogger)


@dataclass
class SummarizeCommand:
    dir: str = MISSING
    logger: CommandLogger = field(default_factory=CommandLogger)
    wandb: DeprecatedWandb = field(default_factory=DeprecatedWandb)


@dataclass
class ReportCommand:
    dirs: Any = MISSING  # one folder or a list of them
    title: str | None = None
    mode: ReportMode = ReportMode.offline
    out: str | None = None
    overwrite: bool = True
    project: str | None = None
    entity: str | None = None


COMMAND_SCHEMAS = {
    "eval": EvalCommand,
    "predict": PredictCommand,
    "benchmark": BenchmarkCommand,
    "export": ExportCommand,
    "check": CheckCommand,
    "synth": SynthCommand,
    "autofocus": AutofocusCommand,
    "summarize": SummarizeCommand,
    "report": ReportCommand,
}
"""What ``conf/<command>.yaml`` names first in its defaults as ``schema_<command>``."""
