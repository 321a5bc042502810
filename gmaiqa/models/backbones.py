"""torchvision backbones split into named stages that carry an attention map alongside the features.

A backbone is a list of stages; stage i returns its last feature map before the next down-sampling
and reports ``channels`` and ``reduction`` (input pixels per feature pixel) in ``feature_info``.
Mask attention can be switched on in stages 1..depth (``set_attention_depth``).

* ``vgg16_bn`` (GMANet's choice, §3.2): torchvision's VGG16-BN features with every ReLU replaced by a
  LeakyReLU; Layer1..Layer5 = the five conv groups, Layer5 without its final max-pool, so a 512x768
  input gives 32x48x512. Stage reductions 1, 2, 4, 8, 16; channels 64, 128, 256, 512, 512.
* ``resnet50``: torchvision's ResNet-50 with ReLU -> LeakyReLU and the last stage dilated instead of
  strided (``replace_stride_with_dilation=[False, False, True]``), so the top features stay at 1/16 as
  in the VGG model and the same aggregation and heads apply. Stages: stem (conv1, 1/2, 64),
  layer1 (1/4, 256), layer2 (1/8, 512), layer3 (1/16, 1024), layer4 (1/16, 2048). Mask attention at
  depth 1 acts on the stem convolution, at depth 2 also on every convolution of layer1.

Weights: ``weights_path`` (a torchvision-format state dict of the full classifier, e.g. the file
torchvision caches as ``vgg16_bn-6c64b313.pth``), else torchvision's ImageNet download when
``download=True`` and online, else random init with a warning. One private builder decides.

Neither a weights file nor VGG16-BN's random init initialises weights that are thrown away: a file is
loaded into a network laid out on the meta device (no init at all), and VGG16-BN's random init leaves
the ImageNet classifier GMANet drops (123 M of its 138 M weights) on the meta device. On a 2-core CPU
that classifier's init took 1.2-2.1 s of every GMANet built, the shipped model's load in ``predict``
and ``autofocus`` included (benchmarks/bench_model_build.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from gmaiqa.errors import ConfigError
from gmaiqa.models.mask_attention import MaskAttentionConv, MaskMaxPool


def _laid_out(builder, **kwargs) -> nn.Module:
    """torchvision's network with uninitialised CPU weights, for a state dict to be copied into."""
    with torch.device("meta"):
        model = builder(weights=None, **kwargs)
    return model.to_empty(device="cpu")


def _vgg16_bn_random(**kwargs) -> nn.Module:
    """torchvision's ``vgg16_bn`` at its own random init, with the classifier left on the meta device.

    The features are initialised as torchvision does it: each layer's own default init in construction
    order, then ``VGG.__init__``'s (He normal, fan-out, for the convolutions; batch norms at 1 and 0). The
    random stream differs from ``vgg16_bn(weights=None)``'s, which draws the classifier's 123 M weights
    between the two; the distribution does not (tests/test_models.py compares them).
    """
    with torch.device("meta"):
        features = torchvision.models.vgg16_bn(weights=None, **kwargs).features
    features = features.to_empty(device="cpu")
    for module in features.modules():
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            module.reset_parameters()
    with torch.device("meta"):
        # VGG's own init loop runs over the given CPU features; the classifier it builds stays on meta
        return torchvision.models.VGG(features, **kwargs)


# networks whose random init builds large parts gmaiqa drops; the rest use torchvision's builder
_RANDOM_INIT = {"vgg16_bn": _vgg16_bn_random}


def _load_torchvision(
    name: str, *, weights_path: str | None, download: bool, key: str = "model.backbone.weights_path", **kwargs
) -> nn.Module:
    """The one place that decides between a local weights file, torchvision's download and random init.

    With random init, VGG16-BN's classifier is on the meta device: take ``.features`` only."""
    builder = getattr(torchvision.models, name)
    random_init = _RANDOM_INIT.get(name, lambda **kw: builder(weights=None, **kw))
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise ConfigError(
                key,
                f"{path} does not exist",
                "give a torchvision state-dict file, or weights_path=null for download/random init",
            )
        model = _laid_out(builder, **kwargs)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ConfigError(
                key,
                f"{path} is not a torchvision {name} state dict ({str(exc)[:200]})",
                f"export it with torch.save(torchvision.models.{name}(...).state_dict(), PATH)",
            ) from None
        return model
    if download:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        try:
            return builder(weights=weights, **kwargs)
        except Exception as exc:  # offline, proxy, hub unreachable
            warnings.warn(
                f"could not download ImageNet weights for {name} ({type(exc).__name__}); "
                f"continuing from random init. Set {key} to a local file.",
                stacklevel=2,
            )
            return random_init(**kwargs)
    warnings.warn(
        f"{name} starts from random init (no weights_path, download=false): the paper starts from "
        f"ImageNet weights; set {key} to reproduce it.",
        stacklevel=2,
    )
    return random_init(**kwargs)


class Backbone(nn.Module):
    """Stages as ``nn.ModuleList``s of blocks taking (x, mask) and returning (x, mask)."""

    def __init__(self, stages: list[list[nn.Module]], feature_info: list[dict], receptive_field: int):
        super().__init__()
        self.stages = nn.ModuleList(nn.ModuleList(blocks) for blocks in stages)
        self.feature_info = feature_info
        # input pixels one top feature sees (for the overlap of tiled inference, gmaiqa.inference)
        self.receptive_field = receptive_field
        self.attention_depth = 0

    def set_attention_depth(self, depth: int) -> None:
        if not 0 <= depth <= len(self.stages):
            raise ConfigError(
                "model.mask_attention_depth",
                f"{depth} outside 0..{len(self.stages)}",
                "use 0 (L0), 1 (L1) or 2 (L2)",
            )
        self.attention_depth = depth
        for index, stage in enumerate(self.stages):
            for module in stage.modules():
                if isinstance(module, MaskAttentionConv):
                    module.attend = index < depth

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        features = []
        for index, stage in enumerate(self.stages):
            # the map only travels as far as some stage still attends to it
            m = mask if index < self.attention_depth else None
            for block in stage:
                x, m = block(x, m)
            mask = m
            features.append(x)
        return features


def vgg16_bn(
    *, weights_path: str | None = None, download: bool = False, negative_slope: float = 0.01
) -> Backbone:
    features = _load_torchvision("vgg16_bn", weights_path=weights_path, download=download).features
    stages: list[list[nn.Module]] = [[]]
    layers = list(features)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.MaxPool2d):
            if i == len(layers) - 1:
                break  # Layer5 keeps its resolution (§3.2: 32x48 for a 512x768 input)
            stages.append([MaskMaxPool(layer)])
            i += 1
        elif isinstance(layer, nn.Conv2d):
            stages[-1].append(MaskAttentionConv(layer, layers[i + 1], nn.LeakyReLU(negative_slope)))
            i += 3  # conv, BN, ReLU
        else:
            raise RuntimeError(f"unexpected layer in torchvision vgg16_bn: {layer}")
    channels = [64, 128, 256, 512, 512]
    info = [{"stage": f"layer{k + 1}", "channels": c, "reduction": 2**k} for k, c in enumerate(channels)]
    # conv5_3: 3x3 convolutions and 2x2 poolings from 3 px to 196 px (Simonyan & Zisserman 2015)
    return Backbone(stages, info, receptive_field=196)


class _ResNetBottleneck(nn.Module):
    """torchvision's Bottleneck, with its three conv-BN pairs as mask-attention blocks."""

    def __init__(self, block: torchvision.models.resnet.Bottleneck, slope: float):
        super().__init__()
        self.c1 = MaskAttentionConv(block.conv1, block.bn1, nn.LeakyReLU(slope))
        self.c2 = MaskAttentionConv(block.conv2, block.bn2, nn.LeakyReLU(slope))
        self.c3 = MaskAttentionConv(block.conv3, block.bn3, None)
        self.downsample = block.downsample
        self.act = nn.LeakyReLU(slope)

    def forward(self, x, mask):
        identity = x if self.downsample is None else self.downsample(x)
        out, m = self.c1(x, mask)
        out, m = self.c2(out, m)
        out, m = self.c3(out, m)
        return self.act(out + identity), m


class _Sequential(nn.Module):
    """A plain module inside a stage: the map passes with the same spatial pooling."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x, mask):
        return self.module(x), mask


def resnet50(
    *, weights_path: str | None = None, download: bool = False, negative_slope: float = 0.01
) -> Backbone:
    net = _load_torchvision(
        "resnet50",
        weights_path=weights_path,
        download=download,
        replace_stride_with_dilation=[False, False, True],
    )
    stem = [MaskAttentionConv(net.conv1, net.bn1, nn.LeakyReLU(negative_slope))]
    stages = [stem, [MaskMaxPool(net.maxpool)]]
    stages[1] += [_ResNetBottleneck(b, negative_slope) for b in net.layer1]
    for layer in (net.layer2, net.layer3, net.layer4):
        stages.append([_ResNetBottleneck(b, negative_slope) for b in layer])
    info = [
        {"stage": "stem", "channels": 64, "reduction": 2},
        {"stage": "layer1", "channels": 256, "reduction": 4},
        {"stage": "layer2", "channels": 512, "reduction": 8},
        {"stage": "layer3", "channels": 1024, "reduction": 16},
        {"stage": "layer4", "channels": 2048, "reduction": 16},
    ]
    # stem 7 + pool 3 (-> 11), 3x3 convolutions: layer1 +24, layer2 +56, layer3 +176 (-> 267); layer4 at
    # stride 16: its first 3x3 undilated (+32), the other two dilated by 2 (+64 each)
    return Backbone(stages, info, receptive_field=427)


BACKBONES = {"vgg16_bn": vgg16_bn, "resnet50": resnet50}
