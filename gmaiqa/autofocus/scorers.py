"""What scores an acquired frame during a search: a classical focus measure (``method=TENG``), a rank
fusion (``method=rank:TENG+GLVN``), a checkpoint or an export (``ckpt=``), or - given neither - gmaiqa's
default scorer (``gmaiqa.default_scorer``). Every scorer returns a clarity, higher = clearer.

``crop``: the share of each side scored, centred (Micro-Manager's OughtaFocus crop factor): a smaller
crop is faster and ignores the field's edges, where vignetting and tilt are worst.

A checkpoint trained with ``data.normalize=stack`` (the shipped default model among them) z-scores the
images of a stack by the whole stack's statistics, so a defocused image keeps the contrast defocus took
from it. A search has no stack: it acquires one frame at a time. Z-scored by its own statistics, as a
lone image is, a far-defocused frame has its lost contrast restored and its noise magnified, and the
model can score it above the focused one (the default model on the simulated stage: blood and
leucorrhea full scans 4 and 3 of 8 trials within one depth of field, against 7 and 6 once fixed;
experiments/autofocus). So every
frame of one search is z-scored by the statistics of the search's first frame: one affine normaliser for
all of them, as a stack's is, known from the first acquisition on. Blur keeps a frame's mean, so the
first frame's mean is the stack's; its scale differs from the pooled one by a factor common to every
frame. :class:`FrameScorer` holds that reference for one search; :class:`gmaiqa.autofocus.stage.Meter`
starts each search with a fresh one (``for_search``).

A rank fusion ranks the images of a whole stack, which a search does not have: it acquires one frame at
a time and must compare each with the next. Frame by frame, a fusion scores the mean of the logarithms
of its members' values, which orders frames like a rank would in that it is unchanged when any member's
scale changes (log(c v) = log c + log v shifts every frame alike), and needs no other frame. A member
whose value can fall below 0 (VOLA) is refused: its logarithm would be floored on exactly the frames it
finds no detail in, a veto on them rather than one member's vote. A member at 0 (a perfectly flat frame:
no gradient, no variance) scores that frame as the least clear, which it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from gmaiqa import default_scorer
from gmaiqa.checkpoints import load_net
from gmaiqa.data.io import to_float_rgb
from gmaiqa.data.transforms import Statistics, stack_statistics
from gmaiqa.errors import ConfigError, GmaiqaError
from gmaiqa.focus import RankFusion, get_measure


def centre_crop(frame: np.ndarray, share: float) -> np.ndarray:
    if share >= 1:
        return frame
    h, w = frame.shape[:2]
    ch, cw = max(2, round(h * share)), max(2, round(w * share))
    top, left = (h - ch) // 2, (w - cw) // 2
    return frame[top : top + ch, left : left + cw]


@dataclass
class FrameScorer:
    """A frame's clarity during one search: ``score(cropped frame, reference)``, where the reference is
    the z-score statistics of the search's first frame for a stack-normalised checkpoint (``reference``
    true; module docstring) and None otherwise. As made, it is ready for one search; ``for_search()`` is
    the same scorer for a new one, its reference not yet taken."""

    score: Callable[[np.ndarray, Statistics | None], float]
    share: float = 1.0
    reference: bool = False
    _taken: Statistics | None = None  # the search's reference, once its first frame is scored

    def __call__(self, frame: np.ndarray) -> float:
        frame = centre_crop(frame, self.share)
        if self.reference and self._taken is None:
            self._taken = stack_statistics([to_float_rgb(frame)])
        return self.score(frame, self._taken)

    def for_search(self) -> FrameScorer:
        return replace(self, _taken=None)


def frame_scorer(cfg: DictConfig) -> tuple[FrameScorer, str]:
    """(frame -> clarity, the scorer's name) from ``method`` / ``ckpt`` / the default, with ``crop``."""

    method, ckpt, share = cfg.get("method"), cfg.get("ckpt"), float(cfg.get("crop", 1.0))
    if method and ckpt is not None:
        raise ConfigError(
            "method", f"method={method} and ckpt={ckpt} both name what scores", "give one of them, or neither"
        )
    label = None
    if not method and ckpt is None:
        chosen = default_scorer.method()
        label = f"{default_scorer.NAME} ({chosen})"
        method, ckpt = (None, chosen[len("ckpt:") :]) if chosen.startswith("ckpt:") else (chosen, None)
    name = label or str(method or f"ckpt:{ckpt}")
    if method:
        measure = _measure_scorer(method)
        return FrameScorer(lambda frame, _: measure(frame), share), name
    score, stack_normalised = _checkpoint_scorer(ckpt, cfg)
    return FrameScorer(score, share, reference=stack_normalised), name


def _measure_scorer(name: str) -> Callable[[np.ndarray], float]:

    try:
        measure = get_measure(str(name))
    except GmaiqaError as exc:
        raise ConfigError(
            "method", str(exc), "name a measure of `gmaiqa benchmark methods=all_classical`"
        ) from None

    def rgb(frame: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(to_float_rgb(frame)).permute(2, 0, 1)[None]

    if isinstance(measure, RankFusion):
        members = measure.members
        signed = [m.name for m in members if m.signed]
        if signed:
            alone = " or ".join(f"method={n}" for n in signed)
            raise ConfigError(
                "method",
                f"{name}: {', '.join(signed)} can be below 0, and a search fuses a frame's members by the "
                "mean of their logarithms",
                f"leave {', '.join(signed)} out of the fusion, or search with {alone} alone",
            )
        return lambda frame: float(
            np.mean([math.log(max(float(m.clarity(rgb(frame))[0]), 1e-30)) for m in members])
        )
    return lambda frame: float(measure.clarity(rgb(frame))[0])


def _checkpoint_scorer(
    ckpt: str, cfg: DictConfig
) -> tuple[Callable[[np.ndarray, Statistics | None], float], bool]:
    # here, not at import: loads lightning, torchvision, albumentations ... only when this runs
    from gmaiqa.inference import predict_scores, prepare_model
    from gmaiqa.scoring import clarity, device_for, inference_of, preprocess_of, scoring_of

    net, meta = load_net(ckpt)
    if scoring_of(meta) != "window":
        raise ConfigError(
            "ckpt", f"{ckpt} scores in defocus tiles", "use a focus-quality checkpoint or method="
        )
    options = OmegaConf.create({"resize": cfg.get("resize"), "block": None, "inference": {}})
    device = device_for(cfg.get("accelerator", "auto"))
    settings = inference_of(meta, options)
    model = prepare_model(net, settings, device)
    preprocess = preprocess_of(meta, options)

    def score(frame: np.ndarray, reference: Statistics | None) -> float:
        image, amap = preprocess(to_float_rgb(frame), reference)
        attention = amap[None].to(device) if model.uses_attention_map else None
        with torch.no_grad():
            raw = predict_scores(model, image[None].to(device), attention, settings).cpu()
        return float(clarity(raw, meta)[0])

    return score, preprocess.normalize == "stack"
