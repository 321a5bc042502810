"""GMANet (Hu et al. 2022, §3.2): a backbone with gradient mask attention in its first stage(s),
a feature aggregation module, a score-map head and the "improved global average pooling".

Feature aggregation (Fig. 3d is not available; this is our reading of the text). The paper names two
aggregated maps, Deconv3 (128x192x512 for a 512x768 input, 1/4) and Deconv4 (64x96x512, 1/8), "fusing
low-level feature maps with a high-level feature map". We build them top-down, as in FPN / U-Net:

    Deconv4 = LReLU(BN(Conv3x3([ConvT2x(Layer5), Layer4])))      1/8,  512 channels
    Deconv3 = LReLU(BN(Conv3x3([ConvT2x(Deconv4), Layer3])))     1/4,  512 channels

where Layer4 / Layer3 are the last feature maps before those stages' max-pooling (64x96x512 and
128x192x256 for VGG16-BN) and ConvT2x a stride-2 transposed convolution ("Deconv"). The names then say
which backbone layer each map is fused with, and the sizes match the paper.
A light trunk built with ``top_reduction=32`` (``gmaiqa.models.light_trunks``) puts Layer5 at 1/32; its
Deconv4 then upsamples 4x (ConvT4x: kernel 8, stride 4) to meet Layer4 at 1/8, and the maps the
auxiliary outputs score keep their sizes.

Heads: every 1x1x512 feature vector of Layer5 is an independent patch sample; two 1x1 convolutions
(512 -> 256, LeakyReLU, 256 -> 1) and a ReLU give a non-negative 32x48 score map; Output1 is the mean
of its non-zero values (0 when every value is 0). Output2 / Output3 come the same way from Deconv3 /
Deconv4 and only serve training (loss weights 1.0 / 0.8 / 0.6). New layers are Xavier-initialised
(§3.4); the last bias of each head starts at ``init_score`` so scores begin mid-scale on the paper's
0-100 range instead of in the dead zone of the ReLU.
"""

from __future__ import annotations

import copy
import inspect

import torch
from torch import nn

from gmaiqa.errors import ConfigError, did_you_mean
from gmaiqa.models.backbones import BACKBONES, Backbone
from gmaiqa.models.light_trunks import LIGHT_TRUNKS
from gmaiqa.models.registry import register_model


def improved_global_average_pool(score_map: torch.Tensor) -> torch.Tensor:
    """Mean of the non-zero values of each map (B, 1, H, W) -> (B,) float32; 0 where all are zero.

    Summed in float32 whatever the map's dtype. Under bf16 autocast (how ``gmaiqa train`` trains and
    validates with ``trainer.precision=bf16-mixed``) the map is bf16, and a bf16 sum of a 32x48 map near
    the scale's middle (about 77,000) is a multiple of 512: images of a stack whose mean scores differ by
    less than a third of a point tied, and a tied stack's pick fell to its first image."""
    flat = score_map.flatten(1).float()
    count = (flat != 0).sum(dim=1).clamp_min(1)
    return flat.sum(dim=1) / count


class ScoreHead(nn.Module):
    def __init__(
        self, channels: int, hidden: int = 256, negative_slope: float = 0.01, init_score: float = 50.0
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.LeakyReLU(negative_slope)
        self.conv2 = nn.Conv2d(hidden, 1, 1)
        for conv in (self.conv1, self.conv2):
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.conv2.bias, init_score)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(self.act(self.conv1(x))))


class _Fuse(nn.Module):
    """Upsample the coarser map ``scale``x with a transposed convolution (kernel 2 x scale, the
    paper's 2x "Deconv" at scale 2), concatenate, 3x3 conv-BN-LReLU."""

    def __init__(self, coarse: int, lateral: int, out: int, negative_slope: float, scale: int = 2):
        super().__init__()
        self.up = nn.ConvTranspose2d(coarse, out, kernel_size=2 * scale, stride=scale, padding=scale // 2)
        self.conv = nn.Conv2d(out + lateral, out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out)
        self.act = nn.LeakyReLU(negative_slope)
        nn.init.xavier_uniform_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        nn.init.xavier_uniform_(self.conv.weight)

    def forward(self, coarse: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        up = self.up(coarse)
        if up.shape[-2:] != lateral.shape[-2:]:  # odd input sizes
            up = nn.functional.interpolate(up, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        return self.act(self.bn(self.conv(torch.cat([up, lateral], dim=1))))


TRUNKS = {**BACKBONES, **LIGHT_TRUNKS}  # every trunk `model/backbone=NAME` can name


def _last_stage_at(info: list[dict], reduction: int) -> int:
    matches = [i for i, f in enumerate(info) if f["reduction"] == reduction]
    if not matches:
        raise ValueError(f"backbone has no stage at 1/{reduction} resolution: {info}")
    return matches[-1]


class GMANet(nn.Module):
    def __init__(
        self,
        *,
        backbone: Backbone,
        mask_attention_depth: int = 1,
        aux_outputs: bool = True,
        aggregation_channels: int = 512,
        head_channels: int = 256,
        negative_slope: float = 0.01,
        init_score: float = 50.0,
    ):
        super().__init__()
        self.backbone = backbone
        self.aux_outputs = aux_outputs
        info = backbone.feature_info
        top = info[-1]["channels"]
        self.head1 = ScoreHead(top, head_channels, negative_slope, init_score)
        if aux_outputs:
            self._i8, self._i4 = _last_stage_at(info, 8), _last_stage_at(info, 4)
            self.deconv4 = _Fuse(
                top,
                info[self._i8]["channels"],
                aggregation_channels,
                negative_slope,
                scale=info[-1]["reduction"] // 8,
            )
            self.deconv3 = _Fuse(
                aggregation_channels, info[self._i4]["channels"], aggregation_channels, negative_slope
            )
            self.head2 = ScoreHead(aggregation_channels, head_channels, negative_slope, init_score)
            self.head3 = ScoreHead(aggregation_channels, head_channels, negative_slope, init_score)
        self.set_attention_depth(mask_attention_depth)

    @property
    def attention_depth(self) -> int:
        return self.backbone.attention_depth

    @property
    def uses_attention_map(self) -> bool:
        """L0 (depth 0) ignores the map; L1/L2 need it (gmaiqa.models.contract)."""
        return self.attention_depth > 0

    def set_attention_depth(self, depth: int) -> None:
        if depth not in (0, 1, 2):
            raise ConfigError("model.mask_attention_depth", f"{depth}", "use 0 (L0: no MA), 1 (L1) or 2 (L2)")
        self.backbone.set_attention_depth(depth)

    def forward_features(
        self, image: torch.Tensor, attention: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if self.attention_depth > 0 and attention is None:
            raise ValueError("this GMANet uses mask attention: pass the attention map (B, 1, H, W)")
        stages = self.backbone(image, attention)
        features = {"layer5": stages[-1]}
        if self.aux_outputs:
            features["deconv4"] = self.deconv4(stages[-1], stages[self._i8])
            features["deconv3"] = self.deconv3(features["deconv4"], stages[self._i4])
        return features

    def forward_head(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        maps = {"output1": self.head1(features["layer5"])}
        if self.aux_outputs:
            maps["output2"] = self.head2(features["deconv3"])
            maps["output3"] = self.head3(features["deconv4"])
        out = {name: improved_global_average_pool(m) for name, m in maps.items()}
        out["score_map"] = maps["output1"]
        return out

    def forward(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """-> {"output1": (B,), ["output2", "output3": (B,)], "score_map": (B, 1, H/r, W/r)}, r: reduction"""
        return self.forward_head(self.forward_features(image, attention))

    # ---- inference: Output1 only (§3.4), without the aggregation module and auxiliary heads
    @property
    def receptive_field(self) -> int:
        return self.backbone.receptive_field

    @property
    def reduction(self) -> int:
        """Input pixels per score-map cell (16: Layer5 of VGG16-BN; 32: a light trunk's own stride)."""
        return self.backbone.feature_info[-1]["reduction"]

    def output1_map(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Output1's score map (B, 1, H/r, W/r), computing nothing the auxiliary outputs need."""
        if self.attention_depth > 0 and attention is None:
            raise ValueError("this GMANet uses mask attention: pass the attention map (B, 1, H, W)")
        return self.head1(self.backbone(image, attention)[-1])

    def without_auxiliary_outputs(self) -> GMANet:
        """A copy holding Output1's path alone (trunk and head 1) for deployment: ``gmaiqa export`` then
        writes half the weights of a network with the aggregation module."""
        trimmed = copy.deepcopy(self)
        if trimmed.aux_outputs:
            del trimmed.deconv4, trimmed.deconv3, trimmed.head2, trimmed.head3
            trimmed.aux_outputs = False
        return trimmed

    def output1(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Output1 (B,) alone, equal to ``forward(...)["output1"]`` (tested)."""
        return improved_global_average_pool(self.output1_map(image, attention))


@register_model("gmanet", task="gmanet", paper="GMANet §3.2, Fig. 3")
def build_gmanet(
    *,
    backbone: dict | str = "vgg16_bn",
    mask_attention_depth: int = 1,
    aux_outputs: bool = True,
    attention_map: dict | None = None,
    negative_slope: float = 0.01,
    aggregation_channels: int = 512,
    head_channels: int = 256,
    init_score: float = 50.0,
) -> GMANet:
    """``backbone``: a name or {name, weights_path, download}. ``attention_map`` ({kind, block}) is the
    map GMANet attends to; the data pipeline computes it (``data.attention`` / ``data.block`` follow this
    choice, and checkpoints record them with the data config), so the network itself keeps nothing of it."""
    spec = {"name": backbone} if isinstance(backbone, str) else dict(backbone)
    name = spec.pop("name", "vgg16_bn")
    if name not in TRUNKS:
        raise ConfigError(
            "model.backbone.name",
            f"unknown backbone {name!r}{did_you_mean(name, TRUNKS)}",
            f"choose one of {sorted(TRUNKS)}",
        )
    builder = TRUNKS[name]
    takes = set(inspect.signature(builder).parameters) - {"negative_slope"}
    for key in spec:
        if key not in takes:  # a key another trunk takes (top_reduction of a light one), or a typo
            raise ConfigError(
                f"model.backbone.{key}",
                f"the {name} trunk takes no {key!r}{did_you_mean(key, takes)}",
                f"its keys: name, {', '.join(sorted(takes))}",
            )
    trunk = builder(negative_slope=negative_slope, **spec)
    net = GMANet(
        backbone=trunk,
        mask_attention_depth=mask_attention_depth,
        aux_outputs=aux_outputs,
        aggregation_channels=aggregation_channels,
        head_channels=head_channels,
        negative_slope=negative_slope,
        init_score=init_score,
    )
    return net
