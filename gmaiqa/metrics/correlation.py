"""Agreement of predicted quality with mean opinion scores: PLCC, SROCC, KROCC (SAQM's Table 2 and 3)."""

from __future__ import annotations

import torch

from gmaiqa.metrics.focus import spearman


def _pair(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = (
        torch.as_tensor(a, dtype=torch.float64).flatten(),
        torch.as_tensor(b, dtype=torch.float64).flatten(),
    )
    if a.numel() != b.numel() or a.numel() < 2:
        raise ValueError(
            f"a correlation needs two sequences of equal length >= 2, got {a.numel()} and {b.numel()}"
        )
    return a, b


def pearson(a, b) -> float:
    """PLCC on the raw predictions (no logistic mapping: SAQM reports it that way); NaN for a constant
    side."""
    a, b = _pair(a, b)
    a, b = a - a.mean(), b - b.mean()
    denom = (a.square().sum() * b.square().sum()).sqrt()
    return float("nan") if denom == 0 else float((a * b).sum() / denom)


def kendall(a, b) -> float:
    """KROCC, Kendall's tau-b (ties in either sequence accounted for, as scipy.stats.kendalltau)."""
    a, b = _pair(a, b)
    da = torch.sign(a[:, None] - a[None, :])
    db = torch.sign(b[:, None] - b[None, :])
    upper = torch.triu(torch.ones_like(da, dtype=torch.bool), diagonal=1)
    concordance = (da * db)[upper].sum()
    pairs_a, pairs_b = (da[upper] != 0).sum(), (db[upper] != 0).sum()
    denom = (pairs_a * pairs_b).double().sqrt()
    return float("nan") if denom == 0 else float(concordance / denom)


def correlations(predicted, mos) -> dict[str, float]:
    return {
        "plcc": pearson(predicted, mos),
        "srocc": spearman(torch.as_tensor(predicted), torch.as_tensor(mos)),
        "krocc": kendall(predicted, mos),
    }
