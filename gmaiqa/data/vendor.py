"""Microscope vendors' stack files - Zeiss CZI, Nikon ND2, Leica LIF - read through bioio (the
``vendor`` extra: ``uv run --extra vendor gmaiqa ...``), never by hand.

Each scene of a file (a stage position, a LIF series) is one z-stack; scenes of fewer than two z planes
are not stacks, as a single-page TIFF is not. bioio gives every scene the dimensions T, C, Z, Y, X (and
S for RGB samples) and the physical sizes in µm, so a vendor file becomes the same ``StackInfo`` and
plane reads as a TIFF stack (``gmaiqa.data.stackfile``): planes in stored z order, ``channel=`` among
its channel names, ``t=`` among its time points, z step and pixel size from its metadata.

Without the extra a vendor file is an error that names it and the command to run, never a skipped
file: a folder of CZI stacks that silently became an empty dataset would be the worst outcome.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gmaiqa.data.stack_info import StackInfo, StackReader
from gmaiqa.errors import ImageReadError

VENDOR_FORMATS = {".czi": "Zeiss CZI", ".nd2": "Nikon ND2", ".lif": "Leica LIF"}


def is_vendor_file(path: Path) -> bool:
    return path.suffix.lower() in VENDOR_FORMATS


def open_vendor_file(path: Path):
    """The file as a ``bioio.BioImage`` (its reader chosen by bioio from the suffix)."""
    try:
        from bioio import BioImage
    except ImportError:
        raise ImageReadError(
            path,
            f"is a {VENDOR_FORMATS[path.suffix.lower()]} file, and reading it needs gmaiqa's vendor extra",
            "run the command as `uv run --extra vendor gmaiqa ...` (or convert the file to OME-TIFF)",
        ) from None
    return BioImage(path)


def _rgb(image) -> bool:
    return "S" in image.dims.order and image.dims.S > 1


def scene_infos(path: Path, image) -> list[StackInfo]:
    """A ``StackInfo`` per scene of ``image`` that holds a z-stack (``scene`` set when there are several)."""
    infos = []
    scenes = tuple(image.scenes)
    for index in range(len(scenes)):
        image.set_scene(index)
        dims = image.dims
        if dims.Z < 2:
            continue
        sizes = image.physical_pixel_sizes  # µm, None where the file does not say
        names = tuple(str(name) for name in (image.channel_names or ()))
        infos.append(
            StackInfo(
                path=path,
                axes=dims.order,
                planes=int(dims.Z),
                height=int(dims.Y),
                width=int(dims.X),
                dtype=str(np.dtype(image.dtype)),
                z_step_um=float(sizes.Z) if sizes.Z else None,
                channels=names if len(names) == dims.C else tuple(str(i) for i in range(dims.C)),
                times=int(dims.T),
                pixel_um=float(sizes.X) if sizes.X else None,
                scene=index if len(scenes) > 1 else None,
                scene_name=str(scenes[index]) if len(scenes) > 1 else None,
            )
        )
    return infos


def read_vendor_plane(
    image, path: Path, z: int, channel: int | None, t: int | None, scene: int | None
) -> np.ndarray:
    """One plane as stored: (H, W), or (H, W, S) for RGB."""
    if (scene or 0) != image.current_scene_index:
        image.set_scene(scene or 0)
    dims = image.dims
    for axis, value in (("Z", z), ("C", channel or 0), ("T", t or 0)):
        if not 0 <= value < getattr(dims, axis):
            raise IndexError(f"{axis}={value} is outside the scene's {getattr(dims, axis)}")
    order = "YXS" if _rgb(image) else "YX"
    return np.asarray(image.get_image_data(order, Z=z, C=channel or 0, T=t or 0))


VENDOR = StackReader(
    "vendor (bioio)",
    open=lambda path: open_vendor_file(path),  # looked up per call: tests stand in a fake BioImage
    infos=scene_infos,
    plane=read_vendor_plane,
)
