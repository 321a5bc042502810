"""Rank fusion of classical focus measures: ``rank:TENG+LAPM+GLVN+WAVS`` scores each image of a stack by
the mean, over its member measures, of the image's rank within the stack (0 the least clear image, 1 the
clearest).

Why ranks: the members' values live on unrelated scales (TENG sums squared gradients, GLVN is a
normalised variance), and a stack's order is all the clearest-image choice needs; a mean of ranks lets
each measure vote with equal weight and no scale to fit, so nothing is learned from any data set. One
measure fooled by a feature of one microscope (a bright speck at another depth, a contrast-reversing
halo) moves the fused rank by at most 1/M of its range.

The fused score is a property of the *stack*: an image's value depends on the other images. So a fusion
scores in two steps, the way ``gmaiqa predict`` reads a deep stack one image at a time: ``per_image``
gives each member's clarity for a batch of images, ``of_stack`` turns the rows of a whole stack into the
fused scores. Exact ties in the mean rank (two images each preferred by half the members) are broken by
the mean of the members' values scaled to [0, 1] within the stack, weighted too little to overturn any
difference of rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gmaiqa.focus.measures import FocusMeasure

PREFIX = "rank:"
SEPARATOR = "+"  # not ",": Hydra reads a comma in a value as a sweep

# The members of the fusion that competes for the default scorer, fixed before any measurement: one
# operator from each of the four families of Pertuz et al. (2013) that carry most of their ranking -
# gradient (TENG, Tenengrad), Laplacian (LAPM, Nayar's modified Laplacian), statistics (GLVN, the grey
# level variance normalised by the mean: insensitive to exposure) and wavelet (WAVS, the sum of the
# detail bands). Different operators fail on different artefacts, which is what a vote needs.
CANDIDATE_MEMBERS = ("TENG", "LAPM", "GLVN", "WAVS")


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """(N, M) -> (N, M): each column's ranks 0..N-1, tied values sharing the mean of their ranks."""
    below = (values[None, :, :] < values[:, None, :]).sum(dim=1)  # [i, m]: how many j have v_j < v_i
    equal = (values[None, :, :] == values[:, None, :]).sum(dim=1)
    return below.to(values.dtype) + (equal.to(values.dtype) - 1) / 2


@dataclass(frozen=True)
class RankFusion:
    members: tuple[FocusMeasure, ...]
    higher_is_better: bool = True  # the fused score is a clarity

    @property
    def name(self) -> str:
        return PREFIX + SEPARATOR.join(m.name for m in self.members)

    @property
    def reference(self) -> str:
        return f"mean within-stack rank of {', '.join(m.name for m in self.members)}"

    def per_image(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, M): each member's clarity (higher = clearer)."""
        return torch.stack([m.clarity(rgb) for m in self.members], dim=1)

    def of_stack(self, values: torch.Tensor) -> torch.Tensor:
        """(N, M) member clarities of one whole stack -> (N,) fused scores in [0, 1 + tie-break]."""
        values = values.double()
        n, m = values.shape
        if n == 1:
            return torch.zeros(1, dtype=values.dtype)
        mean_rank = (average_ranks(values) / (n - 1)).mean(dim=1)
        low, high = values.min(dim=0).values, values.max(dim=0).values
        spread = torch.where(high > low, high - low, torch.ones_like(high))
        scaled = ((values - low) / spread).mean(dim=1)  # in [0, 1]
        # ranks differ by multiples of 0.5 / (n - 1) per member, so by at least 0.5 / (m (n - 1)) in the
        # mean: a tie-break of at most half of that never reorders images of different mean rank
        return mean_rank + scaled * 0.25 / (m * (n - 1))

    def clarity(self, rgb: torch.Tensor) -> torch.Tensor:
        """A whole stack as one batch -> (N,) fused scores."""
        return self.of_stack(self.per_image(rgb))

    __call__ = clarity


def is_fusion(name: str) -> bool:
    return str(name).strip().lower().startswith(PREFIX)


def member_names(name: str) -> list[str]:
    """``rank:TENG+GLVN`` -> ``['TENG', 'GLVN']`` (not yet resolved)."""
    return [part.strip() for part in str(name).strip()[len(PREFIX) :].split(SEPARATOR) if part.strip()]
