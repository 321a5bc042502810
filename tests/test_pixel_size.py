"""Native-resolution training and the pixel size a model was trained at (gmaiqa.data.pixels): read from
manifests, OME-TIFF and ImageJ files, written by ``gmaiqa synth``, recorded in the checkpoint by a
real training run, and checked by ``predict``; ``data.scale_range`` zooms each batch alike."""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace

import numpy as np
import pytest
import tifffile
import torch

from gmaiqa.checkpoints import load_net
from gmaiqa.cli import main
from gmaiqa.data.datamodule import FocusStackDataModule, FocusStackDataset
from gmaiqa.data.dataset import inspect_dataset, load_dataset
from gmaiqa.data.pixels import pixel_note, seen_pixel_um, trained_range, zoom_factor
from gmaiqa.data.sampling import SampleKey
from gmaiqa.data.transforms import Preprocess
from gmaiqa.errors import ConfigError
from helpers.tiny import compose_train, one_step


def test_what_the_network_sees_is_the_pixel_size_times_the_resize(tiny_feces):
    stack = replace(load_dataset(tiny_feces)[0], pixel_um=0.2)  # 96x128 frames
    assert seen_pixel_um(stack, (64, 96)) == pytest.approx(0.3)  # shrunk 1.5x: 1.5x the µm per pixel
    assert seen_pixel_um(stack, None) == pytest.approx(0.2)  # native resolution
    assert seen_pixel_um(replace(stack, pixel_um=None), None) is None
    assert seen_pixel_um(replace(stack, pixel_um=None), None, default=0.5) == 0.5
    span = trained_range([stack], (64, 96), (0.8, 1.25))  # zoomed 0.8x-1.25x on top
    assert (span["min"], span["max"]) == (pytest.approx(0.24), pytest.approx(0.375))
    assert trained_range([replace(stack, pixel_um=None)], None, None) is None


def test_synth_writes_the_pixel_size_of_its_scale(tiny_feces):
    with open(tiny_feces / "manifest.csv", newline="") as handle:
        values = {row["pixel_um"] for row in csv.DictReader(handle)}
    assert values == {"0.8"}  # 0.2 µm at the reference resolution, objects drawn 0.25x
    assert {s.pixel_um for s in load_dataset(tiny_feces)} == {0.8}


def test_a_manifest_pixel_size_is_one_positive_number_per_group(tiny_feces, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_feces, root)
    rows = list(csv.DictReader(open(root / "manifest.csv", newline="")))
    rows[0]["pixel_um"] = "0.4"  # g0000 now has two pixel sizes
    rows[-1]["pixel_um"] = "-1"
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    problems = " ".join(str(p) for p in inspect_dataset(root).problems)
    assert "g0000" in problems and "pixel_um differs within the group (0.4, 0.8)" in problems
    assert "pixel_um -1 is not positive" in problems


def test_stack_files_give_their_pixel_size(tmp_path):
    planes = (np.random.default_rng(0).random((5, 32, 48)) * 60000).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "ome.ome.tif",
        planes,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 325, "PhysicalSizeXUnit": "nm"},
    )
    tifffile.imwrite(
        tmp_path / "ij.tif",
        planes,
        imagej=True,
        resolution=(1 / 0.65, 1 / 0.65),  # pixels per micron
        metadata={"axes": "ZYX", "unit": "micron"},
    )
    tifffile.imwrite(tmp_path / "plain.tif", planes)
    sizes = {s.group: s.pixel_um for s in load_dataset(tmp_path)}
    assert sizes["ome"] == pytest.approx(0.325) and sizes["ij"] == pytest.approx(0.65)
    assert sizes["plain"] is None


def test_a_training_run_records_the_pixel_sizes_it_was_trained_at(trained_run, tiny_feces):
    _, meta = load_net(trained_run)
    cfg = compose_train("gmanet_l1_direct", one_step(tiny_feces))
    assert tuple(cfg.data.resize) == (64, 96)  # the tiny runs shrink 96x128 frames of 0.8 µm pixels
    recorded = meta["pixel_um"]
    assert recorded["min"] == recorded["max"] == pytest.approx(0.8 * 96 / 64)
    assert recorded["groups"] == recorded["of"] and recorded["of"] >= 4  # every training group said


def test_predict_says_when_images_are_at_another_scale(trained_run, tiny_feces, tmp_path, capsys):
    _, meta = load_net(trained_run)
    stacks = load_dataset(tiny_feces)[:2]
    assert pixel_note(stacks, (64, 96), meta["pixel_um"]) is None  # the scale it was trained at
    coarse = [replace(s, pixel_um=3.2) for s in stacks]  # 4x coarser pixels
    note = pixel_note(coarse, (64, 96), meta["pixel_um"])
    assert "2 of 2 groups" in note and "1.2 µm/pixel" in note and "resize=[256,384]" in note
    unknown = [replace(s, pixel_um=None) for s in stacks]
    assert "do not say their pixel size" in pixel_note(unknown, (64, 96), meta["pixel_um"])
    assert pixel_note(coarse, (64, 96), None) is None  # an older checkpoint: nothing to check against

    predict = ["predict", f"ckpt={trained_run}", f"input={tiny_feces}"]
    assert main([*predict, f"out={tmp_path / 'a'}", "pixel_um=3.2"]) == 0
    assert "1.2 µm/pixel" not in capsys.readouterr().err  # the manifest's 0.8 wins over pixel_um=
    assert main([*predict, f"out={tmp_path / 'b'}", "resize=[32,48]"]) == 0
    assert "outside the 1.2 µm/pixel the model was trained at" in capsys.readouterr().err
    assert main([*predict, f"out={tmp_path / 'c'}", "pixel_um=-2"]) == 2
    assert "config `pixel_um`" in capsys.readouterr().err
    assert main([*predict, f"out={tmp_path / 'd'}", "resize=[16,24]"]) == 2  # no window fits: one message
    assert "config `inference.patch`: a window of 32 px does not fit" in capsys.readouterr().err


def test_scale_range_zooms_every_image_of_a_batch_alike(tiny_feces):
    stacks = load_dataset(tiny_feces)[:1]
    preprocess = Preprocess((64, 96), "local_max", (8, 8))
    zoomed = FocusStackDataset(
        stacks, preprocess, (32, 48), random_crop=True, maps_on_device=True, scale_range=(1.5, 2.0)
    )
    plain = FocusStackDataset(stacks, preprocess, (32, 48), random_crop=True, maps_on_device=True)
    seed = 11
    zoom = zoom_factor(seed, (1.5, 2.0))
    assert 1.5 <= zoom <= 2.0 and zoom == zoom_factor(seed, (1.5, 2.0))
    expected = replace(preprocess, resize=(round(64 * zoom), round(96 * zoom)))
    for image in range(2):
        item = zoomed[SampleKey(0, image, seed, image)]
        assert item["image"].shape == (3, 32, 48)
        reference, context, _ = expected.crop_with_context(
            stacks[0].read(image), (32, 48), np.random.default_rng([seed])
        )
        torch.testing.assert_close(item["image"], reference)  # the same zoom and crop for the batch
        torch.testing.assert_close(item["attention_context"], context, equal_nan=True)
        assert not torch.equal(item["image"], plain[SampleKey(0, image, seed, image)]["image"])
    zooms = {round(zoom_factor(s, (0.8, 1.25)), 6) for s in range(200)}
    assert len(zooms) == 200 and min(zooms) >= 0.8 and max(zooms) <= 1.25
    assert 0.35 < np.mean([z < 1 for z in zooms]) < 0.65  # log-uniform: shrinking as likely as enlarging
    assert zoomed.zoomed(preprocess, (96, 128), 0).resize[0] >= 32  # never below the crop


def test_scale_range_and_pixel_size_options_are_checked(tiny_feces):
    with pytest.raises(ConfigError, match="data.scale_range"):
        FocusStackDataModule(root=str(tiny_feces), scale_range=[1.2, 0.8])
    with pytest.raises(ConfigError, match="data.cache"):
        FocusStackDataModule(root=str(tiny_feces), scale_range=[0.8, 1.25], cache="resized")
    with pytest.raises(ConfigError, match="data.pixel_um"):
        FocusStackDataModule(root=str(tiny_feces), pixel_um="fine")


def test_native_resolution_training_records_the_zoomed_range(tiny_feces, tmp_path):
    """data.resize=null with a scale range: the network sees native pixels zoomed 0.8x-1.25x, and the
    checkpoint says so (0.8 µm pixels -> 0.64-1.0 µm per network pixel)."""
    import warnings

    from gmaiqa.train import train

    native = ["data.resize=null", "data.scale_range=[0.8,1.25]", "data.crop=[48,64]"]
    small = ["model.head_channels=16", "model.aggregation_channels=16", "evaluate=false"]
    overrides = one_step(tiny_feces) + small + native + [f"paths.run_dir={tmp_path / 'run'}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(compose_train("gmanet_l1_direct", overrides))
    _, meta = load_net(tmp_path / "run")
    assert meta["data"]["resize"] is None and meta["data"]["scale_range"] == [0.8, 1.25]
    assert (meta["pixel_um"]["min"], meta["pixel_um"]["max"]) == (pytest.approx(0.64), pytest.approx(1.0))


def test_resize_native_scores_the_images_at_their_own_size(trained_run, tiny_feces, tmp_path, capsys):
    """The checkpoint shrank 96x128 frames to 64x96; resize=native scores 96x128 (0.8 µm) pixels, which
    the pixel-size check then names as outside the trained 1.2 µm."""
    predict = ["predict", f"ckpt={trained_run}", f"input={tiny_feces}"]
    assert main([*predict, f"out={tmp_path / 'a'}"]) == 0
    assert "images are resized to 64x96, the size the checkpoint was trained at" in capsys.readouterr().err
    assert main([*predict, f"out={tmp_path / 'asked'}", "resize=[48,64]"]) == 0
    err = capsys.readouterr().err  # the user's size, not the checkpoint's
    assert "images are resized to 48x64 as resize= asks" in err and "the size the checkpoint" not in err
    assert main([*predict, f"out={tmp_path / 'b'}", "resize=native"]) == 0
    err = capsys.readouterr().err
    assert "images are resized" not in err and "g0000: 0.8 µm/pixel" in err
    a = (tmp_path / "a" / "predictions.csv").read_text()
    assert a != (tmp_path / "b" / "predictions.csv").read_text()  # other pixels, other scores
    assert main([*predict, f"out={tmp_path / 'c'}", "resize=big"]) == 2
    assert "config `resize`: 'big' is not a size" in capsys.readouterr().err


def test_a_size_option_is_height_and_width_or_one_number_for_a_square():
    """One validator for data.crop, data.block, resize= and block=: the scoring commands' resize= and
    block= had their own check, which refused block=8 that data.block=8 accepts."""
    from gmaiqa.data.pixels import size_pair
    from gmaiqa.errors import ConfigError

    assert size_pair(8, "block") == (8, 8) == size_pair([8, 8], "block")
    assert size_pair([512.0, 768], "data.crop") == (512, 768) and size_pair(None, "resize") is None
    for bad in ([8], [8, 8.5], "big", [1, 1], [True, 4]):
        with pytest.raises(ConfigError, match="config `block`"):
            size_pair(bad, "block", smallest=2)
