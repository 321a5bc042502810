"""Image reading: PNG / TIFF / JPEG / BMP, 8- or 16-bit, grey / RGB / RGBA -> float32 RGB in [0, 1].

16-bit data is divided by 65535 (not squeezed to 8 bits), so float32 keeps every level. A plane of a
stack file stored as floats or wider integers is scaled by its stack's range (``gmaiqa.data.stackfile``).
A file that cannot be decoded completely raises ``ImageReadError`` naming it; it never becomes a zero
image.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import tifffile

from gmaiqa.data.stackfile import check_finite_plane, parse_reference, read_plane, stack_range
from gmaiqa.errors import ImageReadError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"

cv2.setNumThreads(1)  # data loader workers parallelise; nested OpenCV threads only oversubscribe


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _check_complete(path: Path, data: bytes) -> None:
    """Decoders often return a half-grey image for a truncated file; catch truncation up front."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        if not data.startswith(_PNG_SIGNATURE):
            raise ImageReadError(path, "not a PNG file (bad signature)")
        if not data.rstrip(b"\x00").endswith(_PNG_END):
            raise ImageReadError(path, "truncated PNG (no IEND chunk at the end of the file)")
    elif suffix in (".jpg", ".jpeg"):
        if not data.startswith(b"\xff\xd8"):
            raise ImageReadError(path, "not a JPEG file (no SOI marker)")
        if b"\xff\xd9" not in data[-64:]:
            raise ImageReadError(path, "truncated JPEG (no end-of-image marker)")
    elif suffix == ".bmp":
        if len(data) < 14 or not data.startswith(b"BM"):
            raise ImageReadError(path, "not a BMP file")
        declared = struct.unpack_from("<I", data, 2)[0]
        if declared and len(data) < declared:
            raise ImageReadError(path, f"truncated BMP ({len(data)} of {declared} bytes)")


def _read_tiff(path: Path) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            size = path.stat().st_size
            for offset, count in zip(page.dataoffsets, page.databytecounts):
                if offset + count > size:
                    raise ImageReadError(path, "truncated TIFF (image data runs past the end of the file)")
            return page.asarray()
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageReadError(path, f"unreadable TIFF ({type(exc).__name__}: {exc})") from exc


def read_raw(path: str | Path) -> np.ndarray:
    """Decode a file to its stored dtype and channels (H, W) or (H, W, C), channels in RGB order; a plane
    reference (``stack.tif#z3``, ``gmaiqa.data.stackfile``) reads that plane of a stack file."""
    path = Path(path)
    plane = parse_reference(path)
    if plane is not None:
        return _read_plane(*plane)
    if not is_image(path):
        raise ImageReadError(
            path,
            f"unsupported image type {path.suffix!r}",
            f"convert it to one of {', '.join(IMAGE_SUFFIXES)}",
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(
            path, "file not found", "check the path in manifest.csv or restore the file"
        ) from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot be read ({exc.strerror})", "check permissions") from None
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    if path.suffix.lower() in (".tif", ".tiff"):
        array = _read_tiff(path)
        if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
            array = np.moveaxis(array, 0, -1)  # planar configuration
        return array
    _check_complete(path, data)
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageReadError(path, "corrupt or unreadable image data")
    if array.ndim == 3 and array.shape[2] == 3:
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB, dst=array)  # in place
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(array)


_LEVELS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_SCALABLE_KINDS = "fiu"  # floats and integers: a stack of them is scaled by its range


def check_pixels(array: np.ndarray, path: str | Path = "<array>") -> None:
    """Raise ImageReadError unless ``to_float_rgb`` can use the stored array: 8/16-bit, floating point in
    [0, 1], or a plane of a stack file stored as floats or other integers (scaled by the stack's range),
    as grey, grey + alpha, RGB or RGBA (what full validation checks without converting). A stack's
    plane is checked by its own values: validation reads every plane anyway, so reading the whole stack
    again for its range here would double the reads of a check."""
    _stack_scaling(array, path, scale=False)


def _stack_scaling(array: np.ndarray, path: str | Path, scale: bool = True) -> tuple[float, float] | None:
    """Check the stored array; (offset, divisor) for a plane that its stack's range scales
    (``gmaiqa.data.stackfile``), None for one used as stored (levels divided by 255 or 65535, or floats
    already in [0, 1]) and for any plane when not ``scale``."""
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 2, 3, 4))):
        raise ImageReadError(path, f"unsupported image layout {array.shape}", "save it as grey, RGB or RGBA")
    if array.dtype in _LEVELS:
        return None
    if array.dtype.kind not in _SCALABLE_KINDS:
        raise ImageReadError(path, f"unsupported pixel type {array.dtype}", "save it as 8- or 16-bit")
    plane = parse_reference(path)
    if plane is not None and not scale:
        check_finite_plane(array, path)
        return None
    if plane is not None:
        file, _, channel, t, scene = plane
        lowest, highest = stack_range(file, channel, t, scene)
        if lowest >= 0 and highest <= 1 and array.dtype.kind == "f":
            return None
        offset = min(lowest, 0.0)  # a physical zero is kept where the stack has one
        return offset, (highest - offset) or 1.0
    if array.dtype.kind == "f":
        if array.size and not np.isfinite(array).all():
            nan = int(np.isnan(array).sum())
            what = f"{nan} NaN pixels" if nan else f"{int((~np.isfinite(array)).sum())} infinite pixels"
            raise ImageReadError(
                path,
                f"floating-point image with {what}",
                "re-export it from the acquisition software, or remove its row (a NaN is no intensity)",
            )
        if array.size and not (array.min() >= 0 and array.max() <= 1):
            raise ImageReadError(
                path,
                "floating-point image with values outside [0, 1]",
                "save the group's images as one multi-page TIFF (gmaiqa scales a stack by its own range, "
                "one map for all planes) or rescale them to [0, 1] by one factor",
            )
        return None
    raise ImageReadError(
        path,
        f"unsupported pixel type {array.dtype} for a single image",
        "save the group's images as one multi-page TIFF (gmaiqa scales a stack by its own range) or as "
        "8- or 16-bit",
    )


def to_float_rgb(array: np.ndarray, path: str | Path = "<array>") -> np.ndarray:
    """Stored array -> float32 (H, W, 3) in [0, 1]. Alpha is dropped; grey is repeated."""
    scaling = _stack_scaling(array, path)
    # in place: a second float copy of an 8000x8000 frame would cost 768 MB more
    scaled = array.astype(np.float32)
    if array.dtype in _LEVELS:
        np.divide(scaled, _LEVELS[array.dtype], out=scaled)
    elif scaling is not None:
        offset, divisor = scaling
        np.subtract(scaled, offset, out=scaled)
        np.divide(scaled, divisor, out=scaled)
    if scaled.ndim == 2:
        scaled = scaled[..., None]
    channels = scaled.shape[2]
    if channels in (1, 2):  # grey or grey + alpha
        scaled = np.repeat(scaled[..., :1], 3, axis=2)
    elif channels == 4:
        scaled = scaled[..., :3]
    return np.ascontiguousarray(scaled)


def read_image(path: str | Path) -> np.ndarray:
    """Read any supported file as float32 RGB (H, W, 3) in [0, 1]."""
    return to_float_rgb(read_raw(path), path)


def _read_plane(file: Path, z: int, channel: int | None, t: int | None, scene: int | None) -> np.ndarray:
    try:
        return read_plane(file, z, channel, t, scene)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(file, "file not found", "check the path or restore the file") from None
    except (IndexError, ValueError) as exc:
        where = f"channel {channel}, t {t}" + (f", scene {scene}" if scene is not None else "")
        raise ImageReadError(
            file, f"has no plane z={z} ({where}): {exc}", "check the plane reference"
        ) from None
    except Exception as exc:  # tifffile and the vendors' readers raise many types for corrupt files
        raise ImageReadError(file, f"unreadable stack file ({type(exc).__name__}: {exc})") from exc


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file header without decoding the pixels."""
    # here, not at import: loads PIL only when this runs
    from PIL import Image

    path = Path(path)
    plane = parse_reference(path)
    if plane is not None:
        return _read_plane(*plane).shape[:2]
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                shape = tif.pages.first.shape
                return (
                    (shape[1], shape[2]) if len(shape) == 3 and shape[0] in (3, 4) else (shape[0], shape[1])
                )
        with Image.open(path) as im:
            return im.height, im.width
    except FileNotFoundError:
        raise ImageReadError(
            path, "file not found", "check the path in manifest.csv or restore the file"
        ) from None
    except Exception as exc:
        raise ImageReadError(path, f"unreadable image header ({type(exc).__name__})") from exc


def write_tiff(path: str | Path, pixels: np.ndarray, pixel_um: float | None = None) -> None:
    """Write a plane as read (``read_raw``: grey (H, W), or (H, W, S) samples) as a TIFF of the same
    dtype; RGB/RGBA as colour. With ``pixel_um``, the pixel size as ImageJ writes it (a resolution in
    pixels per µm), where ImageJ's TIFF can hold the plane: grey 8/16-bit or float32, or 8-bit RGB."""
    rgb = pixels.ndim == 3 and pixels.shape[-1] in (3, 4)
    options = {
        "photometric": "rgb" if rgb else "minisblack",
        "planarconfig": "contig" if pixels.ndim == 3 else None,
    }
    grey = pixels.ndim == 2 and pixels.dtype in (np.uint8, np.uint16, np.float32)
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3 and pixels.dtype == np.uint8
    if pixel_um and (grey or colour):
        per_um = 1.0 / pixel_um
        options.update(imagej=True, resolution=(per_um, per_um), metadata={"unit": "um"})
    tifffile.imwrite(path, pixels, **options)


def write_png(path: str | Path, rgb_u8: np.ndarray) -> None:
    """Write an 8- or 16-bit RGB / grey array as PNG (RGB order in, RGB order on disk)."""
    path = Path(path)
    array = rgb_u8[..., ::-1] if rgb_u8.ndim == 3 and rgb_u8.shape[2] == 3 else rgb_u8
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ImageReadError(path, "PNG encoding failed")
    path.write_bytes(encoded.tobytes())
