"""Pure nn.Module models (no Lightning here)."""

from gmaiqa.models.gmanet import GMANet, build_gmanet, improved_global_average_pool

__all__ = ["GMANet", "build_gmanet", "improved_global_average_pool"]
