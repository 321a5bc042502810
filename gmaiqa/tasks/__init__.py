"""LightningModules: losses, optimiser, metrics around an injected network."""

from gmaiqa.tasks.focus_quality import FocusQualityTask, time_decay

__all__ = ["FocusQualityTask", "time_decay"]
