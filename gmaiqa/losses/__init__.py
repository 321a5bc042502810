"""Loss modules."""

from gmaiqa.losses.gmanet import GMANetLoss, rank_gate, rank_loss, score_loss

__all__ = ["GMANetLoss", "rank_loss", "rank_gate", "score_loss"]
