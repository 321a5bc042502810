"""Evaluation metrics: the GMANet paper's (§4.2) as torchmetrics (synchronised across DDP ranks), and
the correlations with mean opinion scores used by SAQM."""

from gmaiqa.metrics.correlation import correlations, kendall, pearson
from gmaiqa.metrics.focus import ClearestSelection, GroupSROCC, group_outcome, spearman

__all__ = [
    "ClearestSelection",
    "GroupSROCC",
    "correlations",
    "group_outcome",
    "kendall",
    "pearson",
    "spearman",
]
