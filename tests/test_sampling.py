"""Group batches (GMANet §4.1): clearest always present, one group, no repeats, ranks disjoint, resumable."""

import pytest

from gmaiqa.data.sampling import GroupBatchSampler, WholeGroupSampler

SIZES = [12, 5, 30, 9, 7, 15, 3, 20, 11, 8]
CLEAREST = [4, 0, 29, 3, 6, 7, 1, 10, 5, 2]


def test_batch_composition():
    sampler = GroupBatchSampler(SIZES, CLEAREST, batch_size=7, seed=0)
    batches = list(sampler)
    assert len(batches) == len(SIZES)
    for batch in batches:
        group = batch[0].group
        assert {k.group for k in batch} == {group}
        images = [k.image for k in batch]
        assert images[0] == CLEAREST[group]  # clearest first, always
        assert len(set(images)) == len(images) == min(7, SIZES[group])  # no repeats; whole group if smaller
        assert len({k.draw_seed for k in batch}) == 1  # one crop/augment draw per batch
    assert sorted(b[0].group for b in batches) == list(range(len(SIZES)))  # every group once per epoch


def test_deterministic_by_seed_and_epoch():
    a, b = GroupBatchSampler(SIZES, CLEAREST, seed=3), GroupBatchSampler(SIZES, CLEAREST, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(GroupBatchSampler(SIZES, CLEAREST, seed=4)) != first


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_get_distinct_groups_and_equal_counts(world):
    per_rank = [
        [b[0].group for b in GroupBatchSampler(SIZES, CLEAREST, seed=1, num_replicas=world, rank=r)]
        for r in range(world)
    ]
    flat = [g for groups in per_rank for g in groups]
    assert len(flat) == len(set(flat))  # no group twice in an epoch, across all ranks
    assert len({len(g) for g in per_rank}) == 1  # equal step counts keep DDP in lock-step
    assert len(flat) == len(SIZES) // world * world


def test_resume_mid_epoch_continues_exactly():
    full = GroupBatchSampler(SIZES, CLEAREST, seed=2)
    full.set_epoch(3)
    expected = list(full)
    first = GroupBatchSampler(SIZES, CLEAREST, seed=2)
    first.set_epoch(3)
    consumed = list(first)[:4]
    state = first.state_dict(batches_consumed=4)
    resumed = GroupBatchSampler(SIZES, CLEAREST, seed=2)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert consumed + rest == expected
    assert list(resumed) == expected  # the skip applies once
    with pytest.raises(ValueError, match="seed"):
        GroupBatchSampler(SIZES, CLEAREST, seed=9).load_state_dict(state)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        GroupBatchSampler(SIZES, CLEAREST, batch_size=1)
    with pytest.raises(ValueError, match="no clearest"):
        GroupBatchSampler([3, 4], [1, None])


def test_whole_group_sampler_covers_everything_once_across_ranks():
    seen = []
    for rank in range(3):
        for batch in WholeGroupSampler(SIZES, num_replicas=3, rank=rank):
            assert [k.image for k in batch] == list(range(SIZES[batch[0].group]))
            seen.append(batch[0].group)
    assert sorted(seen) == list(range(len(SIZES)))
