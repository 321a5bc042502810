"""The absolute-defocus regressor (seed paper 001): the sharpest-slice rule, the level builder's labels,
the fit metrics, the model (and loading a local weights file), and a short fit + test."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.defocus_levels import LevelSpec, build_levels, content_tiles, sharpest_by_std
from gmaiqa.data.io import read_image
from gmaiqa.tasks.defocus import fit_quality
from helpers.tiny import compose_train


def test_sharpest_slice_is_the_one_with_the_largest_standard_deviation():
    rng = np.random.default_rng(0)
    texture = rng.uniform(0, 1, (20, 20, 3))
    stack = [
        0.5 + 0.1 * (texture - 0.5),
        0.5 + 0.9 * (texture - 0.5),
        np.full((20, 20, 3), 0.5),
        0.5 + 0.4 * (texture - 0.5),
    ]
    assert sharpest_by_std(stack) == 1


def test_content_tiles_prefer_structure_over_background():
    image = np.zeros((64, 96, 3))
    image[32:64, 64:96] = np.random.default_rng(1).uniform(size=(32, 32, 3))
    assert content_tiles(image, 32, keep_fraction=0.2, limit=8) == [(32, 64)]


def test_level_builder_labels_and_blur(tiny_feces, tmp_path):
    spec = LevelSpec(patch=32, schedule=[0.0, 1.0, 3.0], keep_fraction=0.25, max_patches_per_stack=2)
    out = build_levels(tiny_feces, tmp_path / "levels", spec)
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    stacks = {s.group: s for s in load_dataset(tiny_feces)}
    # the label is the level's index in the schedule (σ 0, 1, 3 px here)
    assert {r["group"] for r in rows} == set(stacks) and {r["level"] for r in rows} == {"0", "1", "2"}
    assert len(rows) == 3 * 2 * len(stacks)  # 3 levels x 2 tiles x stacks
    by_tile: dict[tuple, dict] = {}
    for r in rows:
        by_tile.setdefault((r["group"], r["image"].rsplit("_", 1)[0]), {})[r["level"]] = read_image(
            out / r["image"]
        )
    for (group, tile), levels in by_tile.items():
        spreads = [levels[k].std() for k in ("0", "1", "2")]
        assert spreads[0] > spreads[1] > spreads[2]  # more blur, less contrast
        stack = stacks[group]
        sharp = read_image(stack.paths[sharpest_by_std([read_image(p) for p in stack.paths])])
        t, left = (int(x[1:]) for x in tile.split("/")[1].split("_"))
        assert (
            np.abs(levels["0"] - sharp[t : t + 32, left : left + 32]).max() <= 1 / 255 + 1e-6
        )  # level 0 = the sharpest slice
    assert len({r["split"] for r in rows}) == 3
    assert all(
        len({r["split"] for r in rows if r["group"] == g}) == 1 for g in stacks
    )  # a stack never straddles
    with pytest.raises(Exception, match="not empty"):
        build_levels(tiny_feces, out, spec)


def test_real_slices_at_known_offsets_as_labels(tiny_feces, tmp_path):
    spec = LevelSpec(
        patch=32,
        labels="z_um",
        reference="clearest",
        keep_fraction=0.1,
        max_patches_per_stack=1,
        um_per_level=0.5,
    )
    rows = list(csv.DictReader(open(build_levels(tiny_feces, tmp_path / "z", spec) / "manifest.csv")))
    stack = load_dataset(tiny_feces)[0]
    mine = sorted(float(r["level"]) for r in rows if r["group"] == stack.group)
    expected = sorted(np.abs(stack.z_um - stack.z_um[stack.clearest]) / 0.5)
    np.testing.assert_allclose(mine, np.round(expected, 4), atol=1e-3)
    assert 0.0 in mine


def test_fit_quality_by_hand():
    true = [0, 1, 2, 3, 4]
    perfect = fit_quality([1 + 2 * t for t in true], true)
    assert (
        perfect["slope"] == pytest.approx(2)
        and perfect["intercept"] == pytest.approx(1)
        and perfect["r2"] == pytest.approx(1)
    )
    assert perfect["mae"] == pytest.approx(np.mean([1 + t for t in true])) and perfect[
        "within_1"
    ] == pytest.approx(0.2)
    noisy = [0.2, 0.8, 2.5, 2.9, 4.4]
    slope, intercept = np.polyfit(true, noisy, 1)
    r = fit_quality(noisy, true)
    assert r["slope"] == pytest.approx(slope) and r["intercept"] == pytest.approx(intercept)
    assert r["r2"] == pytest.approx(np.corrcoef(true, noisy)[0, 1] ** 2) and r["within_1"] == 1.0


def test_regressor_shapes_and_a_local_weights_file(tmp_path):
    import torchvision

    from gmaiqa.models.defocus import DefocusRegressor

    torch.manual_seed(0)
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    path = tmp_path / "inception_v3.pth"
    torch.save(reference.state_dict(), path)
    net = DefocusRegressor(weights_path=str(path)).eval()
    torch.testing.assert_close(net.encoder.Conv2d_1a_3x3.conv.weight, reference.Conv2d_1a_3x3.conv.weight)
    assert sum(isinstance(m, torch.nn.Linear) for m in net.regressor) == 6
    assert net(torch.rand(2, 3, 80, 80))["output1"].shape == (2,)
    with pytest.raises(ValueError, match="75x75"):
        net(torch.rand(1, 3, 64, 64))


def test_short_fit_and_test(tiny_feces, tmp_path):
    from gmaiqa.train import train

    overrides = [
        f"data.stacks_root={tiny_feces}",
        "data.stacks_synthetic=null",
        "data.levels.patch=80",
        "data.levels.schedule=[0,2,4]",
        "data.input_size=80",
        "data.batch_size=4",
        "data.num_workers=0",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "trainer.accelerator=cpu",
        "+trainer.limit_train_batches=2",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"paths.run_dir={tmp_path / 'run'}",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train(compose_train("defocus_regressor", overrides))
    assert {"slope", "intercept", "r2", "mae", "within_1", "loss"} <= set(summary)
    assert (tmp_path / "run" / "regressor" / "predicted_vs_true.png").is_file()
    rows = list(csv.DictReader(open(tmp_path / "run" / "regressor" / "per_patch.csv")))
    assert rows and {float(r["level"]) for r in rows} == {0.0, 1.0, 2.0}  # level indices of the schedule

    # the same checkpoint maps defocus over whole images and serves as a focus measure (lower = clearer)
    from gmaiqa.cli import main

    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                f"ckpt={summary['checkpoint']}",
                f"input={tiny_feces}",
                f"out={out}",
                "accelerator=cpu",
            ]
        )
        == 0
    )
    predictions = list(csv.DictReader(open(out / "predictions.csv")))
    assert predictions and "defocus" in predictions[0]
    first = predictions[0]
    grid = np.loadtxt(
        out / "defocus_maps" / first["group"] / (Path(first["image"]).stem + ".csv"), delimiter=",", ndmin=2
    )
    assert grid.shape == (1, 1) and float(first["defocus"]) == pytest.approx(
        grid.mean(), abs=1e-3
    )  # 96x128 -> one 80 px tile
    clearest = {r["group"]: r for r in csv.DictReader(open(out / "clearest.csv"))}
    group = [float(r["defocus"]) for r in predictions if r["group"] == first["group"]]
    assert float(clearest[first["group"]]["defocus"]) == pytest.approx(min(group), abs=1e-4)
    bench = tmp_path / "bench"
    assert (
        main(
            [
                "benchmark",
                f"data.root={tiny_feces}",
                f"out={bench}",
                f"methods=[TENG,ckpt:{summary['checkpoint']}]",
                "accelerator=cpu",
                "wandb.mode=disabled",
                "curves=0",
            ]
        )
        == 0
    )
    assert len(list(csv.DictReader(open(bench / "benchmark.csv")))) == 2
