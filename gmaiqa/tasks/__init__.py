"""LightningModules: losses, optimiser, metrics around an injected network."""

from gmaiqa.tasks.defocus import DefocusTask
from gmaiqa.tasks.focus_quality import FocusQualityTask, time_decay
from gmaiqa.tasks.quality_metric import SAQMTask

__all__ = ["DefocusTask", "FocusQualityTask", "SAQMTask", "time_decay"]
