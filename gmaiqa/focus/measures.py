"""Focus measures (the Pertuz et al. 2013 operators are in ``pertuz.py``): one score per image, batched
over (B, 3, H, W) float RGB in [0, 1].

Each measure works on the luma of the image in [0, 1] (no per-image normalisation: dividing by each
image's own contrast would erase the very differences a focus measure ranks) and states whether a
higher value means a sharper image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from gmaiqa.focus.gradient import local_max_gradient_blocks, to_gray


@dataclass(frozen=True)
class FocusMeasure:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    higher_is_better: bool
    reference: str
    # True for a measure whose value can fall below 0 on a real image: a difference of two terms (VOLA)
    # rather than a sum of magnitudes. Its order of a stack is sound; its logarithm is not, so a
    # frame-by-frame fusion (gmaiqa.autofocus.scorers) refuses it as a member
    signed: bool = False

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B,) raw values."""
        return self.fn(to_gray(rgb)).flatten()

    def clarity(self, rgb: torch.Tensor) -> torch.Tensor:
        """Values oriented so that higher = clearer (what the metrics expect)."""
        values = self(rgb)
        return values if self.higher_is_better else -values

    # the two steps every scorer of gmaiqa.focus offers (a rank fusion needs the whole stack's rows
    # before it can score one image; a single measure's value is its image's own)
    def per_image(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 1) raw values."""
        return self(rgb)[:, None]

    def of_stack(self, values: torch.Tensor) -> torch.Tensor:
        """(N, 1) rows of a whole stack -> (N,) raw values."""
        return values[:, 0]


def local_max_gradient(gray: torch.Tensor, block: int = 32) -> torch.Tensor:
    """LMG: mean of g_φ over non-overlapping φ = block x block (GMANet §3.1, Eq. 6, used as an IQA
    method as in its supplementary comparison; the stride is not printed, we take s = φ)."""
    b = min(block, gray.shape[-2], gray.shape[-1])
    return local_max_gradient_blocks(gray, (b, b)).mean(dim=(1, 2, 3))
