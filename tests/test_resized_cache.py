"""``data.cache=resized``: images stored once at the training size, keyed by content and resize."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gmaiqa.data import io
from gmaiqa.data.cache import ResizedImageCache
from gmaiqa.data.transforms import Preprocess
from gmaiqa.errors import ConfigError


def entries(cache: ResizedImageCache) -> list:
    return sorted(cache.folder.glob("*/*.npy"))


def write(path, seed: int, size=(60, 80)) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    cv2.imwrite(str(path), rgb)


def test_a_cached_image_is_the_resized_image_within_half_a_level_and_is_read_from_the_cache(
    tmp_path, monkeypatch
):
    image = tmp_path / "a.png"
    write(image, 0)
    cache = ResizedImageCache(tmp_path / "cache", (30, 40))
    first = cache.read(image, None)
    expected = Preprocess((30, 40)).resized(io.read_image(image))[0].permute(1, 2, 0).numpy()
    assert first.shape == (30, 40, 3) and first.dtype == np.float32
    assert np.abs(first - expected).max() <= 0.5 / 255 + 1e-6
    assert len(entries(cache)) == 1 and np.load(entries(cache)[0]).dtype == np.uint8

    def no_decoding(path):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(io, "read_raw", no_decoding)
    np.testing.assert_array_equal(cache.read(image, None), first)


@pytest.mark.parametrize("dtype, top", [(np.uint16, 60000), (np.int32, 250000), (np.float32, 3.5e5)])
def test_the_planes_of_a_stack_file_are_cached_one_entry_each_and_scaled_as_read(tmp_path, dtype, top):
    """A plane reference (``stack.tif#z2``) has no bytes of its own: hashing its path once crashed
    with FileNotFoundError, and hashing the whole stack per plane would read it once per plane. A
    32-bit stack, which OpenCV cannot resize, is resized as float and then scaled by its stack's
    range as the uncached read is; a rewritten stack makes new entries."""
    import time

    import tifffile

    stack = tmp_path / "stack.tif"
    values = np.random.default_rng(0).random((6, 60, 80)) * top  # 3 or 4 would be colour samples
    tifffile.imwrite(stack, values.astype(dtype))
    cache = ResizedImageCache(tmp_path / "cache", (30, 40))
    for z in range(6):
        plane = tmp_path / f"stack.tif#z{z}"
        cached = cache.read(plane, None)
        expected = Preprocess((30, 40)).resized(io.read_image(plane))[0].permute(1, 2, 0).numpy()
        assert np.abs(cached - expected).max() <= 1e-4
        np.testing.assert_array_equal(cache.read(plane, None), cached)
    assert len(entries(cache)) == 6
    time.sleep(0.01)
    tifffile.imwrite(stack, (values[::-1] * 0.5).astype(dtype))  # same name, new content
    plane = tmp_path / "stack.tif#z0"
    rewritten = cache.read(plane, None)
    expected = Preprocess((30, 40)).resized(io.read_image(plane))[0].permute(1, 2, 0).numpy()
    assert np.abs(rewritten - expected).max() <= 1e-4 and len(entries(cache)) == 7


def test_a_changed_file_or_resize_makes_a_new_entry(tmp_path):
    image = tmp_path / "a.png"
    write(image, 0)
    cache = ResizedImageCache(tmp_path / "cache", (30, 40))
    before = cache.read(image, None)
    write(image, 1)  # same name, new content
    after = cache.read(image, None)
    assert len(entries(cache)) == 2 and not np.array_equal(before, after)
    np.testing.assert_allclose(
        after,
        Preprocess((30, 40)).resized(io.read_image(image))[0].permute(1, 2, 0).numpy(),
        atol=0.5 / 255 + 1e-6,
    )
    other = ResizedImageCache(tmp_path / "cache", (20, 20)).read(image, None)
    assert other.shape == (20, 20, 3) and len(entries(cache)) == 3
    cropped = cache.read(image, (50, 70))  # a group centre-cropped to its smallest size (uniform_sizes=crop)
    assert cropped.shape == (30, 40, 3) and len(entries(cache)) == 4
    assert not list(cache.folder.glob("*/.*partial*"))  # nothing half-written left behind


def test_the_datamodule_reads_through_the_cache(tiny_feces, tmp_path):
    from gmaiqa.data.datamodule import FocusStackDataModule
    from gmaiqa.data.sampling import SampleKey

    dm = FocusStackDataModule(
        root=str(tiny_feces),
        cache_dir=str(tmp_path),
        resize=(64, 96),
        crop=(32, 48),
        block=(8, 8),
        num_workers=0,
        validate="headers",
        cache="resized",
    )
    item = dm.dataset("train", train=True)[SampleKey(0, 0, 0, 0)]
    assert item["image"].shape == (3, 32, 48) and len(list((tmp_path / "resized").glob("*/*.npy"))) == 1
    with pytest.raises(ConfigError, match="data.cache"):
        FocusStackDataModule(root=str(tiny_feces), cache="everything")


def test_training_on_the_planes_of_stack_files_reads_them_through_the_cache(tmp_path):
    """A manifest naming planes of stack files (``s0.tif#z3``) trained without the cache: the datamodule
    left planes out of it while the cache could not key them. Every plane read makes its entry, and
    the items match the uncached ones (float stacks scaled by their range either way)."""
    import csv

    import tifffile
    import torch

    from gmaiqa.data.datamodule import FocusStackDataModule
    from gmaiqa.data.sampling import SampleKey

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for group, dtype in enumerate((np.uint16, np.float32)):
        planes = rng.random((5, 60, 80)) * (60000 if dtype == np.uint16 else 123.0)
        tifffile.imwrite(data / f"s{group}.tif", planes.astype(dtype))
        rows += [
            {
                "group": f"s{group}",
                "image": f"s{group}.tif#z{z}",
                "z": z,
                "clearest": int(z == 2),
                "score": 100 - 20 * abs(z - 2),
                "split": ("train", "val")[group],
            }
            for z in range(5)
        ]
    with open(data / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    options = dict(root=str(data), resize=(30, 40), crop=None, block=(8, 8), num_workers=0)
    cached = FocusStackDataModule(cache_dir=str(tmp_path / "cache"), cache="resized", **options)
    plain = FocusStackDataModule(cache_dir=str(tmp_path / "none"), **options)
    items = [
        (cached.dataset(split)[key], plain.dataset(split)[key])
        for split in ("train", "val")  # the uint16 stack, the float32 one
        for key in (SampleKey(0, z, 0, 0) for z in range(5))
    ]
    assert len(list((tmp_path / "cache" / "resized").glob("*/*.npy"))) == 10
    for with_cache, without in items:
        assert torch.allclose(with_cache["image"], without["image"], atol=0.05)
