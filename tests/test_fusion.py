"""Rank fusion of focus measures (gmaiqa.focus.fusion): known ranks and fused values on hand-made tables,
invariance to each member's scale, sharper -> higher on a blur series, the predict path (image by image,
then the stack) equal to the benchmark path (the whole stack at once), and names resolved with clear
errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from gmaiqa.errors import GmaiqaError
from gmaiqa.focus import get_measure
from gmaiqa.focus.fusion import CANDIDATE_MEMBERS, RankFusion, average_ranks


def test_average_ranks_share_ties():
    values = torch.tensor([[3.0, 0.5], [1.0, 0.5], [2.0, 0.5], [2.0, 0.9]])
    torch.testing.assert_close(
        average_ranks(values), torch.tensor([[3.0, 1.0], [0.0, 1.0], [1.5, 1.0], [1.5, 3.0]])
    )


def test_the_fused_score_is_the_mean_rank_with_a_tie_break_that_never_reorders():
    fusion = get_measure("rank:TENG+GLVN")
    # image 0 is best by member A, image 2 by member B, image 1 second by both
    values = torch.tensor([[10.0, 1.0], [9.0, 2.0], [1.0, 3.0]])
    fused = fusion.of_stack(values)
    mean_rank = torch.tensor([(2 + 0) / 2, (1 + 1) / 2, (0 + 2) / 2], dtype=torch.float64) / 2
    # all three tie on the mean rank (0.5); the tie-break is the mean of the values scaled to [0, 1]
    scaled = torch.tensor([(1 + 0) / 2, (8 / 9 + 0.5) / 2, (0 + 1) / 2], dtype=torch.float64)
    torch.testing.assert_close(fused, mean_rank + scaled * 0.25 / (2 * 2))
    assert int(fused.argmax()) == 1  # the one both members rank high


def test_the_tie_break_never_overturns_a_difference_of_mean_rank():
    """Random tables full of ties (small integers): wherever two images' mean ranks differ, the fused
    scores order them the same way."""
    fusion = get_measure("rank:TENG+GLVN+LAPM")
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(2, 12))
        values = torch.from_numpy(rng.integers(0, 4, size=(n, 3)).astype(np.float64) * rng.uniform(0.1, 1e6))
        fused, ranks = fusion.of_stack(values), average_ranks(values).mean(dim=1)
        differ = ranks[:, None] != ranks[None, :]
        agree = (ranks[:, None] > ranks[None, :]) == (fused[:, None] > fused[None, :])
        assert agree[differ].all()


def test_a_lone_image_and_a_constant_stack_give_finite_scores():
    fusion = get_measure("rank:TENG+GLVN")
    assert fusion.of_stack(torch.tensor([[1.0, 2.0]])).tolist() == [0.0]
    flat = fusion.of_stack(torch.ones(4, 2))
    assert torch.isfinite(flat).all() and (flat == flat[0]).all()


def test_fusion_is_invariant_to_each_members_scale_and_monotone_transform():
    fusion = get_measure("rank:TENG+GLVN+LAPM")
    rng = np.random.default_rng(3)
    values = torch.from_numpy(rng.uniform(0.1, 1.0, size=(9, 3)))
    transformed = torch.stack([values[:, 0] * 1e4, torch.log(values[:, 1]), values[:, 2] ** 3], dim=1)
    assert torch.equal(fusion.of_stack(values).argsort(), fusion.of_stack(transformed).argsort())


def blur_series(sharpest: int = 3, planes: int = 7) -> torch.Tensor:
    """A hand-made textured field blurred by a Gaussian growing with the distance from ``sharpest``."""
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.uniform(0, 1, (64, 96)), 1.0)
    images = [
        ndimage.gaussian_filter(field, 0.7 * abs(z - sharpest)) if z != sharpest else field
        for z in range(planes)
    ]
    return torch.from_numpy(np.stack(images)).float()[:, None].repeat(1, 3, 1, 1)


def test_the_candidate_fusion_ranks_a_blur_series_sharpest_first_and_monotone():
    fusion = get_measure("rank:" + "+".join(CANDIDATE_MEMBERS))
    assert isinstance(fusion, RankFusion) and fusion.higher_is_better
    scores = fusion.clarity(blur_series(sharpest=3))
    assert int(scores.argmax()) == 3
    assert all(a < b for a, b in zip(scores[:3], scores[1:4])) and all(
        a > b for a, b in zip(scores[3:], scores[4:])
    )


def test_image_by_image_then_the_stack_equals_the_whole_stack_at_once():
    """predict reads one image at a time (per_image, then of_stack); benchmark scores the whole stack
    (clarity): the same scores, for a fusion and for a single measure alike."""
    stack = blur_series()
    for name in ("rank:TENG+GLVN+WAVS", "TENG"):
        measure = get_measure(name)
        one_by_one = measure.of_stack(torch.cat([measure.per_image(image[None]) for image in stack]))
        torch.testing.assert_close(one_by_one.double(), measure.clarity(stack).double())


def test_fusion_names_resolve_and_bad_ones_say_what_to_write():
    fusion = get_measure(" Rank:teng+glvn ")
    assert fusion.name == "rank:TENG+GLVN" and [m.name for m in fusion.members] == ["TENG", "GLVN"]
    for bad, said in (
        ("rank:TENG", "at least two different measures"),
        ("rank:TENG+TENG", "each once"),
        ("rank:", "at least two"),
        ("rank:TENG+TENGG", "did you mean TENG"),
    ):
        with pytest.raises(GmaiqaError, match=said):
            get_measure(bad)
