"""Per-group metrics of GMANet §4.2, computed with one code path for models and classical measures.

Within a group (images in capture order, higher score = clearer):
    i_p = argmax of the predicted scores, i_m = the annotated clearest;
    top-0 when i_p == i_m, top-1 when |i_p - i_m| == 1;
    t0, t1 count those groups and acc = (t0 + t1) / groups (§4.2.2);
    SROCC (Eq. 13, with average ranks for ties) per group, averaged over groups that have scores
    (§4.2.1: "we calculated the SROCC value of each evaluation image group and ... the average").
    z-error: |z_um[i_p] - z_um[i_m]| in µm, averaged over groups that have z_um.

A measure whose lower values mean clearer is negated by the caller before it reaches these metrics.
Ties in the predictions resolve to the first maximum in capture order (torch.argmax).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchmetrics import Metric


@dataclass(frozen=True)
class GroupOutcome:
    predicted: int
    annotated: int

    @property
    def offset(self) -> int:
        return abs(self.predicted - self.annotated)

    @property
    def top0(self) -> bool:
        return self.offset == 0

    @property
    def top1(self) -> bool:
        return self.offset == 1


def group_outcome(predicted_scores: torch.Tensor, clearest: int) -> GroupOutcome:
    scores = torch.as_tensor(predicted_scores).flatten()
    if not 0 <= clearest < scores.numel():
        raise ValueError(f"clearest index {clearest} outside a group of {scores.numel()} images")
    return GroupOutcome(int(torch.argmax(scores)), int(clearest))


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n with ties given their mean rank (as scipy.stats.rankdata)."""
    x = x.double()
    sorted_x, order = torch.sort(x, stable=True)
    ranks = torch.empty_like(x)
    n = x.numel()
    i = 0
    values = sorted_x.tolist()
    while i < n:
        j = i
        while j + 1 < n and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation (Pearson of average ranks); NaN when either side is constant."""
    a, b = torch.as_tensor(a).flatten(), torch.as_tensor(b).flatten()
    if a.numel() != b.numel() or a.numel() < 2:
        raise ValueError(
            f"spearman needs two sequences of equal length >= 2, got {a.numel()} and {b.numel()}"
        )
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = (ra.square().sum() * rb.square().sum()).sqrt()
    return float("nan") if denom == 0 else float((ra * rb).sum() / denom)


class ClearestSelection(Metric):
    """t0, t1, acc and mean z-error over groups; ``update`` takes one group at a time."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("groups", "t0", "t1", "z_error_sum", "z_groups"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predicted_scores: torch.Tensor, clearest: int, z_um: torch.Tensor | None = None) -> None:
        outcome = group_outcome(predicted_scores, clearest)
        self.groups += 1
        self.t0 += float(outcome.top0)
        self.t1 += float(outcome.top1)
        if z_um is not None:
            z = torch.as_tensor(z_um, dtype=torch.float64).flatten()
            self.z_error_sum += (z[outcome.predicted] - z[outcome.annotated]).abs().cpu()
            self.z_groups += 1

    def compute(self) -> dict[str, torch.Tensor]:
        groups = self.groups.clamp_min(1)
        result = {
            "acc": (self.t0 + self.t1) / groups,
            "t0": self.t0,
            "t1": self.t1,
            "groups": self.groups,
        }
        if self.z_groups > 0:
            result["z_error_um"] = self.z_error_sum / self.z_groups
        return result


class GroupSROCC(Metric):
    """Mean per-group SROCC over the groups that have annotated scores (GMANet §4.2.1)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predicted_scores: torch.Tensor, annotated_scores: torch.Tensor) -> None:
        annotated = torch.as_tensor(annotated_scores).flatten()
        if bool((annotated == annotated[0]).all()):
            return  # no annotated order to agree with: the group is left out
        value = spearman(predicted_scores, annotated)
        # A constant prediction carries no rank order: it counts as 0, not as a skipped group.
        value = 0.0 if value != value else value
        self.total += value
        self.count += 1

    def compute(self) -> torch.Tensor:
        return self.total / self.count if self.count > 0 else torch.tensor(float("nan"), dtype=torch.float64)
