"""The deep IQA methods GMANet is compared with (§5.2, Fig. 11), as score networks the same task trains.

Each takes (B, 3, H, W) images (preprocessed as for GMANet) and returns ``{"output1": (B,)}`` on the
0-100 score scale, so the GMANet loss on Output1 (Eq. 8-12), the group batches, the checkpoint selection
and the evaluation all apply unchanged - the paper says it trained them with "a similar optimal model
selection method" and gives nothing more, so we keep every other part of the protocol identical.

* **WaDIQaM-NR** (Bosse et al. 2018, "Deep neural networks for no-reference and full-reference image
  quality assessment", IEEE TIP 27(1)): the image is cut into non-overlapping 32x32 patches; a VGG-like
  feature extractor (conv3x3 32-32, pool, 64-64, pool, 128-128, pool, 256-256, pool, 512-512, pool,
  ReLU) gives 512 features per patch; one branch regresses a patch score (FC 512-512-1, dropout 0.5),
  the other a patch weight (FC 512-512-1, ReLU + 1e-6); the image score is the weighted average.
  The GMANet authors report its validation acc stayed below 97%.
* **WaDIQaM-FR** with the paper's reference trick (§5.2, after its ref. [32]): the image itself is the
  reference and its Gaussian blur (kernel 21, σ 3.5) the distorted input; a shared (siamese) extractor
  gives f_r and f_d per patch, fused as concat(f_r, f_d, f_r - f_d) (Bosse et al.'s FR fusion).
* **TwostreamIQA** (Yan, Mao & Li 2019, "Two-stream convolutional networks for blind image quality
  assessment", IEEE TIP 28(5)): an image stream and a gradient stream, here each the same patch
  extractor as WaDIQaM (the GMANet paper does not give the layer widths it used); the gradient stream
  sees the Sobel magnitude of the luma, z-scored per image ("we normalized the gradient images in
  advance", §5.2); the two 512-feature vectors are concatenated and regressed (FC 1024-512-1); the
  image score is the mean over patches.

None uses the attention map (``uses_attention_map = False``); none has mask attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gmaiqa.focus.gradient import tenengrad_map, to_gray
from gmaiqa.models.registry import register_model

PATCH = 32


def patch_features_net() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for width in (32, 64, 128, 256, 512):
        layers += [
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = width
    return nn.Sequential(*layers, nn.Flatten())


def to_patches(image: torch.Tensor, size: int = PATCH) -> tuple[torch.Tensor, int]:
    """(B, C, H, W) -> (B·P, C, size, size) non-overlapping patches (the remainder is left out), P."""
    b, c, h, w = image.shape
    if h < size or w < size:
        raise ValueError(f"images of {h}x{w} are smaller than one {size}x{size} patch")
    hh, ww = h // size * size, w // size * size
    patches = image[..., :hh, :ww].unfold(2, size, size).unfold(3, size, size)  # B, C, nh, nw, s, s
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, size, size)
    return patches, (hh // size) * (ww // size)


def _regressor(inputs: int, init_score: float) -> nn.Sequential:
    head = nn.Sequential(nn.Linear(inputs, 512), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(512, 1))
    nn.init.constant_(head[-1].bias, init_score)
    return head


def gaussian_blur(image: torch.Tensor, kernel: int = 21, sigma: float = 3.5) -> torch.Tensor:
    """The paper's distorted input for WaDIQaM-FR: separable Gaussian, reflect padding."""
    r = torch.arange(kernel, dtype=image.dtype, device=image.device) - (kernel - 1) / 2
    g = torch.exp(-r * r / (2 * sigma * sigma))
    g = g / g.sum()
    c = image.shape[1]
    x = F.pad(image, (kernel // 2,) * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def gradient_image(image: torch.Tensor) -> torch.Tensor:
    """Sobel magnitude of the luma, z-scored per image, as 3 equal channels (the gradient stream's input)."""

    g = tenengrad_map(to_gray(image))
    mean, std = g.mean(dim=(1, 2, 3), keepdim=True), g.std(dim=(1, 2, 3), keepdim=True)
    return ((g - mean) / (std + 1e-6)).expand(-1, 3, -1, -1)


@register_model("wadiqam_nr", task="gmanet", paper="Bosse et al. 2018; GMANet §5.2")
@register_model("wadiqam_fr", task="gmanet", paper="Bosse et al. 2018; GMANet §5.2 (blur reference)")
class WaDIQaM(nn.Module):
    uses_attention_map = False

    def __init__(
        self,
        *,
        full_reference: bool = False,
        blur_kernel: int = 21,
        blur_sigma: float = 3.5,
        init_score: float = 50.0,
    ):
        super().__init__()
        self.full_reference = full_reference
        self.blur = (blur_kernel, blur_sigma)
        self.features = patch_features_net()
        width = 512 * 3 if full_reference else 512
        self.score = _regressor(width, init_score)
        self.weight = _regressor(width, 1.0)

    def forward(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b = image.shape[0]
        patches, per_image = to_patches(image)
        f = self.features(patches)
        if self.full_reference:
            distorted, _ = to_patches(gaussian_blur(image, *self.blur))
            f_d = self.features(distorted)
            f = torch.cat([f, f_d, f - f_d], dim=1)
        scores = self.score(f).view(b, per_image)
        weights = F.relu(self.weight(f)).view(b, per_image) + 1e-6
        return {
            "output1": (weights * scores).sum(1) / weights.sum(1),
            "patch_scores": scores,
            "patch_weights": weights,
        }


@register_model("twostream_iqa", task="gmanet", paper="Yan, Mao & Li 2019; GMANet §5.2")
class TwoStreamIQA(nn.Module):
    uses_attention_map = False  # its gradient stream computes its own Sobel image

    def __init__(self, *, init_score: float = 50.0):
        super().__init__()
        self.image_stream = patch_features_net()
        self.gradient_stream = patch_features_net()
        self.score = _regressor(1024, init_score)

    def forward(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b = image.shape[0]
        patches, per_image = to_patches(image)
        gradients, _ = to_patches(gradient_image(image))
        f = torch.cat([self.image_stream(patches), self.gradient_stream(gradients)], dim=1)
        scores = self.score(f).view(b, per_image)
        return {"output1": scores.mean(1), "patch_scores": scores}
