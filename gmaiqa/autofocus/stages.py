"""Stages to search on without a microscope.

* :class:`SimulatedStage`: the synthetic renderer (``gmaiqa.data.synthetic.Field``) imaging one field of
  a preset at whatever z is asked for, with the preset's illumination, noise, exposure drift and
  bleaching; the specimen's focus lies at a random offset within the search range, so every trial's
  truth is known. Optional backlash (a move that reverses direction falls short by ``backlash_um``) and
  time costs per move, per µm travelled and per exposure.
* :class:`RecordedStage`: plays back an existing z-stack (a dataset group or a stack file), snapping to
  the nearest plane, so a search can be measured on real stacks.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from gmaiqa.data.presets import PRESETS
from gmaiqa.data.stack import FocusStack
from gmaiqa.data.synth_config import SynthConfig
from gmaiqa.data.synthetic import Field


class SimulatedStage:
    """One trial: field ``index`` of ``cfg`` (preset, camera, optics, seed) with its focus at
    ``focus_um`` in stage coordinates, searched within ``z_limits``.

    The camera noise and illumination are drawn once per trial (the same z gives the same frame, as the
    tests require); what changes from frame to frame is the exposure: a linear drift over the trial of
    up to the preset's ``exposure_drift`` at ``drift_frames`` acquisitions, and the preset's bleaching
    per acquisition (fluorescence), both applied to the frame's signal."""

    def __init__(
        self,
        cfg: SynthConfig,
        index: int,
        focus_um: float,
        z_limits: tuple[float, float],
        start_um: float = 0.0,
        backlash_um: float = 0.0,
        move_seconds: float = 0.0,
        seconds_per_um: float = 0.0,
        exposure_seconds: float = 0.0,
        drift_frames: int = 30,
    ):
        self.cfg, self.z_limits = cfg, (float(z_limits[0]), float(z_limits[1]))
        rng = np.random.default_rng([cfg.seed, index, 7])  # a stream of its own: not a stack's group
        self.drift = rng.uniform(-1, 1) * cfg.camera("exposure_drift")
        reach = max(abs(z_limits[0] - focus_um), abs(z_limits[1] - focus_um))
        self.field = Field.prepare(cfg, rng, reach)
        self._frame_rng = copy.deepcopy(rng)  # the state every frame starts from
        # the stage z at which the focal plane meets the formed elements
        self.focus_um = float(focus_um)
        self._offset = self.focus_um - self.field.element_z
        self.backlash_um, self.move_seconds = backlash_um, move_seconds
        self.seconds_per_um, self.exposure_seconds = seconds_per_um, exposure_seconds
        self.drift_frames = drift_frames
        self.bleach = PRESETS[cfg.preset].bleach_per_image
        self.commanded = self.actual = float(start_um)
        self._direction = 0.0
        self.frames = 0
        self.seconds = 0.0

    @property
    def z(self) -> float:
        return self.actual

    @property
    def depth_of_field_um(self) -> float:
        return self.cfg.clear_depth_um

    def move_to(self, z: float) -> None:
        step = float(z) - self.commanded
        if step == 0:
            return
        direction = math.copysign(1.0, step)
        lag = self.backlash_um if self._direction and direction != self._direction else 0.0
        self._direction = direction
        self.seconds += self.move_seconds + self.seconds_per_um * abs(step)
        self.commanded = float(z)
        self.actual = self.commanded - direction * lag

    def acquire(self) -> np.ndarray:
        plane = self.actual - self._offset  # the focal plane relative to the specimen's objects
        (frame,) = self.field.images_at([plane], copy.deepcopy(self._frame_rng))
        exposure = (1 + self.drift * min(self.frames / max(self.drift_frames, 1), 1.0)) * math.exp(
            -self.bleach * self.frames
        )
        self.frames += 1
        self.seconds += self.exposure_seconds
        if exposure == 1.0:
            return frame
        top = np.iinfo(frame.dtype).max
        return np.clip(np.rint(frame.astype(np.float32) * exposure), 0, top).astype(frame.dtype)


class RecordedStage:
    """A stack's planes at their z (µm; ``z_um`` where the stack records it, else the capture index
    times ``step_um``): moving snaps to the nearest plane, acquiring reads it."""

    def __init__(self, stack: FocusStack, step_um: float = 1.0, start_um: float | None = None):
        self.stack = stack
        if stack.z_um is not None:
            self.planes = np.asarray(stack.z_um, dtype=np.float64)
        else:
            self.planes = np.arange(len(stack), dtype=np.float64) * step_um
        order = np.argsort(self.planes)
        if not np.all(np.diff(self.planes[order]) > 0):
            raise ValueError(f"group {stack.group}: two planes share one z; give each plane its own z_um")
        self.z_limits = (float(self.planes.min()), float(self.planes.max()))
        self.index = int(
            np.argmin(np.abs(self.planes - (self.planes.mean() if start_um is None else start_um)))
        )
        self.reads = 0

    @property
    def z(self) -> float:
        return float(self.planes[self.index])

    @property
    def step_um(self) -> float:
        """The median distance between neighbouring planes."""
        return float(np.median(np.diff(np.sort(self.planes)))) if len(self.planes) > 1 else 0.0

    @property
    def focus_um(self) -> float | None:
        return float(self.planes[self.stack.clearest]) if self.stack.labelled else None

    def move_to(self, z: float) -> None:
        self.index = int(np.argmin(np.abs(self.planes - float(z))))

    def acquire(self) -> np.ndarray:
        self.reads += 1
        return self.stack.read(self.index)
