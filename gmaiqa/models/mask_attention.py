"""The GMA block and pooling block of GMANet (§3.2, Fig. 3b-c, Eq. 7).

    I'_i = BN(Conv(I_i))
    M'_i = AvgPool(M_i) with the convolution's kernel, stride and padding
    Î_i  = lrelu((1 + M'_i) · I'_i)          (Eq. 7: I''_i = M'_i · I'_i, added to I'_i)

Î_i and M'_i feed the next block. The pooling block max-pools the features and the map alike.
With the map switched off the block is a plain conv-BN-LeakyReLU, and both variants hold the same
parameters: mask attention adds none, so an L0 checkpoint loads strictly into L1 and L2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def pool_map_like_conv(mask: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """M' of Eq. 7: average pooling with the convolution's own kernel, stride and padding.
    Padding is excluded from the average (a border pixel is the mean of the map it covers)."""
    return F.avg_pool2d(
        mask, kernel_size=conv.kernel_size, stride=conv.stride, padding=conv.padding, count_include_pad=False
    )


class MaskAttentionConv(nn.Module):
    """Conv -> BN -> (1 + M') * -> activation. ``attend`` switches the map on (set per stage)."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, activation: nn.Module | None):
        super().__init__()
        self.conv, self.bn = conv, bn
        self.act = activation if activation is not None else nn.Identity()
        self.attend = False

    def fold_batch_norm(self) -> None:
        """For scoring (eval mode, fp32): BN's affine map moves into the convolution's weights and bias,
        one pass over the features fewer (about 15 % of a light trunk's CPU time; the scores agree to
        float rounding, tests/test_model.py). The map is pooled with the convolution's geometry, which
        folding keeps."""
        if self.training or not isinstance(self.bn, nn.BatchNorm2d):
            return
        if self.conv.weight.dtype != torch.float32 or self.bn.running_var is None:
            return
        self.conv = fuse_conv_bn_eval(self.conv, self.bn)
        self.bn = nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        y = self.bn(self.conv(x))
        if mask is not None:
            mask = pool_map_like_conv(mask, self.conv)
            if self.attend:
                y = y * (1 + mask)
        return self.act(y), mask


class MaskMaxPool(nn.Module):
    """Pooling block (Fig. 3c): features and attention map are max-pooled with the same window."""

    def __init__(self, pool: nn.MaxPool2d):
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.pool(x), (self.pool(mask) if mask is not None else None)
