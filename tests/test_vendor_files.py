"""Microscope vendors' files (gmaiqa.data.vendor) as stack files: a Zeiss CZI, written here with Zeiss's own
library (pylibCZIrw, which bioio-czi reads with), is a group with its z step, pixel size and channel
names, through check, a classical measure and predict; each scene of a file that holds a z-stack is a
group of its own; without the vendor extra a vendor file is one clear error that names it. ND2 and LIF
go through the same bioio calls; no writer for them exists."""

from __future__ import annotations

import builtins
import csv
import json

import numpy as np
import pytest
import tifffile

from gmaiqa.cli import main
from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.io import read_raw
from gmaiqa.data.stackfile import close_open_stacks
from gmaiqa.errors import ImageReadError
from helpers.stack_files import SHARPEST, focus_series, write_czi

pytest.importorskip("pylibCZIrw.czi", reason="the vendor extra (bioio-czi) brings pylibCZIrw")
pytest.importorskip("bioio_czi")


@pytest.fixture
def czi_folder(tmp_path):
    folder = tmp_path / "czi"
    folder.mkdir()
    two_channels = np.stack([focus_series(1), focus_series(2)[::-1]], axis=1)  # GFP sharp at the other end
    write_czi(folder / "cells.czi", two_channels, names={0: "DAPI", 1: "GFP"})
    yield folder, two_channels
    close_open_stacks()


def test_a_czi_stack_is_a_group_with_its_z_step_pixel_size_and_channels(czi_folder, capsys):
    folder, data = czi_folder
    assert main(["check", f"root={folder}"]) == 1  # two channels, none chosen: the names are listed
    assert "cells.czi: has 2 channels (DAPI, GFP); none was chosen" in capsys.readouterr().out
    assert main(["check", f"root={folder}", "channel=GFP"]) == 0
    described = "cells.czi: 5 planes of 48x64 uint16, z step 1.5 µm, 0.4 µm/pixel, 2 channels (DAPI, GFP)"
    assert described in capsys.readouterr().out
    (stack,) = load_dataset(folder, channel="GFP")
    assert stack.group == "cells" and stack.pixel_um == pytest.approx(0.4)
    assert stack.z_um == pytest.approx([1.5 * z for z in range(5)])
    assert [p.name for p in stack.paths] == [f"cells.czi#z{z}c1" for z in range(5)]
    for z, plane in enumerate(stack.paths):
        got = read_raw(plane)
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, data[z, 1])


def test_forked_workers_read_the_planes_of_a_czi_their_parent_has_open(czi_folder):
    """Training's data-loader workers are forked: each opens the file afresh (the inherited bioio
    object is forgotten, as a TIFF handle is) and reads the right planes."""
    import multiprocessing

    folder, data = czi_folder
    references = [f"{folder / 'cells.czi'}#z{z}c{c}" for z in range(5) for c in range(2)]
    read_raw(references[0])  # the parent holds the file open, then forks
    with multiprocessing.get_context("fork").Pool(2) as pool:
        planes = pool.map(read_raw, references * 2)
    np.testing.assert_array_equal(np.stack(planes), np.concatenate([data.reshape(10, 48, 64)] * 2))
    np.testing.assert_array_equal(read_raw(references[7]), data[3, 1])


class MultiSceneImage:
    """The part of ``bioio.BioImage`` gmaiqa uses, for a file of several scenes (stage positions): no
    writer makes a multi-scene CZI that bioio-czi reads back as such (pylibCZIrw's metadata leaves
    the scenes out), and ND2 and LIF have no writer at all."""

    def __init__(self, scenes: list[np.ndarray]):  # each (T, C, Z, Y, X)
        from bioio_base.types import PhysicalPixelSizes

        self.stacks, self.scenes, self.current_scene_index = scenes, ("A1", "empty", "B2"), 0
        self.physical_pixel_sizes, self.channel_names = PhysicalPixelSizes(2.0, 0.5, 0.5), ["BF"]

    def set_scene(self, index: int) -> None:
        self.current_scene_index = index

    @property
    def dims(self):
        from bioio_base.dimensions import Dimensions

        return Dimensions("TCZYX", self.stacks[self.current_scene_index].shape)

    @property
    def dtype(self):
        return self.stacks[self.current_scene_index].dtype

    def get_image_data(self, order: str, Z: int, C: int, T: int) -> np.ndarray:
        assert order == "YX"
        return self.stacks[self.current_scene_index][T, C, Z]


def test_each_scene_of_a_vendor_file_that_holds_a_z_stack_is_its_own_group(tmp_path, monkeypatch, capsys):
    import gmaiqa.data.vendor as vendor

    folder = tmp_path / "plate"
    folder.mkdir()
    (folder / "plate.nd2").write_bytes(b"read by the stand-in below")
    first, single, second = focus_series(3), focus_series(5)[:1], focus_series(4, planes=7)
    image = MultiSceneImage([s[None, None] for s in (first, single, second)])
    monkeypatch.setattr(vendor, "open_vendor_file", lambda path: image)
    try:
        stacks = {s.group: s for s in load_dataset(folder)}
        assert sorted(stacks) == ["plate/s0", "plate/s2"]  # scene 1 has one plane: not a z-stack
        assert [len(stacks["plate/s0"]), len(stacks["plate/s2"])] == [5, 7]
        assert stacks["plate/s2"].paths[6].name == "plate.nd2#s2z6"
        assert stacks["plate/s2"].z_um == pytest.approx([2.0 * z for z in range(7)])
        np.testing.assert_array_equal(read_raw(stacks["plate/s2"].paths[6]), second[6])
        np.testing.assert_array_equal(read_raw(stacks["plate/s0"].paths[2]), first[2])
        with pytest.raises(ImageReadError, match="plate.nd2: has no plane z=7 .*scene 2"):
            read_raw(folder / "plate.nd2#s2z7")
        assert main(["check", f"root={folder}"]) == 0
        printed = capsys.readouterr().out
        assert "plate.nd2 scene 2: 7 planes of 48x64 uint16, scene name B2, z step 2 µm" in printed
        assert main(["check", f"root={folder}", "json=true"]) == 0
        files = json.loads(capsys.readouterr().out)["stack_files"]
        assert sorted(files) == ["plate.nd2 scene 0", "plate.nd2 scene 2"]
        assert files["plate.nd2 scene 2"] == {
            "planes": 7, "size": [48, 64], "dtype": "uint16", "z_step_um": 2.0, "channels": ["BF"],
            "times": 1, "pixel_um": 0.5, "scene": 2, "scene_name": "B2",
        }  # fmt: skip
    finally:
        close_open_stacks()


def test_a_focus_measure_and_predict_find_the_sharp_plane_of_a_czi(czi_folder, trained_run, tmp_path):
    folder, data = czi_folder
    # a manifest may name a CZI's planes (scene, channel) like a TIFF's
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    (labelled / "cells.czi").write_bytes((folder / "cells.czi").read_bytes())
    rows = "".join(f"g,cells.czi#z{z}c0,{z},{int(z == SHARPEST)}\n" for z in range(5))
    (labelled / "manifest.csv").write_text("group,image,z,clearest\n" + rows)
    out = tmp_path / "bench"
    args = ["benchmark", f"data.root={labelled}", "methods=[TENG]", f"out={out}"]
    assert main([*args, "logger.wandb.mode=disabled"]) == 0
    with open(out / "benchmark.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["method"] == "TENG" and float(row["acc"]) == 1.0 and int(row["t0"]) == 1
    # predict on the folder: every plane scored and named, the clearest one written as it was stored
    predicted = tmp_path / "predicted"
    predict = ["predict", f"ckpt={trained_run}", f"input={folder}", f"out={predicted}", "channel=DAPI"]
    assert main([*predict, "num_workers=0"]) == 0
    with open(predicted / "predictions.csv") as handle:
        assert [r["image"] for r in csv.DictReader(handle)] == [f"cells.czi#z{z}c0" for z in range(5)]
    with open(predicted / "clearest.csv") as handle:
        (best,) = list(csv.DictReader(handle))
    written = tifffile.imread(predicted / "clearest" / "cells.tif")
    np.testing.assert_array_equal(written, data[int(best["z"]), 0])


def test_without_the_vendor_extra_a_vendor_file_is_one_clear_error(czi_folder, monkeypatch, capsys):
    folder, _ = czi_folder
    close_open_stacks()
    real_import = builtins.__import__

    def no_bioio(name, *args, **kwargs):
        if name == "bioio" or name.startswith("bioio."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bioio)
    assert main(["check", f"root={folder}"]) == 1  # an invalid dataset
    printed = capsys.readouterr().out
    assert "cells.czi: is a Zeiss CZI file, and reading it needs gmaiqa's vendor extra" in printed
    assert "uv run --extra vendor gmaiqa" in printed
