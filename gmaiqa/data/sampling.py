"""Group batches: one group's clearest image plus ``batch_size - 1`` others drawn from the same group.

GMANet §3.4 / §4.1: "In each iteration, one image group was selected from the training set, and then
the clearest image was picked and batch-1 images were randomly chosen" (batch 7). The rank loss
(Eq. 11) needs the clearest image in every batch.

Determinism: the order of groups and the images drawn depend only on (seed, epoch), never on the
number of workers. Under DDP each rank takes every ``world_size``-th group of the same permutation,
so ranks see different groups and no group appears twice in an epoch (the tail that does not divide
evenly is left out of that epoch, and a different tail is left out next epoch).

Resume: ``state_dict`` / ``load_state_dict`` hold (epoch, batches already consumed); the next
iteration skips those batches, so a run resumed mid-epoch sees exactly the batches it had left.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler


@dataclass(frozen=True)
class SampleKey:
    """What a dataset item needs: which image, and the seed of its batch's crop/augmentation draw."""

    group: int  # index into the stacks list
    image: int  # index within the group, capture order
    draw_seed: int
    position: int  # position within the batch (0 = the clearest)


class GroupBatchSampler(Sampler[list[SampleKey]]):
    def __init__(
        self,
        group_sizes: Sequence[int],
        clearest: Sequence[int],
        batch_size: int = 7,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if batch_size < 2:
            raise ValueError(
                f"data.batch_size={batch_size}: a group batch needs the clearest image and at least one other"
            )
        if len(group_sizes) != len(clearest):
            raise ValueError("group_sizes and clearest differ in length")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside world size {num_replicas}")
        for i, (n, c) in enumerate(zip(group_sizes, clearest)):
            if c is None or not 0 <= c < n:
                raise ValueError(
                    f"group #{i} has no clearest image inside its {n} images; "
                    "training groups must be labelled"
                )
        self.group_sizes = list(group_sizes)
        self.clearest = list(clearest)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self._skip = 0
        if len(self.group_sizes) < num_replicas:
            raise ValueError(f"{len(self.group_sizes)} training groups cannot feed {num_replicas} processes")

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.group_sizes) // self.num_replicas

    def _group_order(self) -> np.ndarray:
        n = len(self.group_sizes)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def batch(self, group: int) -> list[SampleKey]:
        """The batch drawn for ``group`` in the current epoch (deterministic)."""
        rng = np.random.default_rng([self.seed, self.epoch, group])
        size, best = self.group_sizes[group], self.clearest[group]
        others = np.array([i for i in range(size) if i != best])
        take = min(self.batch_size - 1, len(others))
        chosen = rng.choice(others, size=take, replace=False) if self.shuffle else others[:take]
        draw_seed = int(rng.integers(2**31))
        images = [best, *sorted(int(i) for i in chosen)]
        return [SampleKey(group, img, draw_seed, pos) for pos, img in enumerate(images)]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        order = self._group_order()[: len(self) * self.num_replicas]
        mine = order[self.rank :: self.num_replicas]
        skip, self._skip = self._skip, 0
        for group in mine[skip:]:
            yield self.batch(int(group))

    def state_dict(self, batches_consumed: int = 0) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "batches_consumed": int(batches_consumed)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(
                f"checkpoint sampler seed {state['seed']} differs from the configured seed {self.seed}"
            )
        self.epoch = int(state["epoch"])
        self._skip = int(state["batches_consumed"])


class WholeGroupSampler(Sampler[list[SampleKey]]):
    """Evaluation: every image of every group, one group per batch, in capture order; sharded over ranks
    without padding (ranks may get one group more or less; metrics are summed, not averaged)."""

    def __init__(self, group_sizes: Sequence[int], num_replicas: int = 1, rank: int = 0):
        self.group_sizes = list(group_sizes)
        self.num_replicas, self.rank = num_replicas, rank

    def __len__(self) -> int:
        return len(range(self.rank, len(self.group_sizes), self.num_replicas))

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for group in range(self.rank, len(self.group_sizes), self.num_replicas):
            yield [SampleKey(group, i, 0, i) for i in range(self.group_sizes[group])]
