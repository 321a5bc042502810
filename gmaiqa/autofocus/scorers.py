"""What scores an acquired frame during a search: a classical focus measure (``method=TENG``), a rank
fusion (``method=rank:TENG+GLVN``), a checkpoint or an export (``ckpt=``), or - given neither - gmaiqa's
default scorer (``gmaiqa.default_scorer``). Every scorer returns a clarity, higher = clearer.

``crop``: the share of each side scored, centred (Micro-Manager's OughtaFocus crop factor): a smaller
crop is faster and ignores the field's edges, where vignetting and tilt are worst.

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

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from gmaiqa import default_scorer
from gmaiqa.checkpoints import load_net
from gmaiqa.data.io import to_float_rgb
from gmaiqa.errors import ConfigError, GmaiqaError
from gmaiqa.focus import RankFusion, get_measure


def centre_crop(frame: np.ndarray, share: float) -> np.ndarray:
    if share >= 1:
        return frame
    h, w = frame.shape[:2]
    ch, cw = max(2, round(h * share)), max(2, round(w * share))
    top, left = (h - ch) // 2, (w - cw) // 2
    return frame[top : top + ch, left : left + cw]


def frame_scorer(cfg: DictConfig) -> tuple[Callable[[np.ndarray], float], str]:
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
    score = _measure_scorer(method) if method else _checkpoint_scorer(ckpt, cfg)
    return (lambda frame: score(centre_crop(frame, share))), label or str(method or f"ckpt:{ckpt}")


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


def _checkpoint_scorer(ckpt: str, cfg: DictConfig) -> Callable[[np.ndarray], float]:
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

    def score(frame: np.ndarray) -> float:
        image, amap = preprocess(to_float_rgb(frame))
        attention = amap[None].to(device) if model.uses_attention_map else None
        with torch.no_grad():
            raw = predict_scores(model, image[None].to(device), attention, settings).cpu()
        return float(clarity(raw, meta)[0])

    return score
