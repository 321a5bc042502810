"""FocusStack: one autofocus z-stack (one field of view) as the rest of the package sees it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

SCORE_SCALE = 100.0  # the paper's clarity scale (§4.1): the clearest image 100, the most blurred 0
CLEAR_FLOOR = 95.0  # §4.1: the other clear images score 95-99, the blurred ones 94 down to 0


@dataclass(frozen=True)
class FocusStack:
    """Images of one group in capture order (sorted by ``z``).

    ``scores`` are the paper's 0-100 clarity annotations (§4.1) or None; ``clearest`` is the index, in
    capture order, of the annotated clearest image (from the ``clearest`` column, else the max score)
    or None for an unlabelled group; ``z_um`` the physical focus positions or None. ``crop_to``: the
    (H, W) every image is centre-cropped to when read (``data.uniform_sizes=crop``: slices of one stack
    that differ by a few pixels after registration), or None to read them as they are. ``pixel_um``: the
    size in µm of a stored pixel, or None where the dataset does not say.
    """

    group: str
    paths: tuple[Path, ...]
    z: tuple[int, ...]
    scores: np.ndarray | None = None
    clearest: int | None = None
    z_um: np.ndarray | None = None
    split: str | None = None
    crop_to: tuple[int, int] | None = None
    pixel_um: float | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labelled(self) -> bool:
        return self.clearest is not None

    @property
    def has_scores(self) -> bool:
        return self.scores is not None

    def cropped_to(self, size: tuple[int, int] | None) -> FocusStack:
        return replace(self, crop_to=size)

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` in capture order as float RGB (H, W, 3), centre-cropped to ``crop_to``."""
        # here, not at import: loads cv2, tifffile only when this runs
        from gmaiqa.data.io import read_image

        image = read_image(self.paths[index])
        if self.crop_to is None:
            return image
        h, w = self.crop_to
        top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        return image[top : top + h, left : left + w]
