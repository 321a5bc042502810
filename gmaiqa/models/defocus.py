"""The absolute-defocus regressor (seed paper 001): torchvision's Inception-v3 encoder turns a 320x320x3
patch into 2048 features; a six-layer fully connected network maps them to one value, 0 = in focus,
larger = further out of focus (in blur levels, or µm when trained on real z offsets).

The seed gives the depth of the regressor but not its widths; we halve them layer by layer
(2048 → 1024 → 512 → 256 → 128 → 64 → 1, ReLU between): six linear layers, the last one linear so the
output is not clipped during training.
"""

from __future__ import annotations

from torch import nn

from gmaiqa.errors import ConfigError
from gmaiqa.models.backbones import _load_torchvision
from gmaiqa.models.registry import register_model

WIDTHS = (2048, 1024, 512, 256, 128, 64, 1)


# its output is the defocus level (0 = in focus), so lower is clearer; a whole image is scored in tiles
@register_model(
    "defocus_inception", task="defocus", higher_is_better=False, scoring="defocus_tiles", paper="seed 001"
)
class DefocusRegressor(nn.Module):
    uses_attention_map = False

    def __init__(
        self, *, weights_path: str | None = None, download: bool = False, widths=WIDTHS, dropout: float = 0.0
    ):
        super().__init__()
        if len(widths) != 7 or widths[0] != 2048 or widths[-1] != 1:
            raise ConfigError(
                "model.widths", f"{list(widths)}", "six linear layers from 2048 features to 1 value: 7 widths"
            )
        # ImageNet files hold the auxiliary classifier: load with it, then drop it
        encoder = _load_torchvision(
            "inception_v3",
            weights_path=weights_path,
            download=download,
            aux_logits=True,
            init_weights=True,
            key="model.weights_path",
        )
        encoder.aux_logits, encoder.AuxLogits = False, None
        encoder.fc = nn.Identity()
        encoder.dropout = nn.Dropout(dropout)
        self.encoder = encoder
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=True))
        self.regressor = nn.Sequential(*layers)

    def forward(self, image, attention=None) -> dict:
        """(B, 3, H, W) with H, W >= 75 (320 in the seed) -> {"output1": (B,) defocus level}."""
        if min(image.shape[-2:]) < 75:
            raise ValueError(f"Inception-v3 needs inputs of at least 75x75, got {tuple(image.shape[-2:])}")
        return {"output1": self.regressor(self.encoder(image)).squeeze(1)}
