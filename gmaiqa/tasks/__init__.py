"""LightningModules: losses, optimiser, metrics around an injected network."""

from gmaiqa.tasks.focus_quality import FocusQualityTask, time_decay
from gmaiqa.tasks.quality_metric import SAQMTask

__all__ = ["FocusQualityTask", "SAQMTask", "time_decay"]
