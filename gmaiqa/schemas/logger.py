"""``logger``: where a command's metrics go (CSV files, W&B). Values and comments:
``conf/logger/*.yaml`` (train) and the ``logger:`` block of benchmark, summarize and autofocus."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class WandbMode(StrEnum):
    """W&B's own modes: offline writes files under the run folder (``wandb sync`` uploads them later);
    online streams; disabled logs nothing."""

    offline = "offline"
    online = "online"
    disabled = "disabled"


class ModelArtifact(StrEnum):
    """How a training stage logs its selected checkpoint to W&B (``gmaiqa.stages.log_model_artifact``):
    a copy, a file:// reference, or not at all."""

    upload = "upload"
    reference = "reference"
    none = "none"


@dataclass
class WandbRun:
    """The W&B run of a command that writes one table (benchmark, summarize, autofocus)."""

    mode: WandbMode = WandbMode.offline
    project: str = "gmaiqa"
    entity: str | None = None


@dataclass
class TrainWandb(WandbRun):
    """A training job's W&B runs, one per stage, grouped by job."""

    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    model_artifact: ModelArtifact = ModelArtifact.upload


@dataclass
class TrainLogger:
    csv: bool = True
    wandb: TrainWandb = field(default_factory=TrainWandb)


@dataclass
class CommandLogger:
    wandb: WandbRun = field(default_factory=WandbRun)
