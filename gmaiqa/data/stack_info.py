"""What a stack file holds (``StackInfo``) and how a format is read (``StackReader``): the two shapes
every stack reader shares, in a module of their own so that readers (``gmaiqa.data.tiff_stack``,
``gmaiqa.data.vendor``) and the registry that chooses them (``gmaiqa.data.stackfile``) import them
without importing each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackInfo:
    """What ``gmaiqa check`` reports per stack file."""

    path: Path
    axes: str
    planes: int
    height: int
    width: int
    dtype: str
    z_step_um: float | None
    channels: tuple[str, ...]
    times: int
    pixel_um: float | None = None
    scene: int | None = None  # a vendor file's scene or a TIFF's series, where it has several
    scene_name: str | None = None
    notes: tuple[str, ...] = ()  # metadata read but not used, and why (check shows them as warnings)

    def describe(self) -> str:
        step = f"z step {self.z_step_um:g} µm" if self.z_step_um is not None else "no z step in its metadata"
        if self.scene is not None:
            step = f"scene name {self.scene_name}, {step}"
        step += f", {self.pixel_um:g} µm/pixel" if self.pixel_um is not None else ""
        extra = (
            f", {len(self.channels)} channels ({', '.join(self.channels)})" if len(self.channels) > 1 else ""
        )
        extra += f", {self.times} time points" if self.times > 1 else ""
        dtype = self.dtype
        if dtype.startswith("float"):
            dtype += " (scaled by its range where it leaves [0, 1])"
        elif dtype not in ("uint8", "uint16"):
            dtype += " (scaled by its range)"
        return f"{self.planes} planes of {self.height}x{self.width} {dtype}, {step}{extra}"


@dataclass(frozen=True)
class StackReader:
    """One stack file format. ``open(path)`` parses it once (the handle is kept while planes are read);
    ``infos(path, opened)`` lists its z-stacks (none for a single image); ``plane(opened, path, z,
    channel, t, scene)`` reads one plane as stored, (H, W) or (H, W, S)."""

    name: str
    open: Callable
    infos: Callable
    plane: Callable
