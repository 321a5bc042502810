"""Checkpoints carry what is needed to use the network again without the training config:
the model config, the preprocessing it was trained with, the sliding-window settings, the stage and
the W&B run id (key ``gmaiqa`` of a Lightning checkpoint)."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import nn

from gmaiqa.errors import ConfigError

META_KEY = "gmaiqa"


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("ckpt", f"{path} does not exist", "pass ckpt=PATH to a .ckpt written by `gmaiqa train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ConfigError("ckpt", f"{path} is not a readable checkpoint ({type(exc).__name__})", "point at a .ckpt file") from None
    if META_KEY not in ckpt:
        raise ConfigError("ckpt", f"{path} was not written by `gmaiqa train` (no '{META_KEY}' entry)", "use a gmaiqa checkpoint")
    return ckpt


def net_state(ckpt: dict) -> dict:
    return {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}


def load_net(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the network of a checkpoint (no download, no warning about random init) and its meta."""
    import warnings

    ckpt = read_checkpoint(path)
    meta = ckpt[META_KEY]
    model_cfg = dict(meta["model"])
    if isinstance(model_cfg.get("backbone"), dict):
        model_cfg["backbone"] = {**model_cfg["backbone"], "weights_path": None, "download": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # weights come from the checkpoint, not ImageNet
        net = instantiate(model_cfg)
    net.load_state_dict(net_state(ckpt), strict=True)
    return net.eval(), meta


def init_weights_from(net: nn.Module, path: str | Path) -> dict:
    """``init_from``: start a new stage from earlier weights, strictly (GMANet §3.4: L1 from L0)."""
    ckpt = read_checkpoint(path)
    try:
        net.load_state_dict(net_state(ckpt), strict=True)
    except RuntimeError as exc:
        raise ConfigError("init_from", f"{path} does not fit this model ({str(exc)[:300]})",
                          "init_from needs a checkpoint of the same backbone and auxiliary outputs") from None
    return ckpt[META_KEY]
