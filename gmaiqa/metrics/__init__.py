"""Evaluation metrics of the GMANet paper (§4.2) as torchmetrics (synchronised across DDP ranks)."""

from gmaiqa.metrics.focus import ClearestSelection, GroupSROCC, group_outcome, spearman

__all__ = ["ClearestSelection", "GroupSROCC", "group_outcome", "spearman"]
