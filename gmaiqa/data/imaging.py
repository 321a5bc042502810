"""How a microscope images a specimen through focus: the defocus PSF, the illumination, the forward
model of each contrast mode, and the camera. ``gmaiqa.data.synthetic`` drives them per z-stack.

Every mode sums depth slices, each blurred by the defocus PSF of its distance to the focal plane
(``Optics.otf``: a geometric disk of radius ``blur_px_per_um * |dz|`` convolved with a Gaussian for the
in-focus optics; its OTF is jinc x Gaussian, so contrast reverses at large defocus as in real stacks):

- ``brightfield`` (transmitted light, stained specimens; the paper's microscopes): Beer-Lambert
  absorption of the blurred optical density, times transport-of-intensity halos from the phase
  (dI ~ -dz * laplacian(phase): bright rims on one side of focus, dark on the other).
  ``I = illumination * exp(-OD) * (1 + halo)``, RGB.
- ``fluorescence`` (widefield epi-fluorescence): the specimen emits; out-of-focus emission is not lost
  but spread (the OTF keeps its DC term), so defocused frames are a haze over a dark background.
  ``I = dark + illumination * emission``, mono, with photobleaching from frame to frame.
- ``reflected`` (reflected-light brightfield of patterned surfaces, e.g. wafers): the blurred
  reflectance of surface layers at different heights; step edges scatter light out of the objective
  and image dark. ``I = illumination * reflectance``, mono.

The defocus PSF's shape (:class:`DefocusPSF`, ``psf=``) varies as objectives do: ``disk`` (geometric
defocus of an ideal lens, the default above), ``gaussian`` (the same second moment without the disk's
contrast reversal: apodised or partially coherent optics), ``aberrated`` (spherical aberration: the blur
grows ``1 + aberration`` times as fast on one side of focus as ``1 - aberration`` on the other, so the
focus curve is lopsided) and ``astigmatic`` (two focal lines ``astigmatism_um`` apart: the blur is an
ellipse whose long axis turns by 90 degrees through focus, and the sharpest plane is the circle of least
confusion between the lines).

The camera turns intensity (1 = full scale) into counts: Poisson shot noise for ``full_well``
electrons at full scale, Gaussian read noise, the encoding ``gamma`` (stored = signal^(1/gamma): 1 is a
linear scientific camera, 2.2 a consumer or JPEG encoding), then 8-, 12- or 16-bit quantisation (12-bit
data sits in a 16-bit file, as sCMOS cameras write it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.special import j1

MODALITIES = ("brightfield", "fluorescence", "reflected")
BIT_DEPTHS = (8, 12, 16)
PSF_SHAPES = ("disk", "gaussian", "aberrated", "astigmatic")


class Optics:
    """Radial OTF lookup for one FFT size: OTF(|f|) of disk(radius) x Gaussian(sigma)."""

    SAMPLES = 4096

    def __init__(self, shape: tuple[int, int]):
        fy = sfft.fftfreq(shape[0]).astype(np.float32)
        fx = sfft.rfftfreq(shape[1]).astype(np.float32)
        radius = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
        self.shape = shape
        self.f = np.linspace(0, math.sqrt(0.5), self.SAMPLES, dtype=np.float64)
        self.index = np.minimum(
            np.rint(radius / self.f[-1] * (self.SAMPLES - 1)).astype(np.int32), self.SAMPLES - 1
        )
        self.laplacian = (4 * math.pi**2 * radius**2).astype(np.float32)  # -(Fourier symbol of the Laplacian)
        self.fy, self.fx = fy[:, None], fx[None, :]

    def otf(self, disk_radius: float, sigma: float) -> np.ndarray:
        arg = 2 * math.pi * disk_radius * self.f
        profile = (_jinc(arg) * np.exp(-2 * math.pi**2 * sigma**2 * self.f**2)).astype(np.float32)
        return profile[self.index]

    def gaussian_otf(self, sigma: float) -> np.ndarray:
        return np.exp(-2 * math.pi**2 * sigma**2 * self.f**2).astype(np.float32)[self.index]

    def elliptic_otf(self, radius_y: float, radius_x: float, sigma: float) -> np.ndarray:
        """An elliptical disk of semi-axes (radius_y, radius_x) convolved with a Gaussian: the disk's OTF
        at the frequency stretched by each axis (an affine image of the round disk)."""
        stretched = np.sqrt((radius_y * self.fy) ** 2 + (radius_x * self.fx) ** 2)
        gauss = np.exp(-2 * math.pi**2 * sigma**2 * (self.fy**2 + self.fx**2))
        return (_jinc(2 * math.pi * stretched) * gauss).astype(np.float32)


def _jinc(arg: np.ndarray) -> np.ndarray:
    """2 J1(x) / x, 1 at 0: the OTF profile of a uniform disk."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(arg > 1e-8, 2 * j1(arg) / np.maximum(arg, 1e-8), 1.0)


@dataclass(frozen=True)
class DefocusPSF:
    """The point spread at a defocus ``dz`` (µm), in output pixels: a blur radius growing by
    ``blur_px_per_um`` per µm, shaped by ``shape`` (:data:`PSF_SHAPES`), convolved with the in-focus
    optics' Gaussian of ``sigma_px``."""

    blur_px_per_um: float
    sigma_px: float
    shape: str = "disk"
    aberration: float = 0.0  # aberrated: the radius grows (1 + a) x above focus, (1 - a) x below
    astigmatism_um: float = 0.0  # astigmatic: the two focal lines lie at dz = -/+ half of this

    def radii(self, dz: float) -> tuple[float, float]:
        """The blur's semi-axes (y, x) in pixels at defocus dz."""
        if self.shape == "astigmatic":
            half = self.astigmatism_um / 2
            return self.blur_px_per_um * abs(dz + half), self.blur_px_per_um * abs(dz - half)
        growth = 1 + self.aberration * math.copysign(1, dz) if self.shape == "aberrated" else 1.0
        radius = self.blur_px_per_um * abs(dz) * growth
        return radius, radius

    def otf(self, optics: Optics, dz: float) -> np.ndarray:
        ry, rx = self.radii(dz)
        if self.shape == "astigmatic":
            return optics.elliptic_otf(ry, rx, self.sigma_px)
        if self.shape == "gaussian":  # a uniform disk of radius r has the per-axis variance (r / 2)^2
            return optics.gaussian_otf(math.hypot(self.sigma_px, rx / 2))
        return optics.otf(rx, self.sigma_px)

    def reach_px(self, max_defocus_um: float) -> float:
        """How far (pixels) light spreads at the largest defocus: the padding a field needs."""
        return max(max(self.radii(dz)) for dz in (-max_defocus_um, 0.0, max_defocus_um)) + 4 * self.sigma_px


def illumination(height: int, width: int, rng, tint: bool = True) -> np.ndarray:
    """Uneven illumination (vignetting, tilt; lamp colour for RGB), (H, W, 3) or (H, W, 1)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy = yy / height - 0.5 + rng.normal(0, 0.08)
    xx = xx / width - 0.5 + rng.normal(0, 0.08)
    vignette = 1 - rng.uniform(0.12, 0.3) * (xx**2 + yy**2) / 0.5
    tilt = 1 + rng.normal(0, 0.04) * xx + rng.normal(0, 0.04) * yy
    if not tint:
        return (vignette * tilt)[..., None]
    lamp = np.asarray([1.0, 0.97, 0.92], np.float32) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    return (vignette * tilt)[..., None] * lamp


def exposure_trend(n_images: int, drift: float, bleach: float, rng) -> np.ndarray:
    """Relative exposure of each frame apart from lamp flicker: a linear drift over the stack
    (auto-exposure, lamp warming; up to ``drift`` either way at the ends) and photobleaching (``bleach``
    per frame). Draws from ``rng`` only when there is a drift, so stacks without one are unchanged."""
    k = np.arange(n_images, dtype=np.float64)
    slope = rng.uniform(-drift, drift) if drift > 0 else 0.0
    return (1 + slope * (k / max(n_images - 1, 1) * 2 - 1)) * np.exp(-bleach * k)


def camera(
    intensity: np.ndarray, full_well: float, read_noise: float, bit_depth: int, rng, gamma: float = 1.0
) -> np.ndarray:
    """Counts of a camera for intensity in units of full scale: shot and read noise, the encoding gamma,
    quantisation."""
    electrons = rng.poisson(np.clip(intensity, 0, 1.2) * full_well).astype(np.float32) / full_well
    electrons += rng.normal(0, read_noise, electrons.shape).astype(np.float32)
    if gamma != 1.0:
        electrons = np.clip(electrons, 0, None) ** np.float32(1 / gamma)
    top = 2**bit_depth - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.clip(np.rint(electrons * top), 0, top).astype(dtype)


def blurred(
    spectra: dict,
    optics: Optics,
    channels: int,
    focus_um: float,
    psf: DefocusPSF,
    halo_gain: float = 0.0,
):
    """Sum over depth slices of PSF(z_s - z_f) * signal_s, in the Fourier domain: the blurred signal
    spectrum (..., C) and, with ``halo_gain``, the TIE halo spectrum (-dz * gain * laplacian * phase)."""
    signal = np.zeros((*optics.index.shape, channels), np.complex64)
    halo = np.zeros(optics.index.shape, np.complex64) if halo_gain else None
    for depth, (signal_f, phase_f) in spectra.items():
        dz = depth - focus_um
        otf = psf.otf(optics, dz)
        signal += otf[..., None] * signal_f
        if halo is not None:
            halo += (-dz * halo_gain) * otf * optics.laplacian * phase_f
    return signal, halo


def inverse(spectrum: np.ndarray, shape: tuple[int, int], axes=(0, 1)) -> np.ndarray:
    return sfft.irfft2(spectrum, s=shape, axes=axes, workers=1)
