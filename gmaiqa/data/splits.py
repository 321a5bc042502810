"""Group-level train / val / test splits (GMANet §4.1: 0.6 / 0.2 / 0.2 by image group).

Images of one group never land in two splits: the rank loss compares images within a group, and a
group seen in training would leak into evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gmaiqa.data.stack import FocusStack
from gmaiqa.errors import ConfigError, GmaiqaError, did_you_mean
from gmaiqa.schemas.commands import Split

SPLITS = ("train", "val", "test")
PAPER_RATIOS = (0.6, 0.2, 0.2)


class SplitError(GmaiqaError):
    pass


def valid_ratios(ratios: Sequence[float]) -> bool:
    """Three non-negative train / val / test shares summing to 1."""
    return len(ratios) == 3 and min(ratios) >= 0 and math.isclose(sum(ratios), 1.0, abs_tol=1e-6)


def seeded_split(
    groups: Sequence[str], ratios: Sequence[float] = PAPER_RATIOS, seed: int = 0
) -> dict[str, list[str]]:
    """Shuffle group names with ``seed`` and cut them by ``ratios`` (train and val rounded down, as
    the paper's 1036 groups -> 621 / 207 / 208). Independent of the input order."""
    if not valid_ratios(ratios):
        raise SplitError(
            f"data.split_ratios must be three non-negative numbers summing to 1, got {list(ratios)}"
        )
    names = sorted(set(groups))
    if len(names) != len(groups):
        raise SplitError("group names must be unique")
    order = np.random.default_rng(seed).permutation(len(names))
    shuffled = [names[i] for i in order]
    n = len(shuffled)
    n_train = math.floor(ratios[0] * n + 1e-9)
    n_val = math.floor(ratios[1] * n + 1e-9)
    # A requested split never ends up empty while there are groups to spare.
    if ratios[1] > 0 and n_val == 0 and n - n_train >= 2:
        n_val = 1
    if ratios[0] > 0 and n_train == 0 and n >= 3:
        n_train = 1
    return {
        "train": shuffled[:n_train],
        "val": shuffled[n_train : n_train + n_val],
        "test": shuffled[n_train + n_val :],
    }


def split_stacks(
    stacks: Sequence[FocusStack], ratios: Sequence[float] = PAPER_RATIOS, seed: int = 0
) -> dict[str, list[FocusStack]]:
    """Use the manifest's ``split`` column when every group has one, else a seeded split."""
    given = [s.split for s in stacks]
    if all(given):
        by_name = {name: [s.group for s in stacks if s.split == name] for name in SPLITS}
    elif any(given):
        missing = [s.group for s in stacks if not s.split][:5]
        raise SplitError(
            f"the manifest's split column is filled for some groups but not for {missing}...; "
            "fill it for every group or leave it empty everywhere to split by seed"
        )
    else:
        by_name = seeded_split([s.group for s in stacks], ratios, seed)
    assert_disjoint(by_name)
    index = {s.group: s for s in stacks}
    return {name: [index[g] for g in by_name[name]] for name in SPLITS}


def assert_disjoint(splits: dict[str, Sequence[str]]) -> None:
    seen: dict[str, str] = {}
    for name, groups in splits.items():
        for group in groups:
            if group in seen and seen[group] != name:
                raise SplitError(f"group {group!r} is in both {seen[group]!r} and {name!r}")
            seen[group] = name


SPLIT_CHOICES = tuple(s.value for s in Split)  # the schema's choices (gmaiqa.schemas.commands)


def check_split(split: str) -> None:
    """A command's ``split=``: all groups, or one split as training makes it."""

    if split not in SPLIT_CHOICES:
        raise ConfigError(
            "split",
            f"no split {split!r}{did_you_mean(str(split), SPLIT_CHOICES)}",
            f"use one of {list(SPLIT_CHOICES)}",
        )
