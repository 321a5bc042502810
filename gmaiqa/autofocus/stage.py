"""The stage a search drives, as a small protocol a real microscope driver implements in a few lines, and
the meter every search goes through: it moves, acquires and scores, counts acquisitions against a
budget, keeps the path (every z visited with its score) and the stage's time cost.

A driver needs four things::

    class MyStage:
        z_limits = (lower_um, upper_um)           # where the stage may go
        @property
        def z(self) -> float: ...                 # where it is now (µm)
        def move_to(self, z: float) -> None: ...  # go there (blocking)
        def acquire(self) -> np.ndarray: ...      # one camera frame: (H, W) or (H, W, C), any dtype

``seconds`` (optional) is the time the stage has spent, for stages that can tell (the simulated one
adds a cost per move and per acquisition; a real one may return wall time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Stage(Protocol):
    z_limits: tuple[float, float]

    @property
    def z(self) -> float: ...

    def move_to(self, z: float) -> None: ...

    def acquire(self) -> np.ndarray: ...


class BudgetSpent(Exception):
    """The search asked for more acquisitions than its budget allows."""


@dataclass
class Probe:
    z: float  # where the search asked to go
    at: float  # where the stage was when it acquired (backlash, a recorded stack's nearest plane)
    score: float  # clarity, higher = clearer
    order: int  # acquisition number, from 0


@dataclass
class Meter:
    """Moves ``stage`` to each z a search asks for, acquires and scores the frame, and records it.
    A z asked for twice is scored once; a z outside the limits is clipped to them."""

    stage: Stage
    score: Callable[[np.ndarray], float]
    budget: int
    path: list[Probe] = field(default_factory=list)
    _seen: dict[float, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self):
        # a search of its own: a stack-normalised scorer takes its reference from this search's first frame
        if hasattr(self.score, "for_search"):
            self.score = self.score.for_search()

    def __call__(self, z: float) -> float:
        lower, upper = self.stage.z_limits
        z = float(min(max(z, lower), upper))
        key = round(z, 6)
        if key in self._seen:
            return self._seen[key]
        if len(self.path) >= self.budget:
            raise BudgetSpent(f"budget of {self.budget} acquisitions spent")
        self.stage.move_to(z)
        at = float(self.stage.z)
        value = float(self.score(self.stage.acquire()))
        self._seen[key] = value
        self.path.append(Probe(z, at, value, len(self.path)))
        return value

    @property
    def acquisitions(self) -> int:
        return len(self.path)

    @property
    def left(self) -> int:
        return self.budget - len(self.path)

    @property
    def seconds(self) -> float:
        """The stage's own time where it keeps one (simulated costs), else the wall time so far."""
        own = getattr(self.stage, "seconds", None)
        return float(own) if own is not None else time.perf_counter() - self.started

    def best(self) -> Probe:
        return max(self.path, key=lambda p: p.score)
