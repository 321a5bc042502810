"""LightningModules: losses, optimiser, metrics around an injected network.

The classes load on first use (PEP 562), so that ``gmaiqa.tasks.optimizer``'s checks, which the
command-line precheck runs, do not import Lightning."""

from __future__ import annotations

import importlib

_WHERE = {
    "DefocusTask": "gmaiqa.tasks.defocus",
    "FocusQualityTask": "gmaiqa.tasks.focus_quality",
    "time_decay": "gmaiqa.tasks.focus_quality",
    "SAQMTask": "gmaiqa.tasks.quality_metric",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'gmaiqa.tasks' has no attribute {name!r}")
