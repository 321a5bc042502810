"""SAQM, the self-attention quality metric (seed paper 002: "shallow self-attention ... trained with
domain adaptation from natural to medical images").

Per 32x32 patch (its Table 1): conv3x3 3→128, 128→256, 256→256, 256→256, max-pool, 256→512, 512→512,
512→512, max-pool (8x8 = N feature locations), then 1x1 convolutions to Value (C = 512 channels) and
to Query / Key (C/8). The table gives one trunk and says Q, K and V "have similar architecture"; we
read that as one shared trunk with three 1x1 projections (the usual self-attention block, a third of
the parameters of three trunks) - our choice, the paper does not say.

    S_lj  = Query[l]ᵀ · Key[j]                          (Eq. 1)
    A_jl  = softmax_j(S_lj)                             (Eq. 2)
    Out   = γ · Value·A + Value,  γ learnable, γ0 = 0   (Eq. 3: the attention branch is off at init)

then global max pooling over the N locations and a small MLP (C → 256 → 1) giving the patch quality
logit; sigmoid gives the patch score in [0, 1] (trained with BCE against the normalised MOS, §2.3). The
image score is the mean over sliding patches. Domain adaptation (§2.2, Eq. 4-5, Ganin et al. 2016): a
domain classifier (LayerNorm, C → 256 → 1) behind a gradient reversal layer on the pooled features.

``width`` scales every trunk width (1.0, the default, is Table 1: 6.1 GFLOP per patch forward). It
exists for CPU demonstrations only: at 0.25 (with ``channels`` 128) a patch costs 1/16 of that, which
is what lets the synthetic Table 2 run train for thousands of steps on two cores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gmaiqa.errors import ConfigError
from gmaiqa.inference import extract_patches
from gmaiqa.models.registry import register_model

PATCH = 32


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """GRL: identity forward (Eq. 4), gradient multiplied by -scale backward (Eq. 5)."""
    return _ReverseGradient.apply(x, scale)


TABLE1_WIDTHS = (128, 256, 256, 256, "pool", 512, 512, 512, "pool")


def _trunk(width: float) -> tuple[nn.Sequential, int]:
    """Table 1's convolutions with every width scaled by ``width`` (1.0 = the paper); returns the trunk
    and its output channels."""
    layers: list[nn.Module] = []
    previous = 3
    for w in TABLE1_WIDTHS:
        if w == "pool":
            layers.append(nn.MaxPool2d(2))
            continue
        scaled = max(8, round(w * width))
        layers += [nn.Conv2d(previous, scaled, 3, padding=1), nn.ReLU(inplace=True)]
        previous = scaled
    return nn.Sequential(*layers), previous


class SelfAttention(nn.Module):
    def __init__(self, channels: int = 512, in_channels: int = 512):
        super().__init__()
        self.query = nn.Sequential(nn.Conv2d(in_channels, channels // 8, 1), nn.ReLU(inplace=True))
        self.key = nn.Sequential(nn.Conv2d(in_channels, channels // 8, 1), nn.ReLU(inplace=True))
        self.value = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.ReLU(inplace=True))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        q, k, v = self.query(x).flatten(2), self.key(x).flatten(2), self.value(x).flatten(2)  # (B, C', N)
        s = torch.bmm(q.transpose(1, 2), k)  # S[l, j] = Query[l]ᵀ Key[j]       (B, N, N)
        a = F.softmax(s, dim=-1).transpose(1, 2)  # A[j, l] = softmax_j S[l, j]
        out = self.gamma * torch.bmm(v, a) + v  # (Value·A)[:, l] = Σ_j Value[:, j] A[j, l]
        return out.view(b, -1, h, w), a


@register_model("saqm", task="saqm", paper="seed 002, Table 1, Eq. 1-5")
class SAQM(nn.Module):
    uses_attention_map = False

    def __init__(
        self,
        *,
        channels: int = 512,
        hidden: int = 256,
        domain_classifier: bool = True,
        reversal_scale: float = 1.0,
        patch_step: int = PATCH,
        width: float = 1.0,
    ):
        super().__init__()
        if not 0 < width <= 4:
            raise ConfigError(
                "model.width", f"{width}", "use a width multiplier in (0, 4]; 1.0 is the paper's Table 1"
            )
        if channels < 8:
            raise ConfigError("model.channels", f"{channels}", "use at least 8 (Query/Key have channels/8)")
        self.trunk, trunk_channels = _trunk(width)
        self.attention = SelfAttention(channels, trunk_channels)
        self.regressor = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1)
        )
        # scale-free input (LayerNorm without affine): the reversed gradient cannot raise the domain loss
        # by inflating the features, only by making the domains alike - the paper's "small branch" is
        # unspecified, and on raw ReLU features our DA runs diverged (training loss 1.4 -> 500 in 10 epochs)
        self.domain = (
            nn.Sequential(
                nn.LayerNorm(channels, elementwise_affine=False),
                nn.Linear(channels, hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, 1),
            )
            if domain_classifier
            else None
        )
        self.reversal_scale = reversal_scale
        self.patch_step = patch_step
        self._he_init_convolutions()

    def _he_init_convolutions(self) -> None:
        """He (2015) initialisation of every convolution. The paper does not name one; PyTorch's default
        (uniform, gain 1/sqrt(3)) shrinks the activations about 20x over Table 1's seven plain ReLU layers,
        so at init the pooled features of different patches differ by ~6e-5, every image gets the same
        score, and the BCE sits at its constant-guess plateau for hundreds of steps - in our synthetic
        Table 2 run three of four configurations never left it in 100 epochs."""
        for module in [*self.trunk.modules(), *self.attention.modules()]:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward_patches(
        self, patches: torch.Tensor, reversal_scale: float | None = None
    ) -> dict[str, torch.Tensor]:
        """(P, 3, 32, 32) -> quality logits (P,), domain logits (P,) behind the GRL, pooled features.

        ``reversal_scale``: the GRL factor of this step (the training task's schedule ramps it up to the
        model's ``reversal_scale``, Eq. 5); None uses the model's."""
        if patches.shape[-2:] != (PATCH, PATCH):
            raise ValueError(f"SAQM scores {PATCH}x{PATCH} patches, got {tuple(patches.shape[-2:])}")
        features, attention = self.attention(self.trunk(patches))
        pooled = features.amax(dim=(2, 3))
        out = {"quality_logit": self.regressor(pooled).squeeze(1), "features": pooled, "attention": attention}
        if self.domain is not None:
            scale = self.reversal_scale if reversal_scale is None else reversal_scale
            out["domain_logit"] = self.domain(reverse_gradient(pooled, scale)).squeeze(1)
        return out

    def image_scores(self, image: torch.Tensor, max_patches: int = 256) -> torch.Tensor:
        """Mean patch score (sigmoid) over sliding 32x32 windows: (B, 3, H, W) -> (B,) in [0, 1]."""

        patches = extract_patches(image, (PATCH, PATCH), (self.patch_step, self.patch_step))
        b, p = patches.shape[:2]
        flat = patches.flatten(0, 1)
        logits = torch.cat(
            [
                self.forward_patches(flat[i : i + max_patches])["quality_logit"]
                for i in range(0, flat.shape[0], max_patches)
            ]
        )
        return torch.sigmoid(logits).view(b, p).mean(1)

    def forward(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"output1": self.image_scores(image)}
