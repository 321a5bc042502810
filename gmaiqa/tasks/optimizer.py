"""What an optimiser's settings must be, checked where they are written (``task.optimizer``,
``task.lr_decay``, a stage's ``task:`` overrides) before a run folder exists, and again by the task
that builds the optimiser: ``lr=abc`` was a traceback once the run folder and a W&B run existed, and
``lr=-1`` trained until torch refused it."""

from __future__ import annotations

import math
from collections.abc import Mapping

from gmaiqa.errors import ConfigError

# setting -> (smallest allowed, whether the smallest itself is allowed)
POSITIVE = {"lr": (0.0, False)}
NOT_NEGATIVE = ("weight_decay", "momentum", "eps", "lr_decay", "alpha")


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def check_optimizer_settings(settings: Mapping, key: str) -> None:
    """``settings``: the keyword arguments of an optimiser (and a task's ``lr_decay``); ``key``: where
    they are written, for the message (``task.optimizer``)."""
    for name, value in settings.items():
        if name.startswith("_") or value is None:
            continue
        where = f"{key}.{name}"
        if name == "betas":
            if not (
                isinstance(value, (list, tuple))
                and len(value) == 2
                and all(_number(b) is not None and 0.0 <= b < 1.0 for b in value)
            ):
                raise ConfigError(
                    where, f"{value!r} is not two numbers in [0, 1)", f"e.g. {where}=[0.9,0.999]"
                )
            continue
        if name not in POSITIVE and name not in NOT_NEGATIVE:
            continue
        number = _number(value)
        if number is None or not math.isfinite(number):
            raise ConfigError(where, f"{value!r} is not a finite number", f"give a number, e.g. {where}=1e-5")
        if name in POSITIVE and number <= POSITIVE[name][0]:
            raise ConfigError(
                where, f"{value!r} must be above 0", f"give a positive number, e.g. {where}=1e-5"
            )
        if name in NOT_NEGATIVE and number < 0:
            raise ConfigError(where, f"{value!r} must not be negative", f"give 0 or more, e.g. {where}=0")


def check_task_settings(task: Mapping, key: str = "task") -> None:
    """A task config's optimiser (a partial ``torch.optim`` class) and its own rates."""
    optimizer = task.get("optimizer")
    if isinstance(optimizer, Mapping):
        check_optimizer_settings(optimizer, f"{key}.optimizer")
    own = {k: task[k] for k in ("lr_decay",) if k in task}
    check_optimizer_settings(own, key)


def check_optimizer_factory(factory, key: str = "task.optimizer") -> None:
    """The task's side: a ``functools.partial`` optimiser (what Hydra builds from ``_partial_: true``)."""
    keywords = getattr(factory, "keywords", None)
    if isinstance(keywords, Mapping):
        check_optimizer_settings(keywords, key)
