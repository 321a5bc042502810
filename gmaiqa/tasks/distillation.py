"""Ranking distillation: a trained scorer's within-stack ranking as a second training target.

``task.distill={teacher: default, weight: 1.0}`` adds to the GMANet loss (§3.3, which stays as it is)
a term that asks the student's Output1 to order the images of each group batch as the teacher orders
the same crops:

    L_distill = 1/|P| · Σ_{(i,j) ∈ P} smoothL1((ŝ_i - ŝ_j) - (t_i - t_j)),    P = every pair i < j

ŝ the student's Output1 scores, t the teacher's, both on the paper's 0-100 scale. It is Eq. 11 of the
paper with the teacher's gaps in place of the labels' and every pair in place of "clearest against the
others": the synthetic labels say only how far each plane is from focus, and a teacher that learnt a
cue they do not spell out (issue 32: the shipped VGG16-BN's picks on thick specimens, which no light
trunk has learnt from the labels) passes it on through the order it gives every pair. Gaps, not the
scores themselves, so that a student is free to keep its own offset, as the ranking metrics are.

``task.distill.groups`` (optional: a glob or a list of globs over group names, e.g. ``'*-feces/*'`` for
a synthetic mixture's feces members, whose groups are named ``<i>-<preset>/<group>``) limits the term
to the batches of the matching groups; the others train on the GMANet loss alone. It is for a teacher
that is better than the student on some kinds of specimen only (issue 32: the shipped VGG16-BN leads
on thick specimens and trails the light runs on fluorescence), so that the student keeps its own
order where it is already the better one. A pattern that matches no training group is refused when
training starts, naming a few of the groups there are.

Only Output1 learns from the teacher: a ``weights`` file (the shipped default model) holds Output1's
path alone, and Output1 is what scoring uses. The teacher must have been trained on the same inputs
(normalisation, attention map kind and φ); :func:`check_teacher` refuses any other before the run
folder exists. Its forward pass runs under ``torch.no_grad`` in eval mode on every training step, under
the trainer's precision like the student's (Output1 is pooled in float32 either way: the scores are
float32, the score map's rounding is bf16's under bf16-mixed). The shipped VGG16-BN's pass costs 1.5x
a whole MobileNetV3 training step in fp32 on a 7x128x192 batch on a 2-core AMX Xeon and 1.7x on an
AVX2 CPU (``benchmarks/bench_train_step.py --teacher default``), so a distilled step costs about 2.5
plain ones, which is why the recipe that uses it (``experiment=default_model_mobile_distill``)
fine-tunes a trained light model rather than training one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from gmaiqa.errors import ConfigError, did_you_mean

KEY = "task.distill"
SETTINGS = ("teacher", "weight", "groups")


class DistillSettings(NamedTuple):
    teacher: str
    weight: float
    groups: tuple[str, ...] | None = None  # globs over group names; None: every group


def ranking_distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean smooth-L1 distance between the student's and the teacher's score gap over every pair."""
    if student.shape != teacher.shape or student.ndim != 1 or student.numel() < 2:
        raise ValueError(
            f"ranking distillation needs two equal 1-D score vectors of >= 2 images, got "
            f"{tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    i, j = torch.triu_indices(student.numel(), student.numel(), offset=1, device=student.device)
    return F.smooth_l1_loss(student[i] - student[j], (teacher[i] - teacher[j]).to(student.dtype), beta=1.0)


def distill_key(cfg: Mapping, stage: Mapping) -> str:
    """Where a stage's distillation settings were written, as an override names them: the stage's own
    ``stages.N.task.distill`` where it sets one, else the job's ``task.distill``."""
    if "distill" not in (stage.get("task") or {}):
        return KEY
    index = next(i for i, other in enumerate(cfg["stages"]) if other["name"] == stage["name"])
    return f"stages.{index}.{KEY}"


def distill_settings(distill: Mapping | None, key: str = KEY) -> DistillSettings | None:
    """The settings of a ``task.distill`` node, or None where it is off (null or absent)."""
    if distill is None:
        return None
    if not isinstance(distill, Mapping):
        raise ConfigError(
            key, f"{distill!r} is not a mapping", f"e.g. '{key}={{teacher: default, weight: 1.0}}'"
        )
    unknown = sorted(set(distill) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}",
            "is not a distillation setting" + did_you_mean(unknown[0], SETTINGS),
            f"its keys: {', '.join(SETTINGS)}",
        )
    teacher = distill.get("teacher")
    if not teacher:
        raise ConfigError(
            f"{key}.teacher",
            "is missing",
            "name a checkpoint, a finished run folder, or default (the shipped model)",
        )
    weight = distill.get("weight", 1.0)
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        weight = float("nan")
    if not weight > 0 or weight == float("inf"):
        raise ConfigError(f"{key}.weight", f"{distill.get('weight')!r} is not a positive number", "e.g. 1.0")
    return DistillSettings(str(teacher), weight, _group_patterns(distill.get("groups"), f"{key}.groups"))


def _group_patterns(groups: object, key: str) -> tuple[str, ...] | None:
    if groups is None:
        return None
    patterns = [groups] if isinstance(groups, str) else groups
    if (
        isinstance(patterns, Sequence)
        and patterns
        and all(isinstance(p, str) and p.strip() for p in patterns)
    ):
        return tuple(patterns)
    raise ConfigError(
        key,
        f"{groups!r} is not a group-name glob or a non-empty list of them",
        f"e.g. '{key}=[\"*-feces/*\"]', or leave it out to distil on every group",
    )


def _inputs(meta: Mapping) -> dict:
    """What a scorer's inputs depend on, from its recorded config: the normalisation and the attention
    map (kind and φ), as ``gmaiqa.scoring.preprocess_of`` reads them."""
    data, model = meta.get("data") or {}, meta.get("model") or {}
    amap = model.get("attention_map") or {"kind": "local_max", "block": [32, 32]}
    return {
        "data.normalize": data.get("normalize") or "image",
        "attention kind": data.get("attention") or amap.get("kind"),
        "attention block": list(data.get("block") or amap.get("block")),
    }


def check_teacher(teacher_meta: Mapping, student_meta: Mapping, teacher: str, key: str = KEY) -> None:
    """The teacher scores Output1, higher for clearer, on the inputs the student trains on."""
    if teacher_meta.get("family", "gmanet") != "gmanet" or not teacher_meta.get("higher_is_better", True):
        raise ConfigError(
            f"{key}.teacher",
            f"{teacher} is a {teacher_meta.get('family')} model, not a GMANet focus scorer",
            "name a GMANet checkpoint or weights file (default: the shipped model)",
        )
    theirs, ours = _inputs(teacher_meta), _inputs(student_meta)
    differ = [k for k in ours if theirs[k] != ours[k]]
    if differ:
        raise ConfigError(
            f"{key}.teacher",
            f"{teacher} was trained on other inputs: "
            + ", ".join(f"{k} {theirs[k]} (here {ours[k]})" for k in differ),
            "train the student with the teacher's settings, or name a teacher trained with these",
        )


def check_distillation(task: Mapping, student_meta: Mapping, key: str = KEY) -> None:
    """Before the run folder exists: a ``task.distill`` node's settings, and a teacher that can be read
    and was trained on the student's inputs (its metadata only; the weights load when training starts)."""
    settings = distill_settings(task.get("distill"), key)
    if settings is None:
        return
    # here, not at import: gmaiqa.checkpoints loads torch
    from gmaiqa.checkpoints import META_KEY, read_checkpoint

    teacher = settings[0]
    check_teacher(read_checkpoint(teacher, f"{key}.teacher")[META_KEY], student_meta, teacher, key)


@dataclass(eq=False)
class Teacher:
    """A frozen scorer outside the student's module tree: not a parameter, not in the student's
    checkpoints or state dict, not averaged by weight averaging (a deep copy shares it), moved to the
    batch's device on first use."""

    net: nn.Module
    settings: DistillSettings
    key: str = KEY  # where the settings were written (a stage's own: stages.N.task.distill), for messages

    @classmethod
    def load(cls, settings: DistillSettings, *, student_meta: Mapping, key: str = KEY) -> Teacher:
        # here, not at import: gmaiqa.checkpoints imports the exported runtimes
        from gmaiqa.checkpoints import load_net

        net, meta = load_net(settings.teacher, key=f"{key}.teacher")
        check_teacher(meta, student_meta, settings.teacher, key)
        for p in net.parameters():
            p.requires_grad_(False)
        return cls(net.eval(), settings, key)

    def teaches(self, group: str) -> bool:
        """Whether the term applies to a batch of this group (``task.distill.groups``)."""
        groups = self.settings.groups
        return groups is None or any(fnmatchcase(group, p) for p in groups)

    def check_groups(self, training_groups: Sequence[str]) -> None:
        """Refuses patterns that match none of the training groups: the term would silently never
        apply."""
        groups = self.settings.groups
        if groups is None or any(self.teaches(g) for g in training_groups):
            return
        shown = ", ".join(list(training_groups)[:4]) or "none"
        raise ConfigError(
            f"{self.key}.groups",
            f"{list(groups)} matches none of the {len(training_groups)} training groups (e.g. {shown})",
            "write globs over those names (a mixture's are <i>-<preset>/<group>), or leave it out",
        )

    def __deepcopy__(self, memo: dict) -> Teacher:
        return self

    @torch.no_grad()
    def scores(self, image: torch.Tensor, attention: torch.Tensor | None) -> torch.Tensor:
        parameter = next(self.net.parameters(), None)
        if parameter is not None and parameter.device != image.device:
            self.net.to(image.device)
        self.net.eval()
        return self.net(image, attention)["output1"].float()

    def record(self) -> dict:
        """What the checkpoint's metadata keeps (``distill``): the settings, ``groups`` only where set."""
        teacher, weight, groups = self.settings
        return {"teacher": teacher, "weight": weight, **({} if groups is None else {"groups": list(groups)})}
