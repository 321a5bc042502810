"""The axes along which real microscopes differ, each shown on the optics or on a rendered stack (issue
32, item 3): PSF shape (disk, Gaussian, aberrated, astigmatic), numerical aperture, pixel size over a 3x
range, z step, noise and bit depth, background, the camera's gamma, specimen density and kind."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gmaiqa.data.imaging import DefocusPSF, Optics
from gmaiqa.data.synthetic import config_from, render_group
from gmaiqa.errors import ConfigError
from gmaiqa.focus import get_measure

SMALL = {"height": 96, "width": 128, "images": (9, 9), "object_scale": 0.25, "seed": 4}
# for the rendered focus curves: 0.4 µm pixels and a noiseless camera, so a curve shows the optics alone
CLEAN = {"object_scale": 0.5, "full_well": 1e7, "read_noise": 0.0}


def stack(**options) -> tuple[np.ndarray, dict]:
    images, meta = render_group(config_from(**{**SMALL, **options}), 0)
    return np.stack(images).astype(np.float64) / (4095 if images[0].dtype == np.uint16 else 255), meta


def teng(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images if images.ndim == 4 else images[..., None]).permute(0, 3, 1, 2).float()
    return get_measure("TENG")(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x).numpy()


# ---- PSF shape


def test_every_psf_shape_is_sharp_in_focus_but_the_astigmatic_one():
    optics = Optics((64, 64))
    shapes = {
        name: DefocusPSF(4.0, 0.8, name, 0.4, 2.0) for name in ("disk", "gaussian", "aberrated", "astigmatic")
    }
    focus = {name: psf.otf(optics, 0.0) for name, psf in shapes.items()}
    np.testing.assert_allclose(focus["disk"], focus["gaussian"], atol=1e-6)
    np.testing.assert_allclose(focus["disk"], focus["aberrated"], atol=1e-6)
    assert focus["astigmatic"].mean() < focus["disk"].mean()  # the circle of least confusion


def test_the_gaussian_psf_never_reverses_contrast_and_the_disk_does():
    optics = Optics((128, 128))
    disk, gauss = (DefocusPSF(4.0, 0.8, shape).otf(optics, 3.0) for shape in ("disk", "gaussian"))
    assert disk.min() < -0.05 and gauss.min() >= 0
    # the same second moment: their low-frequency fall-off agrees
    low = optics.index <= 2
    np.testing.assert_allclose(disk[low], gauss[low], atol=0.02)


def test_aberration_makes_the_blur_grow_faster_on_one_side_of_focus():
    psf = DefocusPSF(4.0, 0.8, "aberrated", aberration=0.4)
    assert psf.radii(2.0)[0] / psf.radii(-2.0)[0] == pytest.approx(1.4 / 0.6)
    lopsided = {}
    for shape in ("disk", "aberrated"):
        curve = teng(stack(preset="blood", psf=shape, aberration=0.6, step_um=1.5, **CLEAN)[0])
        best = int(np.argmax(curve))
        # images before the best have the focal plane below the specimen (dz > 0): the fast side
        lopsided[shape] = math.log(curve[best + 2] / curve[best]) - math.log(curve[best - 2] / curve[best])
    assert lopsided["aberrated"] > lopsided["disk"] + 0.15


def test_astigmatism_turns_the_blur_by_ninety_degrees_through_focus():
    psf = DefocusPSF(4.0, 0.8, "astigmatic", astigmatism_um=2.0)
    assert psf.radii(1.0) == (8.0, 0.0) and psf.radii(-1.0) == (0.0, 8.0)  # the two focal lines
    optics = Optics((64, 64))
    above, below = psf.otf(optics, 1.0), psf.otf(optics, -1.0)
    along_x, along_y = (0, 8), (8, 0)  # (fy, fx) indices: a vertical and a horizontal frequency
    assert above[along_x] > 0.75 and abs(above[along_y]) < 0.2  # the in-focus Gaussian alone: 0.82
    assert below[along_y] > 0.75 and abs(below[along_x]) < 0.2
    ranges = {}
    for shape in ("disk", "astigmatic"):  # the wafer preset's straight edges show orientation
        images, _ = stack(preset="reflected", psf=shape, astigmatism_um=4.0, step_um=1.0, **CLEAN)
        dx, dy = (
            np.abs(np.diff(images, axis=2)).mean(axis=(1, 2)),
            np.abs(np.diff(images, axis=1)).mean(axis=(1, 2)),
        )
        ranges[shape] = dx / dy
    # through focus, the astigmatic stack's edges go from mostly one way to mostly the other
    assert ranges["astigmatic"].max() > 1.5 * ranges["disk"].max()
    assert ranges["astigmatic"].min() < 0.6 * ranges["disk"].min()


# ---- numerical aperture, pixel size, z step


def test_the_numerical_aperture_sets_blur_growth_resolution_and_depth_of_field():
    low, high = (config_from(**SMALL, numerical_aperture=na) for na in (0.25, 0.75))
    ratio = math.tan(math.asin(0.75)) / math.tan(math.asin(0.25))
    assert high.defocus_psf().blur_px_per_um / low.defocus_psf().blur_px_per_um == pytest.approx(ratio)
    assert low.defocus_psf().sigma_px / high.defocus_psf().sigma_px == pytest.approx(3.0)
    assert low.clear_depth_um / high.clear_depth_um == pytest.approx(9.0)  # λ n / NA²
    # rendered: the higher NA's focus curve is narrower
    widths = []
    for na in (0.25, 0.75):
        curve = teng(stack(preset="blood", numerical_aperture=na, step_um=1.0, **CLEAN)[0])
        widths.append(np.sum(curve > 0.5 * curve.max()))
    assert widths[1] < widths[0]
    with pytest.raises(ConfigError, match="numerical_aperture"):
        config_from(numerical_aperture=1.2)  # above air's index


def test_pixel_size_over_a_3x_range_scales_objects_and_blur_alike():
    fine, coarse = (config_from(**{**SMALL, "object_scale": scale}) for scale in (0.25, 0.75))
    assert fine.pixel_um / coarse.pixel_um == pytest.approx(3.0)
    assert coarse.defocus_psf().blur_px_per_um / fine.defocus_psf().blur_px_per_um == pytest.approx(3.0)
    # rendered: the same specimen at 3x the magnification has fewer fine gradients per pixel
    clean = {**CLEAN, "preset": "blood"}
    sharpness = [float(teng(stack(**{**clean, "object_scale": scale})[0]).max()) for scale in (0.25, 0.75)]
    assert sharpness[1] < sharpness[0]


def test_the_z_step_spaces_the_focal_planes():
    for step in (0.5, 2.0):
        _, meta = stack(step_um=step)
        np.testing.assert_allclose(np.diff(meta["focus_um"]), step, atol=1e-3)
    drops = []
    for step in (0.5, 2.0):
        curve = teng(stack(preset="blood", step_um=step, **CLEAN)[0])
        best = int(np.argmax(curve))
        drops.append(curve[best] / max(curve[best - 1], curve[best + 1]))
    assert drops[1] > drops[0]  # coarser steps: neighbours further from focus


# ---- camera: noise, bit depth, background, gamma


def test_noise_bit_depth_and_background_follow_the_camera():
    flat = {"preset": "blood", "high_concentration": 0.0}
    quiet, noisy = (stack(**flat, full_well=well, read_noise=0.0)[0] for well in (50000.0, 200.0))
    assert np.diff(noisy, axis=2).std() > 2 * np.diff(quiet, axis=2).std()
    deep, _ = render_group(config_from(**SMALL, bit_depth=12), 0)
    assert deep[0].dtype == np.uint16 and max(int(i.max()) for i in deep) <= 4095
    dim, bright = (stack(**flat, background_level=level)[0].mean() for level in (0.4, 0.8))
    assert dim / bright == pytest.approx(0.5, abs=0.08)


def test_gamma_encodes_the_signal_as_its_power():
    linear, _ = render_group(config_from(**SMALL, gamma=1.0), 0)
    encoded, _ = render_group(config_from(**SMALL, gamma=2.2), 0)
    x, y = linear[3].astype(np.float64) / 255, encoded[3].astype(np.float64) / 255
    mid = (x > 0.2) & (x < 0.9)
    np.testing.assert_allclose(y[mid], x[mid] ** (1 / 2.2), atol=0.02)  # the same noise draws
    assert y.mean() > x.mean()
    with pytest.raises(ConfigError, match="gamma"):
        config_from(gamma=0)


# ---- specimen density and kind


def test_density_and_kind_follow_the_preset_and_the_concentration():
    sparse = render_group(config_from(**SMALL, preset="feces", high_concentration=0.0), 0)[1]
    dense = render_group(config_from(**SMALL, preset="feces", high_concentration=1.0), 0)[1]
    assert sparse["concentration"] == "low" and dense["concentration"] == "high"
    assert sum(dense["counts"].values()) > sum(sparse["counts"].values())
    kinds = {
        p: set(render_group(config_from(**SMALL, preset=p), 0)[1]["counts"])
        for p in ("blood", "fluorescence")
    }
    assert (
        "rbc" in kinds["blood"]
        and "nucleus" in kinds["fluorescence"]
        and not kinds["blood"] & kinds["fluorescence"]
    )


def test_a_mistyped_psf_is_named():
    with pytest.raises(ConfigError, match="did you mean 'gaussian'"):
        config_from(psf="gausian")
