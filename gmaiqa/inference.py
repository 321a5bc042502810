"""Whole-image scores (GMANet §3.4, Fig. 4; §5.3.1), in one of two modes.

``window`` (the paper's): the image is resized to 1024x1536 and cut into 512x768 windows with a step of
256 in both directions (3 x 4 = 12 windows); the image score is the mean of the windows' Output1. The
step is configurable: §4.3 steps 384 over its leucorrhea set (768x1152) and 256 over its blood set. When
the last step does not reach the border, one more window is placed flush with it so every pixel counts.

``full``: one pass over the whole image gives its score map S (64x96 cells at 1024x1536) and the image
score is the improved GAP of S, the mean of its non-zero cells. How the two relate: a window's map is S
restricted to the window's 32x48 cells, except near the window's border, where the window sees zero
padding instead of its neighbours' pixels (Layer5's receptive field is 196 px, so about 6 cells deep).
With every cell non-zero, the window score is therefore a *weighted* mean of S, each cell weighted by
the number of windows covering it (1 at the corners up to 6 in the middle for the paper's layout: 1-2-2-1
rows by 1-2-3-3-2-1 columns of 256 px), plus those border effects; ``full`` weighs every cell once and
sees every pixel with its true neighbours. ``benchmarks/bench_model.py`` measures the speed,
``benchmarks/inference_agreement.py`` how often the two pick the same image.

Only Output1 is computed (§3.4: the auxiliary outputs serve the loss): models that can skip the rest
offer ``output1(image, attention)`` and, for tiling, ``output1_map(image, attention)`` (GMANet does);
others are called whole and their ``output1`` is read (:func:`image_scores`).

Memory: every forward pass takes at most ``max_pixels`` input pixels. Windows of all images of a group
are batched together up to that bound; in ``full`` mode whole images are batched, and an image larger
than the bound (e.g. 8000x8000 at native resolution) has its score map computed in tiles that overlap by
``halo`` pixels, enough for the receptive field, so the tiled map equals the one-pass map.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import warnings
from dataclasses import asdict, dataclass

import torch
from torch import nn

from gmaiqa.errors import ConfigError
from gmaiqa.models.gmanet import improved_global_average_pool
from gmaiqa.models.mask_attention import MaskAttentionConv

MODES = ("window", "full")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
PAPER_PATCH = (512, 768)
# 12 paper windows per pass: what one forward pass took before the bound was in pixels
DEFAULT_MAX_PIXELS = 12 * PAPER_PATCH[0] * PAPER_PATCH[1]


@dataclass(frozen=True)
class InferenceSettings:
    """How images are scored (``inference.*`` of train/eval/predict/benchmark, recorded in checkpoints).

    ``precision`` (fp32, bf16, fp16) is the autocast dtype of the forward pass; ``channels_last`` (on by
    default: 1.2x on the CPU, benchmarks/bench_model.py) the memory format and ``compile``
    (``torch.compile``) an opt-in speed-up for GPUs; ``halo`` (px) the tile overlap of
    ``full`` mode, None: the model's own (``halo_of``)."""

    mode: str = "window"
    patch: tuple[int, int] | None = PAPER_PATCH
    step: tuple[int, int] = (256, 256)
    max_pixels: int = DEFAULT_MAX_PIXELS
    halo: int | None = None
    precision: str = "fp32"
    channels_last: bool = True
    compile: bool = False

    @classmethod
    def from_mapping(cls, node, key: str = "inference", warn: bool = True) -> InferenceSettings:
        """From a config node (``warn``: a deprecated key gets a message) or a checkpoint's record.
        ``max_patches``, the old bound in windows, still works for one release."""
        given = dict(node or {})
        values = {k: v for k, v in given.items() if v is not None}
        patch = given.get("patch", PAPER_PATCH)  # null: the whole image is one window
        patch = tuple(patch) if patch else None
        if "max_patches" in values and "max_pixels" not in values:
            window = patch or PAPER_PATCH
            values["max_pixels"] = int(values["max_patches"]) * window[0] * window[1]
            if warn:
                warnings.warn(
                    f"{key}.max_patches is deprecated and will be removed in the next release: use "
                    f"{key}.max_pixels, the input pixels per forward pass ({values['max_patches']} windows "
                    f"of {window[0]}x{window[1]} = max_pixels={values['max_pixels']})",
                    FutureWarning,
                    stacklevel=3,
                )
        default = cls()
        settings = cls(
            mode=str(values.get("mode", default.mode)),
            patch=patch,
            step=tuple(values.get("step", default.step)),
            max_pixels=int(values.get("max_pixels", default.max_pixels)),
            halo=int(values["halo"]) if values.get("halo") is not None else default.halo,
            precision=str(values.get("precision", default.precision)),
            channels_last=bool(values.get("channels_last", default.channels_last)),
            compile=bool(values.get("compile", default.compile)),
        )
        if settings.mode not in MODES:
            raise ConfigError(f"{key}.mode", f"unknown mode {settings.mode!r}", f"use one of {list(MODES)}")
        if settings.precision not in PRECISIONS:
            raise ConfigError(
                f"{key}.precision",
                f"unknown precision {settings.precision!r}",
                f"use one of {list(PRECISIONS)}",
            )
        if settings.max_pixels < 1:
            raise ConfigError(f"{key}.max_pixels", f"{settings.max_pixels}", "give a positive pixel count")
        return settings

    def overridden(self, node, key: str = "inference") -> InferenceSettings:
        """These settings (a checkpoint's) with a command's non-null ``inference.*`` values on top."""
        given = {k: v for k, v in dict(node or {}).items() if v is not None}
        merged = {**self.record(), **given}
        if "max_patches" in given and "max_pixels" not in given:
            merged.pop("max_pixels")
        return InferenceSettings.from_mapping(merged, key)

    def record(self) -> dict:
        """The settings as a checkpoint records them (plain lists, so JSON and OmegaConf take them)."""
        record = asdict(self)
        return {**record, "patch": list(self.patch) if self.patch else None, "step": list(self.step)}


def window_starts(length: int, window: int, step: int) -> list[int]:
    if window > length:
        raise ConfigError(
            "inference.patch",
            f"a window of {window} px does not fit an image of {length} px",
            "lower inference.patch, raise the resize (data.resize, or resize= when scoring) "
            "or use inference.mode=full",
        )
    starts = list(range(0, length - window + 1, step))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def extract_patches(tensor: torch.Tensor, patch: tuple[int, int], step: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> (N, P, C, ph, pw) in row-major window order."""
    ph, pw = patch
    tops = window_starts(tensor.shape[-2], ph, step[0])
    lefts = window_starts(tensor.shape[-1], pw, step[1])
    return torch.stack([tensor[..., t : t + ph, left : left + pw] for t in tops for left in lefts], dim=1)


def image_scores(model: nn.Module, image: torch.Tensor, attention: torch.Tensor | None) -> torch.Tensor:
    """Output1 only: the model's ``output1`` when its class defines one (no auxiliary outputs), else
    its forward's ``output1``."""
    if has_method(model, "output1"):
        return model.output1(image, attention)
    return model(image, attention)["output1"]


def has_method(model: nn.Module, name: str) -> bool:
    """Whether the model's class defines ``name`` (a submodule of that name, as WaDIQaM's ``score``
    regressor would be, does not count)."""
    return inspect.isfunction(getattr(type(model), name, None))


def halo_of(model: nn.Module, settings: InferenceSettings) -> int:
    """The tile overlap of ``full`` mode: the setting, or the model's receptive-field radius rounded up
    to its output grid plus one cell (``receptive_field`` and ``reduction``, which a model with an
    ``output1_map`` states: gmaiqa.models.contract)."""
    if settings.halo is not None:
        return settings.halo
    field, grid = int(getattr(model, "receptive_field", 0)), int(model.reduction)
    if not field:
        raise ConfigError(
            "inference.halo",
            f"{type(model).__name__} does not state its receptive field",
            "set inference.halo (px) or raise inference.max_pixels so whole images fit one pass",
        )
    return grid * (math.ceil(field / 2 / grid) + 1)


def _window_scores(model, image, attention, settings: InferenceSettings) -> torch.Tensor:
    patches = extract_patches(image, settings.patch, settings.step)
    n, p = patches.shape[:2]
    flat = patches.flatten(0, 1)
    flat_maps = None
    if attention is not None:
        flat_maps = extract_patches(attention, settings.patch, settings.step).flatten(0, 1)
    per_pass = max(1, settings.max_pixels // (settings.patch[0] * settings.patch[1]))
    scores = []
    for start in range(0, flat.shape[0], per_pass):
        chunk_maps = flat_maps[start : start + per_pass] if flat_maps is not None else None
        scores.append(image_scores(model, flat[start : start + per_pass], chunk_maps).float())
    return torch.cat(scores).view(n, p).mean(dim=1)


def tile_spans(length: int, core: int, halo: int) -> list[tuple[int, int, int, int]]:
    """(input start, input stop, core start, core stop) along one axis: cores of ``core`` px tile the
    axis; each input span adds up to ``halo`` px of context on both sides."""
    spans = []
    for start in range(0, length, core):
        stop = min(start + core, length)
        spans.append((max(0, start - halo), min(length, stop + halo), start, stop))
    return spans


def tiled_score_map(model, image, attention, settings: InferenceSettings) -> torch.Tensor:
    """The score map of one whole image (1, 3, H, W), computed in overlapping tiles of at most
    ``max_pixels`` input pixels; equal to ``model.output1_map`` of the whole image when the halo covers
    the receptive field (tested)."""
    if not has_method(model, "output1_map"):
        raise ConfigError(
            "inference.max_pixels",
            f"{tuple(image.shape[-2:])} images do not fit one pass and {type(model).__name__} has no "
            "score map to compute in tiles",
            "raise inference.max_pixels, or use inference.mode=window",
        )
    grid, halo = int(model.reduction), halo_of(model, settings)
    side = int(math.isqrt(settings.max_pixels)) - 2 * halo
    core = (side // grid) * grid
    if core < grid:
        raise ConfigError(
            "inference.max_pixels",
            f"{settings.max_pixels} px leave no room for a tile inside the {halo} px halo",
            f"give at least {(2 * halo + grid) ** 2} px",
        )
    height, width = image.shape[-2:]
    rows = []
    for top, bottom, core_top, core_bottom in tile_spans(height, core, halo):
        row = []
        for left, right, core_left, core_right in tile_spans(width, core, halo):
            crop = (..., slice(top, bottom), slice(left, right))
            tile_map = model.output1_map(image[crop], attention[crop] if attention is not None else None)
            y0, x0 = (core_top - top) // grid, (core_left - left) // grid
            y1 = y0 + (core_bottom // grid - core_top // grid)
            x1 = x0 + (core_right // grid - core_left // grid)
            row.append(tile_map[..., y0:y1, x0:x1].float())
        rows.append(torch.cat(row, dim=-1))
    return torch.cat(rows, dim=-2)


def _full_scores(model, image, attention, settings: InferenceSettings) -> torch.Tensor:

    pixels = image.shape[-2] * image.shape[-1]
    per_pass = max(1, settings.max_pixels // pixels)
    scores = []
    for i in range(0, image.shape[0], per_pass):
        images = image[i : i + per_pass]
        maps = attention[i : i + per_pass] if attention is not None else None
        if pixels > settings.max_pixels:  # one image per pass, in tiles
            scores.append(improved_global_average_pool(tiled_score_map(model, images, maps, settings)))
        else:
            scores.append(image_scores(model, images, maps).float())
    return torch.cat(scores)


def autocast(device: torch.device | str, precision: str):
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    image: torch.Tensor,
    attention: torch.Tensor | None,
    settings: InferenceSettings = InferenceSettings(),
) -> torch.Tensor:
    """Output1 per image, (N, 3, H, W) [+ (N, 1, H, W)] -> (N,) float32, in ``settings.mode``.
    A window mode without a patch (``patch=None``) scores each image in one pass, as ``full``."""
    if settings.channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    with autocast(image.device, settings.precision):
        if settings.mode == "window" and settings.patch is not None:
            return _window_scores(model, image, attention, settings)
        return _full_scores(model, image, attention, settings)


def prepare_model(model: nn.Module, settings: InferenceSettings, device: torch.device) -> nn.Module:
    """A scoring copy of the model on ``device`` in eval mode, its BatchNorms folded into their
    convolutions, in channels-last memory and compiled when asked. The model given keeps its BatchNorms
    (export saves its state after scoring with the copy)."""
    model = model.to(device).eval()
    if any(isinstance(m, MaskAttentionConv) for m in model.modules()):
        model = copy.deepcopy(model)
        for module in model.modules():
            if isinstance(module, MaskAttentionConv):
                module.fold_batch_norm()
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        # fixed input sizes (windows, or one resize for a whole dataset): let cuDNN pick its kernels
        torch.backends.cudnn.benchmark = True
    if settings.compile:
        for name in ("output1", "output1_map"):
            if has_method(model, name):
                setattr(model, name, torch.compile(getattr(model, name), dynamic=False))
    return model
