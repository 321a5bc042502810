"""FocusStack: one autofocus z-stack (one field of view) as the rest of the package sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FocusStack:
    """Images of one group in capture order (sorted by ``z``).

    ``scores`` are the paper's 0-100 clarity annotations (§4.1) or None; ``clearest`` is the index, in
    capture order, of the annotated clearest image (from the ``clearest`` column, else the max score)
    or None for an unlabelled group; ``z_um`` the physical focus positions or None.
    """

    group: str
    paths: tuple[Path, ...]
    z: tuple[int, ...]
    scores: np.ndarray | None = None
    clearest: int | None = None
    z_um: np.ndarray | None = None
    split: str | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labelled(self) -> bool:
        return self.clearest is not None

    @property
    def has_scores(self) -> bool:
        return self.scores is not None
