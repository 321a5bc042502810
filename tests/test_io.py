"""Image reading: formats, bit depths, channels; bad files raise naming the file."""

import cv2
import numpy as np
import pytest
import tifffile

from gmaiqa.data.io import image_size, read_image, write_png
from gmaiqa.errors import ImageReadError

RNG = np.random.default_rng(0)


def _write(path, array):
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    else:
        bgr = array[..., ::-1] if array.ndim == 3 and array.shape[2] == 3 else array
        if array.ndim == 3 and array.shape[2] == 4:
            bgr = array[..., [2, 1, 0, 3]]
        assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_lossless_formats_round_trip_8bit(tmp_path, suffix, channels):
    shape = (12, 17) if channels is None else (12, 17, channels)
    array = RNG.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"img{suffix}"
    _write(path, array)
    rgb = read_image(path)
    assert rgb.shape == (12, 17, 3) and rgb.dtype == np.float32
    expected = array if channels is None else array[..., 0]
    np.testing.assert_allclose(rgb[..., 0], expected / 255.0, atol=1e-7)
    if channels:
        np.testing.assert_allclose(rgb, array[..., :3] / 255.0, atol=1e-7)  # RGB order, alpha dropped
    assert image_size(path) == (12, 17)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [None, 3])
def test_16bit_keeps_full_range(tmp_path, suffix, channels):
    shape = (9, 11) if channels is None else (9, 11, channels)
    array = RNG.integers(0, 65536, shape, dtype=np.uint16)
    array.flat[0], array.flat[1] = 1, 65535  # the two ends of the range survive
    path = tmp_path / f"img{suffix}"
    _write(path, array)
    rgb = read_image(path)
    restored = np.rint(rgb * 65535).astype(np.uint16)
    expected = array if channels else np.repeat(array[..., None], 3, 2)
    np.testing.assert_array_equal(restored if channels else restored, expected)


def test_jpeg_reads_close(tmp_path):
    array = np.full((16, 16, 3), (200, 100, 50), np.uint8)
    path = tmp_path / "img.jpg"
    _write(path, array)
    np.testing.assert_allclose(read_image(path)[8, 8], np.array([200, 100, 50]) / 255, atol=0.03)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_truncated_file_is_an_error_naming_it(tmp_path, suffix):
    path = tmp_path / f"cut{suffix}"
    _write(path, RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=f"cut{suffix}.*truncated"):
        read_image(path)


def test_missing_empty_and_unknown_files(tmp_path):
    with pytest.raises(ImageReadError, match="nope.png: file not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageReadError, match="unsupported image type"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40 + b"IEND\xaeB`\x82")
    with pytest.raises(ImageReadError, match="garbage.png"):
        read_image(tmp_path / "garbage.png")


def test_write_png_round_trip(tmp_path):
    array = RNG.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    write_png(tmp_path / "x.png", array)
    np.testing.assert_array_equal(np.rint(read_image(tmp_path / "x.png") * 255).astype(np.uint8), array)
