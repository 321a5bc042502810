"""Light torchvision trunks for GMANet (issue 32): ResNet-18, MobileNetV3-Large and EfficientNet-B0, split
into the same five stages as ``gmaiqa.models.backbones`` so the aggregation, the heads, mask attention
and whole-image scoring apply unchanged. Each costs a fraction of VGG16-BN's multiply-adds (the CPU
figures: ``benchmarks/bench_model.py --trunks``).

Stages (input pixels per feature pixel, channels):

* ``resnet18``: stem conv1 (1/2, 64); maxpool + layer1 (1/4, 64); layer2 (1/8, 128); layer3 (1/16, 256);
  layer4 (1/16, 512) with ReLU -> LeakyReLU as in the ResNet-50 trunk.
* ``mobilenet_v3_large``: stem conv + the first inverted residual (1/2, 16); 1/4 (24); 1/8 (40);
  1/16 (112); the last blocks and the 1x1 expansion (1/16, 960). Its own activations (ReLU, hardswish).
* ``efficientnet_b0``: stem conv + the first MBConv stage (1/2, 16); 1/4 (24); 1/8 (40); 1/16 (80, 112);
  the last two MBConv stages and the 1x1 head conv (1/16, 1280). Its own activations (SiLU).

The top stage stays at 1/16 as in VGG16-BN (GMANet's 32x48 score map for 512x768, §3.2): its first
block's stride becomes 1 and the later blocks' spatial convolutions are dilated by 2 (the rule of
torchvision's ``replace_stride_with_dilation`` for ResNet, which its BasicBlock refuses, and of its
``dilated`` MobileNetV3, which EfficientNet does not offer); ImageNet weights load unchanged.

``top_reduction=32`` (``model.backbone.top_reduction``, a departure from §3.2) keeps torchvision's own
last stride instead: the top stage then runs on a quarter of the pixels, a 16x24 score map for 512x768
(one cell per φ = 32x32 block of the attention map). On some CPUs the dilated top stage is much of a
light trunk's time (``benchmarks/bench_model.py --trunks`` measures both: MobileNetV3-Large 350 -> 208 ms
per 1024x1536 image in one run), on others it costs little; trained with the recipe that suits 1/16 it
scored worse (experiments/default-model/, trial ema_top32), so the paper's 1/16 stays the default.

Mask attention (Eq. 7) acts as in the heavy trunks, on every convolution of the first stage at depth 1
(L1) and also of the second at depth 2 (L2): a convolution-BN pair of a residual or inverted-residual
block becomes a :class:`~gmaiqa.models.mask_attention.MaskAttentionConv`, whose map is pooled with that
convolution's kernel, stride and padding. Squeeze-excitation (MobileNetV3, EfficientNet) reweights
channels from the whole map's mean: the map passes it unchanged. Because of that mean, a tile's scores
also depend on the rest of its tile, so tiled whole-image scoring (``inference.max_pixels``) is close to,
not equal to, one pass for these two trunks; ``receptive_field`` is the convolution path's.
"""

from __future__ import annotations

import torchvision
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from gmaiqa.errors import ConfigError
from gmaiqa.models.backbones import Backbone, _load_torchvision, _Sequential
from gmaiqa.models.mask_attention import MaskAttentionConv, MaskMaxPool


def conv_path_receptive_field(stages: list[list[nn.Module]]) -> int:
    """Input pixels one top feature sees along the convolutions and poolings in forward order (a
    residual block's shortcut ``downsample`` repeats its main path's stride and is skipped)."""
    field, jump = 1, 1
    for block in (b for stage in stages for b in stage):
        skipped = {
            id(m)
            for name, child in block.named_modules()
            if name.endswith("downsample")
            for m in child.modules()
        }
        for module in block.modules():
            if id(module) in skipped or not isinstance(module, nn.Conv2d | nn.MaxPool2d):
                continue
            kernel, stride, dilation = (
                (module.kernel_size, module.stride, module.dilation)
                if isinstance(module, nn.Conv2d)
                else ((module.kernel_size,) * 2, (module.stride,) * 2, (module.dilation,) * 2)
            )
            field += (dilation[0] * (kernel[0] - 1)) * jump
            jump *= stride[0]
    return field


TOP_REDUCTIONS = (16, 32)


def _top_is_dilated(top_reduction: int) -> bool:
    """16: the paper's 1/16 top stage (dilated); 32: torchvision's own stride."""
    if top_reduction not in TOP_REDUCTIONS:
        raise ConfigError(
            "model.backbone.top_reduction",
            f"{top_reduction!r} is not a reduction a light trunk offers",
            "use 16 (the paper's 32x48 map for 512x768, §3.2) or 32 (torchvision's own last stride)",
        )
    return top_reduction == 16


def _dilate(blocks: list[nn.Module]) -> None:
    """Keep a stage at its input's resolution: the first block's strided convolutions get stride 1,
    every later block's spatial convolutions dilation 2 (padding grown to keep sizes)."""
    for index, block in enumerate(blocks):
        for conv in (m for m in block.modules() if isinstance(m, nn.Conv2d)):
            if index == 0:
                conv.stride = (1, 1)
            elif conv.kernel_size[0] > 1:
                conv.dilation = (2, 2)
                conv.padding = (conv.kernel_size[0] - 1, conv.kernel_size[1] - 1)


class _ResNetBasicBlock(nn.Module):
    """torchvision's BasicBlock, its two conv-BN pairs as mask-attention blocks."""

    def __init__(self, block: torchvision.models.resnet.BasicBlock, slope: float):
        super().__init__()
        self.c1 = MaskAttentionConv(block.conv1, block.bn1, nn.LeakyReLU(slope))
        self.c2 = MaskAttentionConv(block.conv2, block.bn2, None)
        self.downsample = block.downsample
        self.act = nn.LeakyReLU(slope)

    def forward(self, x, mask):
        identity = x if self.downsample is None else self.downsample(x)
        out, m = self.c1(x, mask)
        out, m = self.c2(out, m)
        return self.act(out + identity), m


def _masked(layer: nn.Module) -> nn.Module:
    """A torchvision conv-BN(-activation) as a mask-attention block; anything else passes the map."""
    if isinstance(layer, Conv2dNormActivation):
        conv, bn, *act = list(layer)
        return MaskAttentionConv(conv, bn, act[0] if act else None)
    return _Sequential(layer)


class _InvertedResidual(nn.Module):
    """torchvision's InvertedResidual (MobileNetV3) or MBConv (EfficientNet): expansion, depthwise,
    squeeze-excitation, projection, each convolution a mask-attention block; the residual (after
    EfficientNet's stochastic depth) where the block has one."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(_masked(layer) for layer in block.block)
        self.residual = bool(block.use_res_connect)
        self.stochastic_depth = getattr(block, "stochastic_depth", nn.Identity())

    def forward(self, x, mask):
        out, m = x, mask
        for layer in self.layers:
            out, m = layer(out, m)
        return (self.stochastic_depth(out) + x if self.residual else out), m


def _info(names_channels_reductions) -> list[dict]:
    return [{"stage": s, "channels": c, "reduction": r} for s, c, r in names_channels_reductions]


def resnet18(
    *,
    weights_path: str | None = None,
    download: bool = False,
    negative_slope: float = 0.01,
    top_reduction: int = 16,
) -> Backbone:
    dilated = _top_is_dilated(top_reduction)
    net = _load_torchvision("resnet18", weights_path=weights_path, download=download)
    if dilated:
        _dilate(list(net.layer4))
    stages = [
        [MaskAttentionConv(net.conv1, net.bn1, nn.LeakyReLU(negative_slope))],
        [MaskMaxPool(net.maxpool), *(_ResNetBasicBlock(b, negative_slope) for b in net.layer1)],
        *(
            [_ResNetBasicBlock(b, negative_slope) for b in layer]
            for layer in (net.layer2, net.layer3, net.layer4)
        ),
    ]
    info = _info(
        [
            ("stem", 64, 2),
            ("layer1", 64, 4),
            ("layer2", 128, 8),
            ("layer3", 256, 16),
            ("layer4", 512, top_reduction),
        ]
    )
    return Backbone(stages, info, receptive_field=conv_path_receptive_field(stages))


def mobilenet_v3_large(
    *,
    weights_path: str | None = None,
    download: bool = False,
    negative_slope: float = 0.01,
    top_reduction: int = 16,
) -> Backbone:
    """``negative_slope`` is accepted for the common builder signature; MobileNetV3 keeps its own
    activations (its ImageNet weights were trained with them)."""
    dilated = _top_is_dilated(top_reduction)
    features = _load_torchvision(
        "mobilenet_v3_large", weights_path=weights_path, download=download, dilated=dilated
    ).features
    blocks = [_masked(features[0]), *(_InvertedResidual(b) for b in features[1:16]), _masked(features[16])]
    stages = [blocks[0:2], blocks[2:4], blocks[4:7], blocks[7:13], blocks[13:17]]
    info = _info(
        [
            ("stem", 16, 2),
            ("stage2", 24, 4),
            ("stage3", 40, 8),
            ("stage4", 112, 16),
            ("stage5", 960, top_reduction),
        ]
    )
    return Backbone(stages, info, receptive_field=conv_path_receptive_field(stages))


def efficientnet_b0(
    *,
    weights_path: str | None = None,
    download: bool = False,
    negative_slope: float = 0.01,
    top_reduction: int = 16,
) -> Backbone:
    """``negative_slope`` as for :func:`mobilenet_v3_large`: EfficientNet keeps its SiLU."""
    dilated = _top_is_dilated(top_reduction)
    features = _load_torchvision("efficientnet_b0", weights_path=weights_path, download=download).features
    if dilated:
        _dilate([*features[6], *features[7]])
    stage = [[_InvertedResidual(b) for b in features[i]] for i in range(1, 8)]
    stages = [
        [_masked(features[0]), *stage[0]],
        stage[1],
        stage[2],
        [*stage[3], *stage[4]],
        [*stage[5], *stage[6], _masked(features[8])],
    ]
    info = _info(
        [
            ("stem", 16, 2),
            ("stage2", 24, 4),
            ("stage3", 40, 8),
            ("stage4", 112, 16),
            ("stage5", 1280, top_reduction),
        ]
    )
    return Backbone(stages, info, receptive_field=conv_path_receptive_field(stages))


LIGHT_TRUNKS = {
    "resnet18": resnet18,
    "mobilenet_v3_large": mobilenet_v3_large,
    "efficientnet_b0": efficientnet_b0,
}
