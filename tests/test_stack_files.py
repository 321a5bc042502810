"""Microscopy stack files as z-stacks (gmaiqa.data.stackfile): multi-page TIFF, OME-TIFF with
PhysicalSizeZ, ImageJ hyperstack with spacing, channels and time points, each written here with
tifffile and taken through ``check`` and ``predict`` as a user would."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
import torch

from gmaiqa.cli import main
from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.io import read_raw
from helpers.stack_files import SHARPEST, focus_series, keep_only_the_first_page


@pytest.fixture
def stacks(tmp_path):
    folder = tmp_path / "stacks"
    folder.mkdir()
    data = focus_series()
    tifffile.imwrite(folder / "plain.tif", data)
    tifffile.imwrite(
        folder / "ome.ome.tif",
        data,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeZ": 500, "PhysicalSizeZUnit": "nm"},
    )
    tifffile.imwrite(
        folder / "ij.tif", data, imagej=True, metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"}
    )
    tifffile.imwrite(folder / "single.tif", data[0])  # one image: not a z-stack, not a group
    return folder


def add_two_channels(folder) -> np.ndarray:
    data = np.stack([focus_series(1), focus_series(2)[::-1]], axis=1)  # Z C Y X; GFP reversed in z
    tifffile.imwrite(
        folder / "two.ome.tif",
        data,
        ome=True,
        metadata={"axes": "ZCYX", "Channel": {"Name": ["DAPI", "GFP"]}},
    )
    return data


def test_each_stack_file_is_a_group_with_its_planes_in_stored_order_and_its_z_step(stacks):
    by_group = {s.group: s for s in load_dataset(stacks)}
    assert set(by_group) == {"plain", "ome", "ij"}
    data = tifffile.imread(stacks / "plain.tif")
    for group in by_group.values():
        assert len(group) == 5 and group.z == tuple(range(5))
        for z, path in enumerate(group.paths):
            np.testing.assert_array_equal(read_raw(path), data[z])
    np.testing.assert_allclose(by_group["ome"].z_um, [0, 0.5, 1.0, 1.5, 2.0])  # 500 nm
    np.testing.assert_allclose(by_group["ij"].z_um, [0, 2, 4, 6, 8])
    assert by_group["plain"].z_um is None


def test_check_reports_planes_size_dtype_and_z_step_per_file(stacks, capsys):
    assert main(["check", f"root={stacks}", "json=true"]) == 0
    captured = capsys.readouterr()
    files = json.loads(captured.out)["stack_files"]
    assert files["ome.ome.tif"] == {
        "planes": 5,
        "size": [48, 64],
        "dtype": "uint16",
        "z_step_um": 0.5,
        "channels": ["0"],
        "times": 1,
        "pixel_um": None,
        "scene": None,
        "scene_name": None,
    }
    assert files["ij.tif"]["z_step_um"] == 2.0 and files["plain.tif"]["z_step_um"] is None
    assert "ij.tif: 5 planes of 48x64 uint16, z step 2 µm" in captured.err


@pytest.mark.parametrize(
    "metadata, step, warned",
    [
        (
            {"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": 5000, "PhysicalSizeZUnit": "Å"}},
            0.5,
            None,
        ),
        (
            {"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": 0.002, "PhysicalSizeZUnit": "mm"}},
            2.0,
            None,
        ),
        (
            {"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": 1, "PhysicalSizeZUnit": "pixel"}},
            None,
            "uncalibrated",
        ),
        (  # a resolution of its own (10 px per nm), not the writers' default of 1 that check names
            {
                "imagej": True,
                "resolution": (10, 10),
                "metadata": {"axes": "ZYX", "spacing": 250.0, "unit": "nm"},
            },
            0.25,
            None,
        ),
        (
            {"imagej": True, "metadata": {"axes": "ZYX", "spacing": 1.0, "unit": "pixel"}},
            None,
            "uncalibrated",
        ),
        (
            {"imagej": True, "metadata": {"axes": "ZYX", "spacing": 3.0, "unit": "furlong"}},
            None,
            "does not know",
        ),
    ],
    ids=["ome-angstrom", "ome-mm", "ome-pixel", "imagej-nm", "imagej-pixel", "imagej-unknown"],
)
def test_the_z_step_is_read_in_its_unit_and_an_uncalibrated_or_unknown_one_is_named_not_taken_as_um(
    tmp_path, capsys, metadata, step, warned
):
    """An unknown unit used to be taken as µm and ImageJ's uncalibrated 'pixel' spacing became a z step
    of that many µm: z-errors in µm were then off by the unit. Known units are converted; the others
    give no z_um and a warning that names the file and the unit."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    tifffile.imwrite(folder / "s.tif", focus_series(), **metadata)
    (stack,) = load_dataset(folder)
    if step is None:
        assert stack.z_um is None
    else:
        np.testing.assert_allclose(stack.z_um, np.arange(5) * step)
    assert main(["check", f"root={folder}"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
    if warned is None:
        assert warnings == []
    else:
        (line,) = warnings
        unit = metadata["metadata"].get("PhysicalSizeZUnit") or metadata["metadata"]["unit"]
        assert "s.tif" in line and f"{unit!r} ignored: " in line and warned in line


def test_an_imagej_resolution_of_one_pixel_per_unit_is_the_writers_default_not_a_pixel_size(tmp_path, capsys):
    """tifffile (and other writers) store a resolution of 1/1 when given none; read with ImageJ's unit it
    said 1 µm/pixel, and predict advised resizing an image that never stated its pixel size. A stated
    resolution is still read (2 px per µm: 0.5 µm/pixel)."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    meta = {"axes": "ZYX", "spacing": 0.5, "unit": "micron"}
    tifffile.imwrite(folder / "default.tif", focus_series(), imagej=True, metadata=meta)
    tifffile.imwrite(folder / "stated.tif", focus_series(), imagej=True, resolution=(2, 2), metadata=meta)
    stacks = {s.group: s for s in load_dataset(folder)}
    assert stacks["default"].pixel_um is None and stacks["stated"].pixel_um == pytest.approx(0.5)
    assert main(["check", f"root={folder}"]) == 0
    out = capsys.readouterr().out
    assert "default.tif: ImageJ resolution of 1 pixel per micron, the TIFF writers' default" in out
    assert "stated.tif: 5 planes of 48x64 uint16, z step 0.5 µm, 0.5 µm/pixel" in out


def test_a_multi_channel_stack_needs_a_channel_and_the_message_lists_them(stacks, capsys):
    data = add_two_channels(stacks)
    assert main(["check", f"root={stacks}"]) == 1
    out = capsys.readouterr().out
    assert "two.ome.tif: has 2 channels (DAPI, GFP); none was chosen" in out and "channel=" in out
    assert main(["check", f"root={stacks}", "channel=RFP"]) == 1
    assert "channel=RFP is not one of them" in capsys.readouterr().out
    for choice, index in (("GFP", 1), ("0", 0)):
        assert main(["check", f"root={stacks}", f"channel={choice}"]) == 0
        two = {s.group: s for s in load_dataset(stacks, channel=choice)}["two"]
        np.testing.assert_array_equal(read_raw(two.paths[3]), data[3, index])
    capsys.readouterr()


def test_a_channel_or_time_point_no_stack_file_needs_is_named_as_ignored(stacks, capsys):
    """channel= and t= choose within stack files that hold several; given for a dataset where none does,
    they used to be dropped without a word (a typo, or a choice meant for another dataset)."""
    assert main(["check", f"root={stacks}", "channel=GFP", "t=1"]) == 0
    out = capsys.readouterr().out
    assert "channel=GFP was given, but no stack file here holds several channels: it is ignored" in out
    assert "t=1 was given, but no stack file here holds several time points: it is ignored" in out
    add_two_channels(stacks)
    assert main(["check", f"root={stacks}", "channel=GFP"]) == 0
    assert "channel=GFP was given" not in capsys.readouterr().out


def test_group_names_drop_only_the_tiff_suffix(tmp_path):
    folder = tmp_path / "dotted"
    folder.mkdir()
    for name in ("cell.1.tif", "cell.2.ome.tiff", "CELL.3.TIF"):
        ome = {"ome": True, "metadata": {"axes": "ZYX"}} if name.endswith("ome.tiff") else {}
        tifffile.imwrite(folder / name, focus_series(), **ome)
    assert sorted(s.group for s in load_dataset(folder)) == ["CELL.3", "cell.1", "cell.2"]


def test_a_time_series_needs_a_time_point(tmp_path, capsys):
    folder = tmp_path / "timed"
    folder.mkdir()
    data = np.stack([focus_series(0), focus_series(3)])  # T Z Y X
    tifffile.imwrite(folder / "movie.tif", data, imagej=True, metadata={"axes": "TZYX"})
    assert main(["check", f"root={folder}"]) == 1
    assert "movie.tif: has 2 time points (0, 1)" in capsys.readouterr().out
    (stack,) = load_dataset(folder, t=1)
    np.testing.assert_array_equal(read_raw(stack.paths[4]), data[1, 4])


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little-endian", "big-endian (ImageJ's own)"])
def test_a_stack_stored_behind_one_page_is_read_one_plane_at_a_time(tmp_path, monkeypatch, byteorder):
    folder = tmp_path / "big"
    folder.mkdir()
    data = np.stack([focus_series(1), focus_series(3)], axis=1)  # Z C Y X, 16-bit
    path = folder / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, byteorder=byteorder, metadata={"axes": "ZCYX", "spacing": 0.5})
    keep_only_the_first_page(path)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 1 and tif.series[0].shape == data.shape
    # a plane's bytes are read alone: decoding the whole series once per plane is what this replaces
    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", lambda *a, **k: pytest.fail("read every plane"))
    (stack,) = load_dataset(folder, channel=1)
    assert len(stack) == data.shape[0] and stack.z_um == pytest.approx([0.5 * z for z in range(len(stack))])
    for z, plane in enumerate(stack.paths):
        got = read_raw(plane)
        assert got.dtype == np.uint16 and got.dtype.isnative
        np.testing.assert_array_equal(got, data[z, 1])


def test_reading_a_stack_parses_its_file_once_not_once_per_plane(stacks, monkeypatch):
    from gmaiqa.data import stackfile

    (stack,) = [group for group in load_dataset(stacks) if group.group == "plain"]
    stackfile.close_open_stacks()
    opened = []
    real = tifffile.TiffFile
    monkeypatch.setattr(stackfile.tifffile, "TiffFile", lambda *a, **k: opened.append(a) or real(*a, **k))
    planes = [read_raw(path) for path in stack.paths]
    assert len(opened) == 1 and len(planes) == len(stack)
    np.testing.assert_array_equal(np.stack(planes), tifffile.imread(stacks / "plain.tif"))


def test_check_parses_each_stack_file_once(stacks, monkeypatch, capsys):
    """Reading the folder, the report's per-file lines and the planes' decoding all need a stack's
    layout: they share one parse per file (three each before)."""
    from gmaiqa.data import stackfile

    stackfile.close_open_stacks()
    opened = []
    real = tifffile.TiffFile
    monkeypatch.setattr(stackfile.tifffile, "TiffFile", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    assert main(["check", f"root={stacks}", "validate=full"]) == 0
    for name in ("plain.tif", "ome.ome.tif", "ij.tif"):
        assert [str(p) for p in opened].count(str(stacks / name)) == 1, name


def test_a_stack_file_replaced_or_rewritten_after_a_read_is_read_anew(tmp_path):
    path = tmp_path / "s.tif"
    first, second = focus_series(1), focus_series(2, planes=7)
    tifffile.imwrite(path, first)
    np.testing.assert_array_equal(read_raw(f"{path}#z2"), first[2])
    tifffile.imwrite(path, second)  # rewritten in place, another size
    np.testing.assert_array_equal(read_raw(f"{path}#z2"), second[2])
    tifffile.imwrite(tmp_path / "new.tif", first)  # same size, moved over it: another file
    (tmp_path / "new.tif").replace(path)
    np.testing.assert_array_equal(read_raw(f"{path}#z3"), first[3])


def test_forked_workers_read_the_planes_of_a_file_their_parent_has_open(stacks):
    import multiprocessing

    path = stacks / "plain.tif"
    expected = tifffile.imread(path)
    read_raw(f"{path}#z0")  # the parent keeps the file open, then forks
    with multiprocessing.get_context("fork").Pool(2) as pool:
        planes = pool.map(read_raw, [f"{path}#z{z}" for z in range(len(expected))] * 3)
    np.testing.assert_array_equal(np.stack(planes), np.concatenate([expected] * 3))
    np.testing.assert_array_equal(read_raw(f"{path}#z4"), expected[4])


def test_a_manifest_row_may_name_a_plane_and_a_focus_measure_finds_the_sharp_one(stacks, tmp_path):
    (stacks / "manifest.csv").write_text(
        "group,image,z,clearest\n" + "".join(f"g,plain.tif#z{z},{z},{int(z == SHARPEST)}\n" for z in range(5))
    )
    (stack,) = load_dataset(stacks)
    assert stack.clearest == SHARPEST
    np.testing.assert_array_equal(read_raw(stack.paths[1]), tifffile.imread(stacks / "plain.tif")[1])
    out = tmp_path / "bench"
    args = ["benchmark", f"data.root={stacks}", "methods=[TENG]", f"out={out}", "logger.wandb.mode=disabled"]
    assert main(args) == 0
    with open(out / "benchmark.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["method"] == "TENG" and float(row["acc"]) == 1.0 and int(row["t0"]) == 1


def test_manifest_rows_naming_the_planes_of_one_stack_take_its_z_step_and_pixel_size(stacks):
    """A labelled manifest over a stack file's planes gets the z_um and pixel_um that the stack's metadata
    states (z-errors in µm, the pixel-size check), as the same stack in a folder does, unless the rows
    give their own; a group naming planes of two stacks takes neither (no one step holds for it)."""
    tifffile.imwrite(
        stacks / "cal.ome.tif",
        focus_series(),
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeZ": 0.5, "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25},
    )
    rows = "".join(f"cal,cal.ome.tif#z{z},{z},{int(z == SHARPEST)}\n" for z in range(5))
    # ij.tif states 2 µm: rows with their own z_um keep theirs
    rows += "".join(f"own,ij.tif#z{z},{z},{int(z == SHARPEST)},{3 * z}\n" for z in range(5))
    rows += "".join(
        f"mixed,{f}#z{z},{z},{int(z == 1)},\n" for z, f in enumerate(["plain.tif", "ome.ome.tif"])
    )
    (stacks / "manifest.csv").write_text("group,image,z,clearest,z_um\n" + rows)
    groups = {s.group: s for s in load_dataset(stacks)}
    np.testing.assert_allclose(groups["cal"].z_um, [0, 0.5, 1.0, 1.5, 2.0])
    assert groups["cal"].pixel_um == pytest.approx(0.25)
    np.testing.assert_allclose(groups["own"].z_um, [0, 3, 6, 9, 12])
    assert groups["mixed"].z_um is None


def test_predict_scores_every_plane_and_names_it(stacks, trained_run, tmp_path):
    add_two_channels(stacks)
    out = tmp_path / "out"
    args = ["predict", f"ckpt={trained_run}", f"input={stacks}", f"out={out}", "num_workers=0", "channel=GFP"]
    assert main(args) == 0
    with open(out / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    assert [r["image"] for r in rows if r["group"] == "two"] == [f"two.ome.tif#z{z}c1" for z in range(5)]
    with open(out / "clearest.csv") as handle:
        assert {r["group"] for r in csv.DictReader(handle)} == {"plain", "ome", "ij", "two"}
    assert main(args[:3] + [f"out={tmp_path / 'again'}", "num_workers=0"]) == 2  # no channel chosen


def test_predict_writes_the_clearest_plane_of_every_stack_as_an_image(stacks, trained_run, tmp_path):
    """What an autofocus run is for: each stack's clearest plane as a file of its own, its stored pixels
    unchanged (16-bit stays 16-bit) and, where the stack states it, its pixel size."""
    tifffile.imwrite(
        stacks / "sized.tif",
        focus_series(4),
        imagej=True,
        resolution=(1 / 0.4, 1 / 0.4),
        metadata={"axes": "ZYX", "spacing": 1.0, "unit": "um"},
    )
    out = tmp_path / "out"
    assert main(["predict", f"ckpt={trained_run}", f"input={stacks}", f"out={out}", "num_workers=0"]) == 0
    with open(out / "clearest.csv") as handle:
        picks = {r["group"]: int(r["z"]) for r in csv.DictReader(handle)}
    assert sorted(p.name for p in (out / "clearest").iterdir()) == sorted(f"{g}.tif" for g in picks)
    sources = {"plain": "plain.tif", "ome": "ome.ome.tif", "ij": "ij.tif", "sized": "sized.tif"}
    for group, z in picks.items():
        written = tifffile.imread(out / "clearest" / f"{group}.tif")
        assert written.dtype == np.uint16
        np.testing.assert_array_equal(written, tifffile.imread(stacks / sources[group])[z])
    with tifffile.TiffFile(out / "clearest" / "sized.tif") as tif:
        assert tif.imagej_metadata["unit"] == "um"
        numerator, denominator = tif.pages[0].tags["XResolution"].value
        assert denominator / numerator == pytest.approx(0.4)


def test_predict_copies_the_clearest_image_file_and_replaces_its_folder_only_when_asked(
    tiny_feces, trained_run, tmp_path, capsys
):
    out = tmp_path / "out"
    args = ["predict", f"ckpt={trained_run}", f"input={tiny_feces}", f"out={out}", "num_workers=0"]
    assert main(args) == 0
    with open(out / "clearest.csv") as handle:
        picks = {r["group"]: r["image"] for r in csv.DictReader(handle)}
    assert len(picks) == 8 and sorted(p.name for p in (out / "clearest").iterdir()) == sorted(
        f"{g}.png" for g in picks
    )
    for group, image in picks.items():  # byte for byte: no re-encoding
        assert (out / "clearest" / f"{group}.png").read_bytes() == (tiny_feces / image).read_bytes()
    # a second run refuses to replace them (the folder alone is enough), then (overwrite=true) replaces
    # the folder as a whole
    stale = out / "clearest" / "old-group.png"
    stale.write_bytes(b"from an earlier run")
    (out / "predictions.csv").unlink()
    (out / "clearest.csv").unlink()
    assert main(args) == 2 and "['clearest']" in capsys.readouterr().err
    assert stale.exists()
    assert main([*args, "overwrite=true"]) == 0
    assert not stale.exists() and len(list((out / "clearest").iterdir())) == 8
    assert not (out / "clearest.partial").exists()
    # clearest_images=false: the tables alone
    only = tmp_path / "tables"
    assert main([*args[:3], f"out={only}", "num_workers=0", "clearest_images=false"]) == 0
    assert sorted(p.name for p in only.iterdir()) == ["clearest.csv", "predictions.csv"]


@pytest.mark.parametrize(
    ("shape", "dtype", "pixel_um"),
    [((48, 64, 3), np.uint8, 0.4), ((48, 64, 3), np.uint16, 0.4), ((48, 64, 4), np.uint8, None)],
    ids=["8-bit RGB with its pixel size", "16-bit RGB", "RGBA"],
)
def test_a_colour_plane_is_written_with_its_samples_and_dtype(tmp_path, shape, dtype, pixel_um):
    from types import SimpleNamespace

    from gmaiqa.predict import save_clearest

    planes = (np.random.default_rng(0).random((3, *shape)) * 200).astype(dtype)
    source = tmp_path / "colour.tif"
    tifffile.imwrite(source, planes, photometric="rgb", planarconfig="contig")
    stack = SimpleNamespace(
        group="colour", paths=[tmp_path / f"colour.tif#z{z}" for z in range(3)], pixel_um=pixel_um
    )
    written = save_clearest(tmp_path / "clearest", stack, 1)
    assert written == tmp_path / "clearest" / "colour.tif"
    with tifffile.TiffFile(written) as tif:
        np.testing.assert_array_equal(tif.asarray(), planes[1])
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        if pixel_um is not None and dtype == np.uint8:  # ImageJ's TIFF holds 8-bit RGB with its pixel size
            numerator, denominator = tif.pages[0].tags["XResolution"].value
            assert tif.imagej_metadata["unit"] == "um" and denominator / numerator == pytest.approx(pixel_um)


def test_predict_with_a_classical_measure_needs_no_network(stacks, tmp_path, capsys):
    """`method=TENG`: what the default model's table recommends for some stacks, on unlabelled stacks;
    its scores are the measure's own values on the stored images, as benchmark computes them."""
    from gmaiqa.focus import get_measure

    out = tmp_path / "teng"
    assert main(["predict", f"input={stacks}", f"out={out}", "method=TENG"]) == 0
    assert capsys.readouterr().out.startswith("method: TENG, a classical focus measure")
    with open(out / "clearest.csv") as handle:
        picks = {r["group"]: r for r in csv.DictReader(handle)}
    assert sorted(picks) == ["ij", "ome", "plain"] and {int(r["z"]) for r in picks.values()} == {SHARPEST}
    written = tifffile.imread(out / "clearest" / "plain.tif")
    np.testing.assert_array_equal(written, tifffile.imread(stacks / "plain.tif")[SHARPEST])
    with open(out / "predictions.csv") as handle:
        plain = [float(r["score"]) for r in csv.DictReader(handle) if r["group"] == "plain"]
    (stack,) = [s for s in load_dataset(stacks) if s.group == "plain"]
    batch = torch.from_numpy(np.stack([stack.read(i) for i in range(len(stack))])).permute(0, 3, 1, 2)
    np.testing.assert_allclose(plain, get_measure("TENG")(batch).numpy(), rtol=1e-5)  # 6 digits kept
    # a misspelt measure, or a network named beside it, is one clear error before anything is read
    assert main(["predict", f"input={stacks}", f"out={tmp_path / 'x'}", "method=TENX"]) == 2
    assert "config `method`" in (err := capsys.readouterr().err) and "TENG" in err
    args = ["predict", f"input={stacks}", f"out={tmp_path / 'y'}", "method=TENG", f"ckpt={tmp_path}"]
    assert main(args) == 2 and "give one" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_one_stack_file_is_a_dataset_of_its_own(stacks, tmp_path, capsys):
    """`input=cell.ome.tif`: the file a microscope wrote is enough, without a folder made for it; its
    planes are named relative to the file's folder, as they are when the folder is the input."""
    add_two_channels(stacks)
    out = tmp_path / "one"
    assert main(["predict", f"input={stacks / 'two.ome.tif'}", f"out={out}", "method=TENG", "channel=1"]) == 0
    assert "scored 5 images in 1 group with TENG" in capsys.readouterr().out
    with open(out / "clearest.csv") as handle:
        (pick,) = list(csv.DictReader(handle))
    reversed_sharpest = 4 - SHARPEST  # the GFP channel runs the focus series backwards
    assert pick["group"] == "two" and pick["image"] == f"two.ome.tif#z{reversed_sharpest}c1"
    assert [p.name for p in (out / "clearest").iterdir()] == ["two.tif"]
    assert main(["check", f"root={stacks / 'ome.ome.tif'}", "json=true"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["groups"] == 1 and report["images"] == 5 and list(report["stack_files"]) == ["ome.ome.tif"]
    assert report["stack_files"]["ome.ome.tif"]["z_step_um"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "name, message",
    [
        ("single.tif", "holds a single image, not a z-stack"),
        ("notes.csv", "is a file but not a z-stack file"),
        ("missing.tif", "does not exist"),
        ("manifest.csv", "is a manifest, not a dataset folder"),
    ],
)
def test_a_file_that_is_not_a_z_stack_is_one_clear_error(stacks, tmp_path, capsys, name, message):
    (stacks / "notes.csv").write_text("group,image\n")
    (stacks / "manifest.csv").write_text("group,image\n")
    out = tmp_path / "out"
    assert main(["predict", f"input={stacks / name}", f"out={out}", "method=TENG"]) == 2
    err = capsys.readouterr().err
    assert message in err and name in err and not out.exists()


def test_a_float_or_wide_integer_stack_is_scaled_by_its_own_range_one_map_for_all_planes(tmp_path, capsys):
    """ImageJ's 32-bit stacks, deconvolved or background-subtracted floats, signed and 32-bit cameras:
    such stacks used to be refused. Each is scaled by its stack's range (by its highest value where none
    is negative, zero kept; lowest to highest otherwise): the planes keep their relative contrast, so
    the sharp plane stays the sharp one, and the scaled planes are the stack's values under that map."""
    from gmaiqa.data.io import read_image

    folder = tmp_path / "stacks"
    folder.mkdir()
    series = focus_series().astype(np.float64)  # 0-60000
    stored = {
        "counts": series.astype(np.int32),
        "raw": (series * 2.5).astype(np.float32),  # a deconvolution's 0-150000
        "signed": (series - 30000).astype(np.int16),  # background subtracted: -30000-30000
        "unit": (series / 65535).astype(np.float32),  # already in [0, 1]: used as stored
    }
    for name, values in stored.items():
        tifffile.imwrite(folder / f"{name}.tif", values)
    assert main(["check", f"root={folder}", "validate=full"]) == 0
    report = capsys.readouterr().out
    assert "counts.tif: 5 planes of 48x64 int32 (scaled by its range)" in report
    assert "raw.tif: 5 planes of 48x64 float32 (scaled by its range where it leaves [0, 1])" in report

    def plane(name, z):
        return read_image(f"{folder / name}.tif#z{z}")[..., 0]

    for z in range(5):
        np.testing.assert_allclose(
            plane("counts", z), stored["counts"][z] / stored["counts"].max(), atol=1e-6
        )
        np.testing.assert_allclose(plane("raw", z), stored["raw"][z] / stored["raw"].max(), atol=1e-6)
        signed = stored["signed"].astype(np.float64)
        expected = (signed[z] - signed.min()) / (signed.max() - signed.min())
        np.testing.assert_allclose(plane("signed", z), expected, atol=1e-6)
        np.testing.assert_array_equal(plane("unit", z), stored["unit"][z])
    blurred = [float(plane("raw", z).std()) for z in range(5)]
    assert blurred.index(max(blurred)) == SHARPEST and min(blurred) < 0.5 * max(blurred)  # not stretched

    out = tmp_path / "out"
    assert main(["predict", f"input={folder}", f"out={out}", "method=TENG"]) == 0
    with open(out / "clearest.csv") as handle:
        picks = {r["group"]: int(r["z"]) for r in csv.DictReader(handle)}
    assert picks == {name: SHARPEST for name in stored}
    written = tifffile.imread(out / "clearest" / "raw.tif")  # the stored plane, not the scaled one
    assert written.dtype == np.float32
    np.testing.assert_array_equal(written, stored["raw"][SHARPEST])


def test_scaling_by_the_stack_range_leaves_the_models_scores_unchanged(stacks, trained_run, tmp_path):
    """GMANet z-scores every image (§3.4), so one affine map per stack changes none of its scores: the
    16-bit stack and the same counts stored as float32 (times 3, plus 100) score alike."""
    uint16 = tifffile.imread(stacks / "plain.tif")
    only = tmp_path / "two"
    only.mkdir()
    tifffile.imwrite(only / "levels.tif", uint16)
    tifffile.imwrite(only / "floats.tif", uint16.astype(np.float32) * 3 + 100)
    out = tmp_path / "out"
    assert main(["predict", f"ckpt={trained_run}", f"input={only}", f"out={out}", "num_workers=0"]) == 0
    with open(out / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    scores = {g: [float(r["score"]) for r in rows if r["group"] == g] for g in ("levels", "floats")}
    assert len(scores["levels"]) == 5
    np.testing.assert_allclose(scores["floats"], scores["levels"], atol=1e-3)


def test_check_decodes_every_plane_and_names_a_file_whose_pixels_cannot_be_used_once(tmp_path, capsys):
    """validate=full decodes the planes and asks whether training could use them: a float stack with
    NaN (which leaves its range undefined: named with the plane that holds it) and a complex one are
    named once each, and check fails instead of a run failing in its middle."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    series = focus_series().astype(np.float32)
    holes = series.copy()
    holes[2, 10, 10] = np.nan
    tifffile.imwrite(folder / "holes.tif", holes)
    tifffile.imwrite(folder / "waves.tif", series.astype(np.complex64))
    tifffile.imwrite(folder / "scaled.tif", series)  # usable
    assert main(["check", f"root={folder}", "validate=full"]) == 1
    report = capsys.readouterr().out
    errors = [line for line in report.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 2, report
    assert (
        "holes.tif: NaN or infinite values in plane holes.tif#z2" in errors[0] and "replace them" in errors[0]
    )
    assert "waves.tif (5 planes, waves.tif#z0 first): unsupported pixel type complex64" in errors[1]
    (folder / "holes.tif").unlink()
    (folder / "waves.tif").unlink()
    assert main(["check", f"root={folder}", "validate=full"]) == 0


def test_check_reads_each_plane_of_a_float_stack_once_and_scoring_reads_its_range_once(tmp_path, monkeypatch):
    """Full validation checks a plane by its own values (type, layout, NaN), not by its stack's range:
    reading the whole stack again for the range would double a check's reads of every float stack."""
    from gmaiqa.data import io, stackfile

    folder = tmp_path / "stacks"
    folder.mkdir()
    tifffile.imwrite(folder / "scaled.tif", focus_series().astype(np.float32) * 7)  # outside [0, 1]
    reads = []
    original = stackfile.read_plane

    def counted(path, z, *args, **kwargs):
        reads.append(z)
        return original(path, z, *args, **kwargs)

    monkeypatch.setattr(stackfile, "read_plane", counted)
    monkeypatch.setattr(io, "read_plane", counted)
    assert main(["check", f"root={folder}", "validate=full"]) == 0
    assert sorted(reads) == [0, 1, 2, 3, 4]
    # scoring a plane reads the range once (all planes), then each plane it scores
    reads.clear()
    for z in range(5):
        io.read_image(f"{folder / 'scaled.tif'}#z{z}")
    assert sorted(reads) == sorted([*range(5), *range(5)])


def test_a_single_float_image_outside_0_1_is_refused_with_the_stack_file_remedy(tmp_path):
    """A loose image has no stack to be scaled with: scaling each file alone would stretch a blurred
    plane to the contrast of a sharp one, so it is refused and the message says how to get it read."""
    from gmaiqa.data.io import read_image
    from gmaiqa.errors import ImageReadError

    tifffile.imwrite(tmp_path / "x.tif", focus_series()[0].astype(np.float32))
    with pytest.raises(ImageReadError, match="outside \\[0, 1\\].*one multi-page TIFF"):
        read_image(tmp_path / "x.tif")
    tifffile.imwrite(tmp_path / "n.tif", focus_series()[0].astype(np.int32))
    with pytest.raises(ImageReadError, match="int32 for a single image.*one multi-page TIFF"):
        read_image(tmp_path / "n.tif")


def test_a_three_plane_stack_saved_as_one_colour_image_is_named_with_the_way_to_save_it(
    stacks, tmp_path, capsys
):
    """tifffile.imwrite stores a (3, H, W) or (4, H, W) array as one RGB(A) page of separate colour planes
    unless given photometric='minisblack' (tifffile 2026 warns that this default will change): such a
    file is one colour image to every reader, so it is not taken as a z-stack, but check, predict and a
    folder of one image each say what it is and how to write it as a stack. A colour image stored the
    usual way (samples interleaved) gets no such note."""
    three = focus_series()[:3]
    tifffile.imwrite(stacks / "three.tif", three, photometric="rgb", planarconfig="separate")
    tifffile.imwrite(stacks / "colour.tif", np.moveaxis(three, 0, -1), photometric="rgb")
    assert main(["check", f"root={stacks}"]) == 0
    out = capsys.readouterr().out
    assert "three.tif: read as one colour image: its 3 planes are the samples of one RGB page" in out
    assert "photometric='minisblack'" in out and "colour.tif: read as" not in out
    assert main(["predict", f"input={stacks / 'three.tif'}", f"out={tmp_path / 'p'}", "method=TENG"]) == 2
    err = capsys.readouterr().err
    assert "three.tif: read as one colour image: its 3 planes are the samples of one RGB page" in err

    alone = tmp_path / "alone"
    alone.mkdir()
    (stacks / "three.tif").rename(alone / "three.tif")
    assert main(["check", f"root={alone}"]) == 1
    out = capsys.readouterr().out
    assert "only 1 image" in out and "three.tif: read as one colour image" in out

    # written as the note says, the same planes are a z-stack of 3
    tifffile.imwrite(alone / "three.tif", three, photometric="minisblack")
    assert main(["check", f"root={alone}"]) == 0
    out = capsys.readouterr().out
    assert "three.tif: 3 planes of" in out and "read as one colour image" not in out

    # a folder that is one z-stack of colour images stored that way: its planes, no note for each
    planes = tmp_path / "planes"
    planes.mkdir()
    for z in range(3):
        tifffile.imwrite(planes / f"z{z}.tif", three, photometric="rgb", planarconfig="separate")
    assert main(["check", f"root={planes}"]) == 0
    out = capsys.readouterr().out
    assert "images 3" in out and "read as one colour image" not in out


def test_a_time_series_without_z_is_named_as_such_not_as_a_single_image(stacks, tmp_path, capsys):
    """An OME-TIFF of time points and no z planes holds several images but no z-stack: beside stacks it
    gets its own note (what it is, how to save a focus sweep recorded over time as z planes) instead of
    the single-images warning, and as predict's input it is refused with that note."""
    tifffile.imwrite(stacks / "sweep.ome.tif", focus_series(), ome=True, metadata={"axes": "TYX"})
    assert main(["check", f"root={stacks}"]) == 0
    out = capsys.readouterr().out
    assert "sweep.ome.tif: a time series of 5 time points without z planes, not a z-stack" in out
    assert "metadata={'axes': 'ZYX'}" in out
    assert "belong to no group (single.tif)" in out  # the ordinary single image keeps its warning
    assert main(["predict", f"input={stacks / 'sweep.ome.tif'}", f"out={tmp_path / 'p'}", "method=TENG"]) == 2
    assert "sweep.ome.tif: a time series of 5 time points" in capsys.readouterr().err


def test_each_series_of_an_ome_tiff_that_holds_a_z_stack_is_a_group_of_its_own(tmp_path, capsys):
    """An OME-TIFF of several images (stage positions) is several z-stacks: each image that holds z planes
    is a group ``<name>/s<k>`` with its own z step and channel names, its planes named ``#s<k>z..``, as
    a vendor file's scenes are; an overview image among them is no group. Only the first image was read
    before, the other positions silently left out. A file with one z-stack and a thumbnail keeps the
    file's name."""
    folder = tmp_path / "positions"
    folder.mkdir()
    a = np.stack([focus_series(1), focus_series(2)[::-1]], axis=1)  # Z C Y X; GFP sharpest at z1
    b = np.stack([focus_series(3)[::-1], focus_series(4)], axis=1)  # GFP sharpest at SHARPEST
    with tifffile.TiffWriter(folder / "plate.ome.tif", ome=True) as writer:
        for name, data, step in (("A1", a, 0.5), ("B2", b[:4], 1.5)):
            meta = {"axes": "ZCYX", "Name": name, "PhysicalSizeZ": step, "Channel": {"Name": ["DAPI", "GFP"]}}
            writer.write(data, metadata=meta)
        writer.write(a[0, 0], metadata={"axes": "YX", "Name": "overview"})
    with tifffile.TiffWriter(folder / "thumbed.tif") as writer:
        writer.write(focus_series(5))
        writer.write(focus_series(5)[0, :8, :8])
    groups = {s.group: s for s in load_dataset(folder, channel="GFP")}
    assert set(groups) == {"plate/s0", "plate/s1", "thumbed"}
    assert len(groups["plate/s0"]) == 5 and len(groups["plate/s1"]) == 4
    np.testing.assert_allclose(groups["plate/s1"].z_um, [0, 1.5, 3.0, 4.5])
    np.testing.assert_array_equal(read_raw(groups["plate/s1"].paths[2]), b[2, 1])
    np.testing.assert_array_equal(read_raw(groups["plate/s0"].paths[3]), a[3, 1])
    assert str(groups["plate/s1"].paths[2]).endswith("plate.ome.tif#s1z2c1")

    assert main(["check", f"root={folder}", "channel=GFP"]) == 0
    out = capsys.readouterr().out
    assert "plate.ome.tif scene 1: 4 planes of 48x64 uint16, scene name B2, z step 1.5 µm" in out
    assert "groups   3" in out
