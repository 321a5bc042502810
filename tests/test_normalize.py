"""data.normalize=image|stack (issue 32, item 4): the stack's pooled statistics on hand-made images, a
defocused image keeping its lower contrast under ``stack`` (and losing it under the paper's ``image``),
the crop path equal to the whole-image path, the dataset normalising every image of a group by that
group's statistics (a lone image by its own), checkpoints scored the way they were trained, and a
mistyped choice named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from scipy import ndimage

from gmaiqa.data.datamodule import FocusStackDataModule, FocusStackDataset
from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.sampling import SampleKey
from gmaiqa.data.transforms import Preprocess, StackStatistics, stack_statistics
from gmaiqa.errors import ConfigError
from gmaiqa.focus.gradient import to_gray


def rgb(values) -> np.ndarray:
    grey = np.asarray(values, dtype=np.float32)
    return np.repeat(grey[..., None], 3, axis=2)


def test_stack_statistics_pool_every_pixel_of_every_image():
    a, b = rgb([[0.0, 0.2], [0.4, 0.6]]), rgb([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # sizes may differ
    stats = stack_statistics([a, b])
    pooled = np.concatenate([a[..., 0].ravel(), b[..., 0].ravel()])
    assert stats.mean.shape == (1, 3, 1, 1) and stats.gray_scale.shape == (1, 1, 1, 1)
    torch.testing.assert_close(stats.mean.flatten(), torch.full((3,), float(pooled.mean())))
    torch.testing.assert_close(stats.scale.flatten(), torch.full((3,), float(pooled.std())))
    torch.testing.assert_close(
        stats.gray_mean.flatten(), torch.tensor([float(pooled.mean())]), atol=1e-6, rtol=0
    )


def defocus_pair() -> tuple[np.ndarray, np.ndarray]:
    field = ndimage.gaussian_filter(np.random.default_rng(0).uniform(0, 1, (48, 64)), 1.0)
    return rgb(field), rgb(ndimage.gaussian_filter(field, 3.0))


def test_stack_normalisation_keeps_the_contrast_defocus_lowers():
    sharp, blurred = defocus_pair()
    per_image = Preprocess(resize=None, block=(8, 8))
    per_stack = Preprocess(resize=None, block=(8, 8), normalize="stack")
    stats = stack_statistics([sharp, blurred])
    own = [float(per_image(x)[0].std()) for x in (sharp, blurred)]
    shared = [float(per_stack(x, stats)[0].std()) for x in (sharp, blurred)]
    assert own == pytest.approx([1.0, 1.0], abs=1e-3)  # §3.4: contrast removed, the two look alike
    assert shared[1] < 0.6 * shared[0]  # stack: the defocused image stays flatter
    # and so does its attention map, computed from the grey z-scored alike
    maps = [float(per_stack(x, stats)[1].mean()) for x in (sharp, blurred)]
    assert maps[1] < maps[0]


def test_the_crop_path_equals_the_whole_image_path_under_stack_statistics():
    sharp, blurred = defocus_pair()
    pre = Preprocess(resize=None, block=(8, 8), normalize="stack")
    stats = stack_statistics([sharp, blurred])
    whole, _ = pre(blurred, stats)
    crop, context, _ = pre.crop_with_context(blurred, (16, 32), np.random.default_rng(3), stats)
    found = [
        (t, left)
        for t in range(whole.shape[1] - 15)
        for left in range(whole.shape[2] - 31)
        if torch.allclose(whole[:, t : t + 16, left : left + 32], crop)
    ]
    assert len(found) == 1
    top, left = found[0]
    margin = pre.margin
    grey = (to_gray(torch.from_numpy(blurred).permute(2, 0, 1)[None]) - stats.gray_mean) / stats.gray_scale
    inside = context[:, margin : margin + 16, margin : margin + 32]
    torch.testing.assert_close(inside, grey[0, :, top : top + 16, left : left + 32])


def test_the_dataset_normalises_a_group_by_its_stack_and_a_lone_image_by_itself(tiny_feces):
    stacks = load_dataset(tiny_feces)[:2]
    pre = Preprocess(resize=None, block=(8, 8), normalize="stack")
    dataset = FocusStackDataset(stacks, pre, crop=None, random_crop=False, maps_on_device=True)
    stats = stack_statistics(stacks[1].read(i) for i in range(len(stacks[1])))
    item = dataset[SampleKey(1, 2, 0, 0)]
    x = torch.from_numpy(stacks[1].read(2)).permute(2, 0, 1)
    torch.testing.assert_close(item["image"], ((x[None] - stats.mean) / stats.scale)[0])
    assert StackStatistics()(0, ["a lone image"], read=None) is None  # its own statistics, as image
    plain = FocusStackDataset(stacks, Preprocess(resize=None, block=(8, 8)), crop=None, random_crop=False)
    assert not torch.allclose(plain[SampleKey(1, 2, 0, 0)]["image"], item["image"])


def test_checkpoints_are_scored_with_the_normalisation_they_were_trained_with():
    from gmaiqa.scoring import preprocess_of

    meta = {"model": {}, "data": {"resize": None, "attention": "local_max", "block": [8, 8]}}
    assert preprocess_of(meta, DictConfig({})).normalize == "image"  # written before data.normalize
    meta["data"]["normalize"] = "stack"
    assert preprocess_of(meta, DictConfig({})).normalize == "stack"


def test_a_mistyped_normalisation_is_named_with_the_choices(tmp_path):
    with pytest.raises(
        ConfigError, match=r"data.normalize.*'stak'.*did you mean 'stack'.*\['image', 'stack'\]"
    ):
        FocusStackDataModule(root=str(tmp_path), normalize="stak")


@pytest.mark.slow
def test_a_run_trained_with_stack_statistics_records_and_scores_with_them(tiny_feces, tmp_path, capsys):
    import csv

    from gmaiqa.checkpoints import load_net
    from gmaiqa.cli import main
    from helpers.tiny import SMALL_GMANET, one_step

    run = tmp_path / "run"
    args = ["train", "experiment=gmanet_l1_direct", *one_step(tiny_feces), *SMALL_GMANET, "evaluate=false"]
    assert main([*args, "data.normalize=stack", f"paths.run_dir={run}"]) == 0
    _, meta = load_net(str(run))
    assert meta["data"]["normalize"] == "stack"
    out = tmp_path / "out"
    args = ["predict", f"ckpt={run}", f"input={tiny_feces}", f"out={out}", "num_workers=0"]
    assert main([*args, "clearest_images=false"]) == 0
    with open(out / "predictions.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == sum(len(s) for s in load_dataset(tiny_feces))
