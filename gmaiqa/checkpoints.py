"""Checkpoints carry what is needed to use the network again without the training config:
the model config, the preprocessing it was trained with, the sliding-window settings, the stage and
the W&B run id (key ``gmaiqa`` of a Lightning checkpoint)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from gmaiqa import default_model
from gmaiqa.errors import ConfigError, instantiate
from gmaiqa.exported import exported_format, load_exported, read_exported_meta
from gmaiqa.job import DONE

META_KEY = "gmaiqa"


def checkpoint_path(path: str | Path, key: str = "ckpt") -> Path:
    """The checkpoint file ``path`` names: a ``.ckpt`` file, a finished run or stage folder (the
    checkpoint its ``done.json`` records: the final stage's selected one for a run), or ``default``:
    gmaiqa's shipped default model (``gmaiqa.default_model``)."""

    if str(path) == default_model.NAME:
        return default_model.default_model_path(key)
    if str(path).startswith(WANDB_PREFIX):
        return wandb_artifact_checkpoint(str(path)[len(WANDB_PREFIX) :], key)
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / DONE).is_file():
            return Path(json.loads((path / DONE).read_text())["checkpoint"])
        found = sorted(path.glob("**/checkpoints/*.ckpt"))[:3]
        listing = f" (it holds {[str(p) for p in found]})" if found else ""
        raise ConfigError(
            key,
            f"{path} is a folder without done.json, not a finished run or stage{listing}",
            "give a .ckpt file, or the folder of a finished run",
        )
    raise ConfigError(
        key,
        f"{path} does not exist",
        "give a .ckpt written by `gmaiqa train`, or the folder of a finished run",
    )


WANDB_PREFIX = "wandb:"


def wandb_artifact_checkpoint(reference: str, key: str = "ckpt") -> Path:
    """``ckpt=wandb:ENTITY/PROJECT/NAME:ALIAS``: the checkpoint of a model artifact a training stage
    logged (``gmaiqa.stages.log_model_artifact``), downloaded once into ``./artifacts``."""
    try:
        import wandb

        artifact = wandb.Api().artifact(reference, type="model")
        folder = Path(artifact.download())
    except Exception as exc:  # no network, no login, no such artifact: the client raises many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            key,
            f"cannot fetch the W&B model artifact {reference!r} ({reason[:160]})",
            "log in and go online (`wandb login`), check ENTITY/PROJECT/NAME:ALIAS, or give the .ckpt file "
            "itself (the artifact's metadata names it)",
        ) from None
    files = sorted(folder.glob("*.ckpt"))
    if len(files) != 1:
        raise ConfigError(key, f"the artifact {reference!r} holds {len(files)} .ckpt files", "name the file")
    return files[0]


def read_checkpoint(path: str | Path, key: str = "ckpt") -> dict:
    """A checkpoint's contents; for a file ``gmaiqa export`` wrote, its metadata alone."""

    path = checkpoint_path(path, key)
    fmt = exported_format(path)
    if fmt is not None:
        return {META_KEY: read_exported_meta(path, fmt), "exported": fmt}
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            key,
            f"{path} is truncated or corrupt: it cannot be read as a checkpoint ({reason[:160]})",
            "copy it again from where training wrote it, or pick another checkpoint",
        ) from None
    if not isinstance(ckpt, dict) or META_KEY not in ckpt:
        raise ConfigError(
            key,
            f"{path} was not written by `gmaiqa train` (no '{META_KEY}' entry)",
            "use a gmaiqa checkpoint",
        )
    return ckpt


def trained_precision(path: str | Path | None) -> str | None:
    """The Lightning precision a stage's checkpoint was trained in (``gmaiqa.stages`` records it in its
    meta), so a resumed stage can keep it; None for no checkpoint, or one written before it was kept.
    The file was just tested whole (``resume_point``); mmap reads the meta without the tensors."""
    if path is None:
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    return (ckpt.get(META_KEY) or {}).get("trainer_precision")


def net_state(ckpt: dict) -> dict:
    return {k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}


def load_net(path: str | Path, key: str = "ckpt") -> tuple[nn.Module, dict]:
    """Rebuild the network of a checkpoint (no download, no warning about random init) and its meta;
    a file ``gmaiqa export`` wrote loads as its runtime (``gmaiqa.exported.ExportedNet``)."""

    ckpt = read_checkpoint(path, key)
    meta = ckpt[META_KEY]
    if "exported" in ckpt:
        return load_exported(checkpoint_path(path, key), ckpt["exported"])
    model_cfg = dict(meta["model"])
    if isinstance(model_cfg.get("backbone"), dict):
        model_cfg["backbone"] = {**model_cfg["backbone"], "weights_path": None, "download": False}
    if "weights_path" in model_cfg:  # an encoder built directly (the defocus regressor)
        model_cfg.update(weights_path=None, download=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # weights come from the checkpoint, not ImageNet
        net = instantiate(model_cfg)
    net.load_state_dict(net_state(ckpt), strict=True)
    return net.eval(), meta


def init_weights_from(net: nn.Module, path: str | Path) -> dict:
    """``init_from``: start a new stage from earlier weights (GMANet §3.4: L1 from L0). A checkpoint
    loads strictly; a ``weights`` file (``gmaiqa export format=weights``, the shipped default model
    included) holds Output1's path alone, which loads strictly into that path while the auxiliary
    outputs (aggregation module, heads 2 and 3) start fresh: fine-tuning an exported model on one's
    own stacks. TorchScript and ONNX graphs hold no trainable weights and are refused."""
    ckpt = read_checkpoint(path, "init_from")
    if ckpt.get("exported") == "weights":
        return _init_output1_from_weights(net, Path(path), ckpt[META_KEY])
    if "exported" in ckpt:
        raise ConfigError(
            "init_from",
            f"{path} is an exported {ckpt['exported']} model (a graph, no trainable weights)",
            "start from the .ckpt it was exported from, or a file `gmaiqa export format=weights` wrote",
        )
    state = net_state(ckpt)
    _refuse_non_finite(state, path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(
            "init_from",
            f"{path} does not fit this model ({str(exc)[:300]})",
            "init_from needs a checkpoint of the same backbone and auxiliary outputs",
        ) from None
    return ckpt[META_KEY]


def _refuse_non_finite(state: dict, path: str | Path) -> None:
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise ConfigError(
            "init_from",
            f"{path} holds non-finite weights ({len(broken)} of {len(state)} tensors, e.g. {broken[0]})",
            "start from a checkpoint of a stage that trained without NaN (its selected best-EEE.ckpt)",
        )


def _init_output1_from_weights(net: nn.Module, path: Path, meta: dict) -> dict:
    from gmaiqa.exported import weights_state

    state = {k: v.float() if v.is_floating_point() else v for k, v in weights_state(path).items()}
    _refuse_non_finite(state, path)
    output1 = net.without_auxiliary_outputs() if hasattr(net, "without_auxiliary_outputs") else net
    wanted = output1.state_dict()
    wrong = sorted(set(state) ^ set(wanted)) + sorted(
        k for k in set(state) & set(wanted) if state[k].shape != wanted[k].shape
    )
    if wrong:
        trained = meta.get("model", {}).get("backbone")
        raise ConfigError(
            "init_from",
            f"{path} does not fit this model's Output1 path ({len(wrong)} tensors differ, e.g. "
            f"{wrong[0]}; the file's model: {trained})",
            "give the model config the weights were trained with (backbone, heads, attention depth)",
        )
    net.load_state_dict(state, strict=False)
    fresh = len(net.state_dict()) - len(state)
    print(
        f"init_from: Output1's {len(state)} tensors from {path}"
        + (f"; the auxiliary outputs' {fresh} start fresh" if fresh else "")
    )
    return meta


def resolve_init_from(path: str | Path | None, seed: int) -> str | None:
    """``init_from`` may name a checkpoint, ``default`` (the shipped model's weights file), a finished
    run directory (its final best checkpoint) or a finished multirun directory, where the job with the
    same ``seed`` is taken - so a sweep over seeds reuses the L0 of its own round, as the paper's
    ablations do."""

    if not path:
        return None
    if str(path) == default_model.NAME:
        return str(default_model.default_model_path("init_from"))
    path = Path(path)
    if path.is_file():
        return str(path)
    if not path.is_dir():
        raise ConfigError(
            "init_from",
            f"{path} does not exist",
            "pass a .ckpt, a finished run directory or a multirun directory",
        )
    if (path / DONE).is_file():
        return json.loads((path / DONE).read_text())["checkpoint"]
    jobs = {d: json.loads((d / DONE).read_text()) for d in sorted(path.iterdir()) if (d / DONE).is_file()}
    same_seed = [(d, job) for d, job in jobs.items() if job.get("seed") == seed]
    if len(same_seed) == 1:
        return same_seed[0][1]["checkpoint"]
    if not same_seed:
        seeds = sorted({job.get("seed") for job in jobs.values()})
        raise ConfigError(
            "init_from",
            f"no finished job with seed {seed} in {path} (finished seeds: {seeds})",
            "finish that job first, or pass the checkpoint itself",
        )
    raise ConfigError(
        "init_from",
        f"{len(same_seed)} finished jobs with seed {seed} in {path}: {[d.name for d, _ in same_seed]}",
        "pass the run directory or checkpoint of the one to start from",
    )
