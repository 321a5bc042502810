"""Scoring z-stacks with a trained checkpoint: one module for every command that does it (``eval``,
``predict``, ``benchmark``) and for the cross-dataset evaluation after training.

Two facts about a checkpoint come from its metadata, recorded by the stage that trained it:

* ``higher_is_better`` - the score direction. A focus-quality network (GMANet, the IQA baselines, SAQM)
  gives higher scores to clearer images; the defocus regressor gives its defocus, lower = clearer.
  :func:`clarity` turns a checkpoint's raw output into "higher = clearer", the only direction the
  metrics (``gmaiqa.metrics.focus``) and the choice of the clearest image know.
* ``scoring`` - how a whole image is scored: ``window`` (the training preprocessing, then the sliding
  window of ``gmaiqa.inference``) or ``defocus_tiles`` (``gmaiqa.defocus_maps``).

Both are the model family's (``gmaiqa.models.registry``); checkpoints written before they were recorded
take them from the family their model config names, with a warning.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Iterator

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from gmaiqa.data.datamodule import FocusStackDataset, collate_group
from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.pixels import pixel_note, pixel_size, size_pair, source_size
from gmaiqa.data.sampling import WholeGroupSampler
from gmaiqa.data.splits import check_split, split_stacks
from gmaiqa.data.stack import FocusStack
from gmaiqa.data.transforms import Preprocess, with_attention
from gmaiqa.defocus_maps import stack_defocus
from gmaiqa.errors import ConfigError
from gmaiqa.inference import InferenceSettings, predict_scores, prepare_model
from gmaiqa.metrics import ClearestSelection, GroupSROCC, group_outcome, spearman
from gmaiqa.models.registry import SCORINGS, family_of_config


def _recorded_family(meta: dict):
    return family_of_config(dict(meta.get("model") or {}))


def higher_is_better(meta: dict) -> bool:
    if "higher_is_better" in meta:
        return bool(meta["higher_is_better"])
    family = _recorded_family(meta)
    warnings.warn(
        f"this checkpoint does not record its score direction (written before it was recorded); "
        f"taking higher_is_better={family.higher_is_better} from its model family {family.name!r}",
        UserWarning,
        stacklevel=2,
    )
    return family.higher_is_better


def scoring_of(meta: dict) -> str:
    kind = meta.get("scoring") or _recorded_family(meta).scoring
    if kind not in SCORINGS:
        raise ConfigError(
            "ckpt",
            f"the checkpoint asks for scoring {kind!r}, which this gmaiqa does not know",
            f"use a gmaiqa version that scores {kind!r} images (known: {list(SCORINGS)})",
        )
    return kind


def clarity(raw: torch.Tensor, meta: dict) -> torch.Tensor:
    """A checkpoint's raw scores as clarity: higher = clearer."""
    return raw if higher_is_better(meta) else -raw


def reading_options(node) -> dict:
    """How a command reads a dataset beyond ``validate``: ``allow_outside``, ``uniform_sizes``, and the
    ``channel`` / ``t`` of stack files holding several."""
    return {
        "allow_outside": bool(node.get("allow_outside", False)),
        "uniform_sizes": str(node.get("uniform_sizes", "require")),
        "channel": node.get("channel"),
        "t": node.get("t"),
    }


def device_for(accelerator: str) -> torch.device:
    """The torch device a command runs on: CUDA when asked for (or auto) and present, else CPU."""
    return torch.device(
        "cuda" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"
    )


def split_seed_of(data: DictConfig, default: int) -> int:
    """``data.split_seed``, or the old ``data.seed`` (read for one more release, with a message)."""
    if data.get("seed") is not None:
        warnings.warn(
            "data.seed is deprecated for choosing the split and will be removed in the next release: "
            "use data.split_seed",
            FutureWarning,
            stacklevel=2,
        )
        if data.get("split_seed") is None:
            return int(data.seed)
    return int(data.split_seed) if data.get("split_seed") is not None else int(default)


def labelled_stacks(root, validate: str, split: str, ratios, split_seed: int, **reading) -> list[FocusStack]:
    """The labelled groups of a dataset (all, or one split made as in training) for scoring methods;
    ``reading``: ``allow_outside``, ``uniform_sizes`` of :func:`gmaiqa.data.dataset.load_dataset`."""
    check_split(split)
    stacks = load_dataset(root, validate=validate, **reading)
    if split != "all":
        stacks = split_stacks(stacks, tuple(ratios), split_seed)[split]
    unlabelled = [s.group for s in stacks if not s.labelled]
    if unlabelled:
        raise ConfigError(
            "data.root",
            f"groups without a clearest image: {unlabelled[:5]}",
            "scoring needs labels (score or clearest column); use `gmaiqa predict` for unlabelled stacks",
        )
    if not stacks:
        raise ConfigError("split", f"no groups in split {split!r}", "use split=all or another split")
    return stacks


NATIVE = "native"  # resize=native: score the images at their own size, whatever the checkpoint's resize


def preprocess_of(meta: dict, cfg: DictConfig) -> Preprocess:
    """The training run's preprocessing, from the checkpoint's data config (older checkpoints kept the
    attention map's kind and φ in their model config)."""
    data = meta["data"]
    given = cfg.get("resize")
    if isinstance(given, str):
        if given != NATIVE:
            raise ConfigError(
                "resize", f"{given!r} is not a size", "use resize=[H,W], resize=native, or leave it out"
            )
        resize = None  # the images' own pixels
    else:
        resize = given or data.get("resize")
    amap = meta["model"].get("attention_map") or {"kind": "local_max", "block": [32, 32]}
    kind, block = data.get("attention") or amap["kind"], data.get("block") or amap["block"]
    block = cfg.get("block") or block  # the paper evaluates leucorrhea at 768x1152 with φ 8x8 (§4.3)
    normalize = data.get("normalize") or "image"  # checkpoints before data.normalize: the paper's
    return Preprocess(size_pair(resize, "resize"), kind, size_pair(block, "block", smallest=2), normalize)


def inference_of(meta: dict, cfg: DictConfig):
    """The checkpoint's recorded inference settings with the command's ``inference.*`` on top."""

    recorded = InferenceSettings.from_mapping(meta.get("inference"), warn=False)
    return recorded.overridden(
        OmegaConf.to_container(cfg.inference, resolve=True) if cfg.get("inference") else {}
    )


def loader_for(stacks, preprocess: Preprocess, num_workers: int) -> DataLoader:
    dataset = FocusStackDataset(stacks, preprocess, crop=None, random_crop=False, maps_on_device=True)
    return DataLoader(
        dataset,
        batch_sampler=WholeGroupSampler([len(s) for s in stacks]),
        collate_fn=collate_group,
        num_workers=num_workers,
    )


def resize_note(stacks, preprocess: Preprocess, asked: bool = False) -> str | None:
    """What the resize does to these images, when it changes their size (say it, never shrink an
    8000x8000 frame silently): the checkpoint's, or (``asked``) the command's ``resize=``."""

    if preprocess.resize is None:
        return None
    target = tuple(preprocess.resize)
    sizes = Counter(source_size(s) for s in stacks)
    changed = {size: n for size, n in sizes.items() if size != target}
    if not changed:
        return None
    largest = max(changed, key=lambda size: size[0] * size[1])
    groups = ", ".join(f"{n} group{'s' * (n > 1)} of {h}x{w}" for (h, w), n in sorted(changed.items()))
    factor = largest[0] / target[0]
    change = f"shrunk {factor:.1f}x" if factor >= 1 else f"enlarged {1 / factor:.1f}x"
    if asked:
        return (
            f"images are resized to {target[0]}x{target[1]} as resize= asks ({groups}; the largest "
            f"{change} per side)"
        )
    return (
        f"images are resized to {target[0]}x{target[1]}, the size the checkpoint was trained at ({groups}; "
        f"the largest {change} per side). resize=[H,W] scores them at another size, resize=native at their "
        "own (inference.mode=full scores large frames in tiles)"
    )


def score_groups(
    net, meta: dict, stacks, cfg: DictConfig, device, desc: str = "score"
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (group index, the checkpoint's raw image scores) for every group, scored the checkpoint's
    way (``window``: its preprocessing and sliding window, overridable by cfg.resize / cfg.block /
    cfg.inference; ``defocus_tiles``: its tile geometry); a progress bar shows the groups."""

    if scoring_of(meta) == "defocus_tiles":
        for index, stack in enumerate(tqdm(stacks, unit="group", desc=desc)):
            yield index, stack_defocus(net, meta, stack, device)[1]
        return

    settings = inference_of(meta, cfg)
    net = prepare_model(net, settings, device)
    preprocess = preprocess_of(meta, cfg)

    default_pixel = pixel_size(cfg.get("pixel_um"), "pixel_um")
    for note in (
        resize_note(stacks, preprocess, asked=cfg.get("resize") is not None),
        pixel_note(stacks, preprocess.resize, meta.get("pixel_um"), default_pixel),
    ):
        if note:
            print(f"{desc}: {note}", file=sys.stderr)
    for batch in tqdm(
        loader_for(stacks, preprocess, cfg.num_workers), total=len(stacks), unit="group", desc=desc
    ):
        attention = None
        if net.uses_attention_map:
            batch["attention_context"] = batch["attention_context"].to(device)
            attention = with_attention(batch)["attention"]
        scores = predict_scores(net, batch["image"].to(device), attention, settings)
        yield batch["group"], scores.cpu()


class GroupMetrics:
    """t0, t1, acc, SROCC and z-error over scored groups (GMANet §4.2), from clarity (higher = clearer),
    with the same metric code as training; keeps one row per group for per_group.csv."""

    def __init__(self):
        self.selection, self.srocc, self.rows = ClearestSelection(), GroupSROCC(), []

    def update(self, stack: FocusStack, clear: torch.Tensor, raw: torch.Tensor | None = None) -> None:
        clear = clear.detach().cpu().double()
        self.selection.update(
            clear, stack.clearest, torch.from_numpy(stack.z_um) if stack.z_um is not None else None
        )
        outcome = group_outcome(clear, stack.clearest)
        row = {
            "group": stack.group,
            "predicted_scores": (clear if raw is None else raw.detach().cpu()).tolist(),
            "predicted_clearest": outcome.predicted,
            "annotated_clearest": outcome.annotated,
            "offset": outcome.offset,
        }
        if stack.scores is not None:
            annotated = torch.from_numpy(stack.scores).double()
            self.srocc.update(clear, annotated)
            row.update(srocc=spearman(clear, annotated), annotated_scores=annotated.tolist())
        self.rows.append(row)

    def compute(self) -> dict:
        metrics = {k: float(v) for k, v in self.selection.compute().items()}
        for key in ("t0", "t1", "groups"):
            metrics[key] = int(metrics[key])
        if self.srocc.count > 0:
            metrics["srocc"] = float(self.srocc.compute())
        return metrics


def test_checkpoint(net, meta: dict, stacks, options: DictConfig) -> tuple[dict, list[dict]]:
    """A loaded checkpoint's (``load_net``) test figures (t0, t1, acc, SROCC, z-error) and per-group rows
    on ``stacks``, scored its way (:func:`score_groups`) in its direction (:func:`clarity`); ``options``
    (accelerator, num_workers, resize, block, inference) may override its preprocessing."""
    device = device_for(options.accelerator)
    net.to(device)
    metrics = GroupMetrics()
    for index, raw in score_groups(net, meta, stacks, options, device, desc="evaluate"):
        metrics.update(stacks[index], clarity(raw, meta), raw)
    return metrics.compute(), metrics.rows
