"""The pixel size a network sees, and the range a model was trained at.

Focus is decided by the finest detail, so what a focus model has learnt is tied to how many µm one of
its input pixels spans: a model trained on 0.2 µm pixels that is shown 1.3 µm pixels (a 1920x1200
frame shrunk 6.7x) sees detail it never saw sharp. Each group may say its pixel size (the manifest's
``pixel_um`` column, an OME-TIFF's ``PhysicalSizeX``, an ImageJ file's resolution; ``data.pixel_um`` /
``pixel_um=`` for groups that do not), and what the network sees is that size times the resize::

    seen = pixel_um * source height / resized height        (over data.scale_range: / zoom)

Training records the range it saw in the checkpoint (``meta["pixel_um"]``: min, max, and how many
groups said); scoring compares the images it is given with it and says when they fall outside, with
the ``resize=`` that brings them in.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from gmaiqa.data.stack import FocusStack
from gmaiqa.errors import ConfigError

# scoring within this factor of the trained range is not worth a note (resampling is not exact either)
TOLERANCE = 1.1


def pixel_size(value, key: str) -> float | None:
    """A pixel size option (``data.pixel_um``, ``pixel_um=``): None, or a positive number of µm."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number > 0:
        raise ConfigError(key, f"{value!r} is not a positive number", f"give the size in µm, e.g. {key}=0.2")
    return number


def size_pair(
    value, key: str, smallest: int = 1, what: str = "is not [height, width]", fix: str | None = None
) -> tuple[int, int] | None:
    """A size option (``data.crop``, ``data.block``, ``resize=``, ``block=``): None, or (height, width)
    of whole numbers of at least ``smallest``; a bare number is a square."""
    if value is None:
        return None
    items = [value, value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        pair = tuple(items)
        whole = all(not isinstance(v, bool) and float(v) == int(v) for v in pair)
    except (TypeError, ValueError):
        pair, whole = (), False
    if len(pair) != 2 or not whole or min(int(v) for v in pair) < smallest:
        shown = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
        raise ConfigError(key, f"{shown!r} {what}", fix or f"write e.g. {key}=[512,768]")
    return int(pair[0]), int(pair[1])


def zoom_range(value, key: str) -> tuple[float, float] | None:
    """A zoom range option (``data.scale_range``): None, or (low, high) with 0 < low <= high."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low = high = math.nan
    if not 0 < low <= high:
        raise ConfigError(
            key,
            f"{value!r} is not [low, high] with 0 < low <= high",
            f"e.g. {key}=[0.8,1.25] (zoom drawn per batch), or null",
        )
    return low, high


def source_size(stack: FocusStack) -> tuple[int, int]:
    """(H, W) of the group's images as read (its first image; a group has one size)."""
    return tuple(stack.crop_to) if stack.crop_to else _stored_size(str(stack.paths[0]))


@functools.lru_cache(maxsize=65536)
def _stored_size(path: str) -> tuple[int, int]:
    """Once per file and command: a stack file's plane is decoded to learn its size."""
    # here, not at import: loads cv2, tifffile only when this runs
    from gmaiqa.data.io import image_size

    return tuple(image_size(path))


def seen_pixel_um(
    stack: FocusStack, resize: Sequence[int] | None, default: float | None = None
) -> float | None:
    """µm per pixel of what the network sees of ``stack`` after ``resize`` (None: its pixel size is
    unknown)."""
    pixel = stack.pixel_um if stack.pixel_um is not None else default
    if pixel is None:
        return None
    height = source_size(stack)[0]
    return pixel * height / (resize[0] if resize else height)


def zoom_factor(draw_seed: int, scale_range: Sequence[float]) -> float:
    """The batch's zoom for ``data.scale_range`` (log-uniform, so 0.8 and 1.25 are equally likely)."""
    low, high = scale_range
    rng = np.random.default_rng([draw_seed, 0x5CA1E])
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def trained_range(
    stacks: Sequence[FocusStack],
    resize: Sequence[int] | None,
    scale_range: Sequence[float] | None,
    default: float | None = None,
) -> dict | None:
    """What the checkpoint records: the µm per network pixel its training groups spanned."""
    seen = [seen_pixel_um(s, resize, default) for s in stacks]
    known = [v for v in seen if v is not None]
    if not known:
        return None
    low, high = scale_range or (1.0, 1.0)
    return {
        "min": round(min(known) / high, 6),
        "max": round(max(known) / low, 6),
        "groups": len(known),
        "of": len(stacks),
    }


def pixel_note(
    stacks: Sequence[FocusStack],
    resize: Sequence[int] | None,
    trained: dict | None,
    default: float | None = None,
) -> str | None:
    """What a scoring command says when its images are not at the pixel size the model was trained at
    (or cannot be checked); None when they are, or when the checkpoint recorded no range."""
    if not trained:
        return None
    low, high = trained["min"], trained["max"]
    span = f"{low:.3g}-{high:.3g} µm/pixel" if high > low * 1.001 else f"{low:.3g} µm/pixel"
    seen = {s.group: seen_pixel_um(s, resize, default) for s in stacks}
    if all(v is None for v in seen.values()):
        return (
            f"the model was trained at {span}; these images do not say their pixel size, so it "
            "is not checked (pixel_um=µm, or a pixel_um column in the manifest, lets it be)"
        )
    inside = (low / TOLERANCE, high * TOLERANCE)
    outside = {g: v for g, v in seen.items() if v is not None and not inside[0] <= v <= inside[1]}
    if not outside:
        return None
    group, value = max(outside.items(), key=lambda item: abs(math.log(item[1] / math.sqrt(low * high))))
    stack = next(s for s in stacks if s.group == group)
    height, width = source_size(stack)
    zoom = value / math.sqrt(low * high)  # > 1: enlarge to reach the trained pixel size
    target = resize or (height, width)
    suggestion = [max(1, round(target[0] * zoom)), max(1, round(target[1] * zoom))]
    return (
        f"{len(outside)} of {len(seen)} groups are scored at pixel sizes outside the {span} the model "
        f"was trained at (e.g. {group}: {value:.3g} µm/pixel); their finest detail is not what it learnt "
        f"from. resize=[{suggestion[0]},{suggestion[1]}] scores {group} at the trained scale"
    )
