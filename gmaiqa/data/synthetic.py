"""Synthetic brightfield autofocus z-stacks that reproduce the GMANet paper's problem.

A thick specimen holds objects at different depths: small formed elements (red and white blood cells,
fungal spores, bacteria; 30-90 px at 1024x1536) near one layer, large objects (food residue, plant
fibres, epithelial cells) and debris at other depths. One group is one field of view imaged while the
stage steps through focus, from one defocused side to the other (GMANet §4.1).

Image formation, per colour channel, for a focal plane at z_f::

    OD(x)   = OD_medium + sum over depth slices s of  PSF(z_s - z_f) * OD_s(x)
    halo(x) = sum over s of  -(z_s - z_f) * k_halo * laplacian(PSF(z_s - z_f) * phase_s)(x)
    I(x)    = illumination(x) * exp(-OD(x)) * (1 + halo(x))

* absorption (Beer-Lambert) with stain-tinted optical densities per object kind;
* a defocus PSF per slice: a geometric disk of radius ``blur_px_per_um * |dz|`` convolved with a
  Gaussian for the in-focus optics (its OTF is jinc x Gaussian, so contrast reverses at large
  defocus as in real stacks);
* halos from the transport-of-intensity equation, dI ~ -dz * laplacian(phase): refractile objects
  (cells, spores) get bright rims on one side of focus and dark rims on the other;
* uneven (vignetted, tilted, tinted) illumination, Poisson-Gaussian sensor noise, 8-bit output.

Convolutions are products in the Fourier domain: every depth slice is transformed once per group and
every image costs one inverse FFT per channel. Each group has its own generator seeded by
``(seed, group index)``, so output is identical whatever the number of worker processes.

Annotation follows the paper's rule (§4.1), driven by the defocus of the formed elements only:
clearest 100, other images within the depth of field 95-99, blurred images 94 -> 0 by defocus.
That is the crux: a classical measure is pulled towards sharp large objects at other depths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from gmaiqa.data.imaging import (
    Optics,
    blurred,
    camera,
    exposure_trend,
    illumination,
    inverse,
)
from gmaiqa.data.presets import KINDS, PRESETS
from gmaiqa.data.specimen import place_objects, smooth_noise, surface_layers
from gmaiqa.data.stack import CLEAR_FLOOR, SCORE_SCALE

# the settings live in their own module; imported from here by older code
from gmaiqa.data.synth_config import CAMERA_KEYS, SynthConfig, config_from  # noqa: F401

# --------------------------------------------------------------------------------------------------
# Annotation and image formation (the optics and camera: gmaiqa.data.imaging)


def _score(defocus_um: np.ndarray, cfg: SynthConfig) -> np.ndarray:
    """The paper's annotation rule (§4.1) applied to |defocus| of the formed elements."""
    d = np.abs(defocus_um)
    best = int(np.argmin(d))
    depth = cfg.clear_depth_um
    top_clear = SCORE_SCALE - 1  # the clearest image alone scores SCORE_SCALE
    clear = np.clip(np.rint(top_clear - (top_clear - CLEAR_FLOOR) * d / depth), CLEAR_FLOOR, top_clear)
    blurred = np.rint((CLEAR_FLOOR - 1) * np.clip(1 - (d - depth) / cfg.blur_range_um, 0, 1) ** 1.5)
    scores = np.where(d <= depth, clear, blurred)
    scores[best] = SCORE_SCALE
    return scores.astype(np.float32)


def _group_rng(cfg: SynthConfig, index: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, index])


def _draw_image_count(cfg: SynthConfig, rng: np.random.Generator) -> int:
    return int(rng.integers(cfg.images[0], cfg.images[1] + 1))  # the group generator's first draw


def images_in_group(cfg: SynthConfig, index: int) -> int:
    """How many images group ``index`` will have, without rendering it (for progress over images)."""
    return _draw_image_count(cfg, _group_rng(cfg, index))


def render_group(cfg: SynthConfig, index: int) -> tuple[list[np.ndarray], dict]:
    """One z-stack: the images in capture order (RGB for brightfield, mono otherwise; uint8, or uint16
    for 12- and 16-bit cameras) and their annotation."""
    rng = _group_rng(cfg, index)
    n_images = _draw_image_count(cfg, rng)
    # in-focus index anywhere but the very ends, so a stack always has both defocused sides
    lo, hi = max(1, round(0.15 * n_images)), min(n_images - 2, round(0.85 * n_images))
    best = int(rng.integers(lo, max(lo, hi) + 1))
    jitter = rng.uniform(-cfg.focus_jitter, cfg.focus_jitter) * cfg.step_um
    focus_um = (np.arange(n_images) - best) * cfg.step_um + jitter  # focal plane, elements at z = 0

    field = Field.prepare(cfg, rng, float(np.abs(focus_um).max()))
    images = field.images_at(focus_um, rng)
    defocus = focus_um - field.element_z
    scores = _score(defocus, cfg)
    meta = dict(field.meta)
    meta.update(
        images=n_images,
        clearest=int(np.argmax(scores)),
        focus_um=focus_um.round(4).tolist(),
        element_depth_um=round(field.element_z, 4),
        scores=scores.tolist(),
    )
    return images, meta


@dataclass
class Field:
    """One field of view of a specimen, ready to be imaged at any focal plane (µm; the formed elements
    lie near ``element_z``): what a z-stack renders at its planes and a simulated stage
    (``gmaiqa.autofocus``) at whatever z its search asks for."""

    cfg: SynthConfig
    spectra: dict
    optics: Optics
    pad: int
    element_z: float
    meta: dict

    @classmethod
    def prepare(cls, cfg: SynthConfig, rng: np.random.Generator, max_focus_um: float) -> Field:
        """Place the preset's objects (drawing from ``rng``) and transform every depth slice once;
        ``max_focus_um``: the farthest focal plane from the elements that will be imaged (it sets the
        margin light spreads in from)."""
        preset = PRESETS[cfg.preset]
        max_defocus = max_focus_um + max(preset.large_offset_um[1], preset.debris_depth_um)
        pad = int(math.ceil(cfg.defocus_psf().reach_px(min(max_defocus, 12.0)))) + 4
        shape = (
            sfft.next_fast_len(cfg.height + 2 * pad, real=True),
            sfft.next_fast_len(cfg.width + 2 * pad, real=True),
        )
        objects, meta = place_objects(preset, cfg, pad, rng)
        channels = 3 if preset.modality == "brightfield" else 1

        # depth slices on a 0.5 µm grid: each transformed once
        slices: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        for obj in objects:
            key = round(obj.depth_um * 2) / 2
            signal, phase = slices.setdefault(
                key, (np.zeros((*shape, channels), np.float32), np.zeros(shape, np.float32))
            )
            h, w = obj.phase.shape
            y0, x0 = max(obj.y, 0), max(obj.x, 0)
            y1, x1 = min(obj.y + h, shape[0]), min(obj.x + w, shape[1])
            if y1 <= y0 or x1 <= x0:
                continue
            sub = (slice(y0 - obj.y, y1 - obj.y), slice(x0 - obj.x, x1 - obj.x))
            signal[y0:y1, x0:x1] += obj.od[sub][..., :channels]
            phase[y0:y1, x0:x1] += obj.phase[sub]
        if preset.modality == "reflected":
            layers, surface = surface_layers(cfg, shape, rng)
            meta["surface"] = surface
            for depth, delta in layers:
                signal, _ = slices.setdefault(
                    depth, (np.zeros((*shape, 1), np.float32), np.zeros(shape, np.float32))
                )
                signal[..., 0] += delta
        spectra = {
            k: (sfft.rfft2(signal, axes=(0, 1), workers=1), sfft.rfft2(ph, workers=1))
            for k, (signal, ph) in slices.items()
        }
        if preset.modality == "reflected":
            element_z = 0.0  # the top pattern layer is what an inspection focuses on
        else:
            element_depths = [o.depth_um for o in objects if KINDS[o.kind].role == "element"]
            element_z = float(np.mean(element_depths)) if element_depths else 0.0
        return cls(cfg, spectra, Optics(shape), pad, element_z, meta)

    def images_at(self, focus_um, rng: np.random.Generator) -> list[np.ndarray]:
        """The camera frames at these focal planes, in order; ``rng`` draws the illumination, exposure
        and noise (the same state gives the same frames)."""
        forward = _FORWARD[PRESETS[self.cfg.preset].modality]
        focus = np.asarray(focus_um, dtype=np.float64)
        return forward(self.cfg, PRESETS[self.cfg.preset], self.spectra, self.optics, focus, self.pad, rng)


def _brightfield(cfg, preset, spectra, optics, focus_um, pad, rng) -> list[np.ndarray]:
    s = cfg.scale
    psf = cfg.defocus_psf()
    medium = (
        np.asarray(preset.medium_od, np.float32)
        * (1 + 0.05 * smooth_noise((cfg.height, cfg.width), 40 * s, rng))[..., None]
    )
    light = illumination(cfg.height, cfg.width, rng)
    exposure = cfg.camera("background_level") / float(np.mean(light * np.exp(-medium)))
    trend = exposure_trend(len(focus_um), cfg.camera("exposure_drift"), 0.0, rng)
    halo_gain = cfg.halo_gain * s**2  # objects grow as s, so their laplacian shrinks as 1/s^2
    crop = (slice(pad, pad + cfg.height), slice(pad, pad + cfg.width))
    images = []
    for k, focus in enumerate(focus_um):
        od_spec, halo_spec = blurred(spectra, optics, 3, focus, psf, halo_gain)
        od = inverse(od_spec, optics.shape)[crop]
        halo = inverse(halo_spec, optics.shape, axes=(-2, -1))[crop] if halo_gain else np.float32(0)
        intensity = (
            light * np.exp(-(medium + np.clip(od, -0.5, None))) * np.clip(1 + halo, 0.05, 3)[..., None]
        )
        intensity *= exposure * float(trend[k]) * (1 + rng.uniform(-cfg.flicker, cfg.flicker))
        images.append(_camera(cfg, intensity, rng))
    return images


def _fluorescence(cfg, preset, spectra, optics, focus_um, pad, rng) -> list[np.ndarray]:
    """Emission spread by defocus (not lost) over a dark level, on a mono camera; the lamp's field is
    uneven and the dye bleaches frame by frame."""
    s = cfg.scale
    psf = cfg.defocus_psf()
    light = illumination(cfg.height, cfg.width, rng, tint=False)
    dark = cfg.camera("background_level") * (1 + 0.2 * smooth_noise((cfg.height, cfg.width), 60 * s, rng))
    trend = exposure_trend(len(focus_um), cfg.camera("exposure_drift"), preset.bleach_per_image, rng)
    brightness = rng.uniform(0.5, 1.0)  # labelling and exposure of this field
    crop = (slice(pad, pad + cfg.height), slice(pad, pad + cfg.width))
    images = []
    for k, focus in enumerate(focus_um):
        spectrum, _ = blurred(spectra, optics, 1, focus, psf)
        emission = np.clip(inverse(spectrum, optics.shape)[crop][..., 0], 0, None)
        intensity = dark + light[..., 0] * brightness * trend[k] * emission
        intensity *= 1 + rng.uniform(-cfg.flicker, cfg.flicker)
        images.append(_camera(cfg, intensity, rng))
    return images


def _reflected(cfg, preset, spectra, optics, focus_um, pad, rng) -> list[np.ndarray]:
    """The blurred reflectance of the surface layers under even epi-illumination, on a mono camera."""
    psf = cfg.defocus_psf()
    light = illumination(cfg.height, cfg.width, rng, tint=False)[..., 0]
    base = cfg.camera("background_level")
    trend = exposure_trend(len(focus_um), cfg.camera("exposure_drift"), 0.0, rng)
    crop = (slice(pad, pad + cfg.height), slice(pad, pad + cfg.width))
    images = []
    for k, focus in enumerate(focus_um):
        spectrum, _ = blurred(spectra, optics, 1, focus, psf)
        reflectance = np.clip(base + inverse(spectrum, optics.shape)[crop][..., 0], 0.02, 1.5)
        intensity = light * reflectance * trend[k] * (1 + rng.uniform(-cfg.flicker, cfg.flicker))
        images.append(_camera(cfg, intensity, rng))
    return images


_FORWARD = {"brightfield": _brightfield, "fluorescence": _fluorescence, "reflected": _reflected}


def _camera(cfg: SynthConfig, intensity: np.ndarray, rng) -> np.ndarray:
    bits = cfg.camera("bit_depth")
    return camera(intensity, cfg.camera("full_well"), cfg.camera("read_noise"), bits, rng, cfg.gamma)
