"""GMANet losses (§3.3), on the paper's 0-100 score scale.

    L_score = 1/M · Σ_i smoothL1(ŝ_i - s_i)                                 (Eq. 9, 10)
    L_diff  = 1/(M-1) · Σ_d smoothL1((ŝ_c - ŝ_d) - (s_c - s_d))             (Eq. 11)
    α       = 0 if Σ_d max(ŝ_d - ŝ_c, 0) = 0 else 1                          (Eq. 12)
    L       = L_score + α · L_diff                                          (Eq. 8)

c is the clearest image of the group batch, d the others. α is a gate read off the predictions (no
gradient flows through it): when the clearest already ranks first, the rank term would only count the
score error a second time. The total sums L over Output1..3 with weights 1.0 / 0.8 / 0.6 (§3.2);
without auxiliary outputs only Output1 (weight 1.0) remains.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

OUTPUTS = ("output1", "output2", "output3")
PAPER_WEIGHTS = (1.0, 0.8, 0.6)


def score_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.smooth_l1_loss(predicted, target, reduction="mean", beta=1.0)


def _others(n: int, clearest: int, device) -> torch.Tensor:
    return torch.tensor([i for i in range(n) if i != clearest], device=device, dtype=torch.long)


def rank_loss(predicted: torch.Tensor, target: torch.Tensor, clearest: int) -> torch.Tensor:
    others = _others(predicted.numel(), clearest, predicted.device)
    predicted_gap = predicted[clearest] - predicted[others]
    target_gap = target[clearest] - target[others]
    return F.smooth_l1_loss(predicted_gap, target_gap, reduction="mean", beta=1.0)


def rank_gate(predicted: torch.Tensor, clearest: int) -> torch.Tensor:
    """α of Eq. 12: 1 when some other image is predicted above the clearest, else 0."""
    others = _others(predicted.numel(), clearest, predicted.device)
    violation = torch.clamp(predicted.detach()[others] - predicted.detach()[clearest], min=0).sum()
    return (violation > 0).to(predicted.dtype)


class GMANetLoss(nn.Module):
    def __init__(self, weights: Sequence[float] = PAPER_WEIGHTS):
        super().__init__()
        if len(weights) != 3:
            raise ValueError(f"task.loss_weights needs three weights (Output1..3), got {list(weights)}")
        self.weights = tuple(float(w) for w in weights)

    def forward(
        self, outputs: dict[str, torch.Tensor], target: torch.Tensor, clearest: int
    ) -> dict[str, torch.Tensor]:
        """Returns ``loss`` (the weighted total) and, per output, ``<output>/loss_score``,
        ``<output>/loss_diff``, ``<output>/alpha`` and ``<output>/loss``."""
        if not 0 <= clearest < target.numel() or target.numel() < 2:
            raise ValueError(
                f"a group batch needs >= 2 images and its clearest inside it "
                f"(clearest={clearest}, size={target.numel()})"
            )
        terms: dict[str, torch.Tensor] = {}
        total = target.new_zeros(())
        for name, weight in zip(OUTPUTS, self.weights):
            if name not in outputs:
                continue
            predicted = outputs[name]
            l_score = score_loss(predicted, target)
            l_diff = rank_loss(predicted, target, clearest)
            alpha = rank_gate(predicted, clearest)
            loss = l_score + alpha * l_diff
            terms.update(
                {
                    f"{name}/loss_score": l_score,
                    f"{name}/loss_diff": l_diff,
                    f"{name}/alpha": alpha,
                    f"{name}/loss": loss,
                }
            )
            total = total + weight * loss
        terms["loss"] = total
        return terms
