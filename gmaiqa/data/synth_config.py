"""The synthetic generator's settings (``gmaiqa synth`` keys, ``data.synthetic`` members): one frozen
dataclass, each value checked where it is made so a bad option is named before anything is rendered.
The presets it refers to are ``gmaiqa.data.presets``; ``gmaiqa.data.synthetic`` renders with it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from gmaiqa.data.imaging import BIT_DEPTHS, PSF_SHAPES, DefocusPSF
from gmaiqa.data.presets import PRESETS, REFERENCE_PIXEL_UM, REFERENCE_SIZE
from gmaiqa.data.splits import PAPER_RATIOS, valid_ratios
from gmaiqa.errors import ConfigError, did_you_mean

CAMERA_KEYS = ("full_well", "read_noise", "background_level", "bit_depth", "exposure_drift")


@dataclass(frozen=True)
class SynthConfig:
    preset: str = "feces"
    groups: int = 8
    seed: int = 0
    height: int = 1200  # the paper's camera frames (§4.1)
    width: int = 1600
    images: tuple[int, int] = (10, 30)  # images per group, inclusive range (§5.3.1: 10 to 30)
    object_scale: float | None = None  # pixels per reference pixel; None: height / 1024
    step_um: float = 1.0
    focus_jitter: float = 0.3  # the focal plane misses the elements' layer by up to this share of a step
    flicker: float = 0.01  # lamp brightness change between frames
    blur_px_per_um: float = 4.0  # geometric defocus radius growth, reference pixels per µm
    psf_sigma_px: float = 0.8  # in-focus optics, reference pixels
    halo_gain: float = 1.0
    depth_of_field_um: float = 1.0  # "clear" images (95-99) lie within this defocus
    blur_range_um: float = 12.0  # defocus at which the score reaches 0
    high_concentration: float = 0.5  # share of groups drawn at high concentration
    # the camera and the exposure: None takes the preset's (gmaiqa.data.specimen.Preset)
    full_well: float | None = None  # electrons at full scale: Poisson noise
    read_noise: float | None = None  # Gaussian noise, fraction of full scale
    background_level: float | None = None  # brightfield: empty medium; fluorescence: the dark level
    bit_depth: int | None = None  # 8, 12 (in a 16-bit file) or 16
    exposure_drift: float | None = None  # exposure change over a stack, either way at its ends
    gamma: float = 1.0  # the camera's encoding: stored = signal^(1/gamma); 1 linear, 2.2 consumer/JPEG
    # the objective (gmaiqa.data.imaging.DefocusPSF): the PSF's shape, and optionally its NA, from which
    # the defocus blur, the in-focus PSF and the depth of field then follow (blur_px_per_um, psf_sigma_px
    # and depth_of_field_um are ignored)
    psf: str = "disk"  # disk | gaussian | aberrated | astigmatic
    # aberrated: the blur grows 1 + a times as fast on one side of focus, 1 - a times on the other
    aberration: float = 0.4
    astigmatism_um: float = 2.0  # astigmatic: the distance between the two focal lines
    numerical_aperture: float | None = None  # e.g. 0.25 (10x dry) .. 1.3 (100x oil)
    immersion_index: float = 1.0  # between objective and specimen: 1.0 air, 1.33 water, 1.52 oil
    wavelength_um: float = 0.55
    split: bool = False  # write a seeded split column instead of leaving the split to training
    split_ratios: tuple[float, float, float] = PAPER_RATIOS  # train / val / test shares of that column

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ConfigError(
                "preset",
                f"unknown preset {self.preset!r}{did_you_mean(self.preset, PRESETS)}",
                f"choose one of {sorted(PRESETS)}",
            )
        lo, hi = self.images
        if not 2 <= lo <= hi:
            raise ConfigError(
                "images",
                f"images per group {list(self.images)} is not a range [min, max] with min >= 2",
                "use e.g. images=[10,30]",
            )
        if self.height < 16 or self.width < 16:
            raise ConfigError(
                "height/width", f"{self.height}x{self.width} is too small", "use at least 16x16 pixels"
            )
        if self.groups < 1:
            raise ConfigError("groups", f"groups={self.groups}", "generate at least one group")
        if not valid_ratios(self.split_ratios):
            raise ConfigError(
                "split_ratios",
                f"{list(self.split_ratios)} is not three train / val / test shares summing to 1",
                "use e.g. split_ratios=[0.8,0.2,0.0]",
            )
        if self.seed < 0:
            raise ConfigError("seed", f"seed={self.seed}", "use a seed of 0 or more")
        if self.object_scale is not None and self.object_scale <= 0:
            raise ConfigError(
                "object_scale",
                f"{self.object_scale:g} pixels per reference pixel",
                "use a positive scale, or null",
            )
        drift = self.camera("exposure_drift")
        if not 0 <= drift < 1:  # 1 or more would drive the exposure at one end of a stack to zero or below
            raise ConfigError(
                "exposure_drift", f"{drift:g} is not a share in [0, 1)", "use e.g. exposure_drift=0.2 (±20 %)"
            )
        if self.camera("full_well") <= 0 or self.camera("read_noise") < 0:
            raise ConfigError(
                "full_well/read_noise",
                f"{self.camera('full_well'):g} electrons, read noise {self.camera('read_noise'):g}",
                "use a positive full well and a read noise of 0 or more",
            )
        if not 0 <= self.camera("background_level") <= 1:
            raise ConfigError(
                "background_level",
                f"{self.camera('background_level'):g} is not a share of full scale",
                "use a value in [0, 1]",
            )
        if self.camera("bit_depth") not in BIT_DEPTHS:
            raise ConfigError(
                "bit_depth", f"{self.bit_depth} bits", f"choose one of {', '.join(map(str, BIT_DEPTHS))}"
            )
        self.check_optics()

    def check_optics(self) -> None:
        if self.psf not in PSF_SHAPES:
            raise ConfigError(
                "psf",
                f"{self.psf!r}{did_you_mean(self.psf, PSF_SHAPES)}",
                f"choose one of {list(PSF_SHAPES)}",
            )
        if not 0 <= self.aberration < 1 or self.astigmatism_um < 0:
            raise ConfigError(
                "aberration/astigmatism_um",
                f"aberration {self.aberration:g}, astigmatism {self.astigmatism_um:g} µm",
                "use an aberration in [0, 1) and an astigmatism of 0 µm or more",
            )
        if not 1 <= self.immersion_index <= 2 or not 0.2 <= self.wavelength_um <= 2:
            raise ConfigError(
                "immersion_index/wavelength_um",
                f"index {self.immersion_index:g}, wavelength {self.wavelength_um:g} µm",
                "use an index from 1 (air) to 2 and a wavelength in µm (e.g. 0.55)",
            )
        na = self.numerical_aperture
        if na is not None and not 0 < na < self.immersion_index:
            raise ConfigError(
                "numerical_aperture",
                f"{na:g} with immersion index {self.immersion_index:g}",
                "an NA lies above 0 and below the immersion index (0.25 dry; 1.3 with immersion_index=1.52)",
            )
        if self.gamma <= 0:
            raise ConfigError("gamma", f"{self.gamma:g}", "use a positive gamma, e.g. 1 (linear) or 2.2")

    def defocus_psf(self) -> DefocusPSF:
        """The defocus PSF in output pixels. With ``numerical_aperture``: the geometric blur radius grows
        by tan(asin(NA / n)) µm per µm of defocus, and the in-focus PSF is the Gaussian fit of the Airy
        disk, σ = 0.21 λ / NA (Zhang et al. 2007); otherwise the reference-pixel settings."""
        if self.numerical_aperture is None:
            blur, sigma = self.blur_px_per_um, self.psf_sigma_px  # reference pixels
        else:
            angle = math.asin(self.numerical_aperture / self.immersion_index)
            blur = math.tan(angle) / REFERENCE_PIXEL_UM
            sigma = 0.21 * self.wavelength_um / self.numerical_aperture / REFERENCE_PIXEL_UM
        s = self.scale
        return DefocusPSF(blur * s, sigma * s, self.psf, self.aberration, self.astigmatism_um)

    @property
    def clear_depth_um(self) -> float:
        """The defocus within which images are annotated clear (95-99): ``depth_of_field_um``, or with an
        NA the wave-optical depth of field λ n / NA² (Inoué's first term)."""
        if self.numerical_aperture is None:
            return self.depth_of_field_um
        return self.wavelength_um * self.immersion_index / self.numerical_aperture**2

    def camera(self, key: str):
        """A camera or exposure setting: this config's, else its preset's."""
        value = getattr(self, key)
        return getattr(PRESETS[self.preset], key) if value is None else value

    @property
    def scale(self) -> float:
        return self.object_scale if self.object_scale is not None else self.height / REFERENCE_SIZE[0]

    @property
    def pixel_um(self) -> float:
        """The size of a pixel in the specimen: objects are drawn ``scale`` times their reference size."""
        return REFERENCE_PIXEL_UM / self.scale


# what a type error says each field type takes
_KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a name"}


def config_from(**overrides) -> SynthConfig:
    """SynthConfig from plain values (a ``synth`` command line, a ``data.synthetic`` member): OmegaConf
    merges them onto the dataclass's own fields as a structured config, so a wrong type is named by its
    key (``groups=abc``: 'abc' is not a whole number) before the ranges of ``__post_init__`` are checked.
    ``images`` and ``split_ratios`` also take one number (``images=12``: every group 12 images)."""

    known = set(SynthConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            unknown[0],
            f"not a synth option{did_you_mean(unknown[0], known, quote='`')}",
            f"valid options: {sorted(known)}",
        )
    values = dict(overrides)
    for key in ("images", "split_ratios"):
        if isinstance(values.get(key), str | int | float) and not isinstance(values[key], bool):
            values[key] = [values[key]] * (2 if key == "images" else 1)
    try:
        merged = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(SynthConfig), values))
    except (ValidationError, ConfigKeyError) as exc:
        key = str(exc.full_key).split("[")[0]
        field_type = SynthConfig.__dataclass_fields__[key].type
        kind = next((words for name, words in _KINDS.items() if name in str(field_type)), "valid")
        raise ConfigError(
            key, f"{exc.value!r} is not {kind}", f"see `gmaiqa synth --help` for {key}"
        ) from None
    images = merged["images"]
    if len(images) not in (1, 2):
        raise ConfigError("images", f"{list(images)!r} is not [min, max]", "use e.g. images=[10,30]")
    merged["images"] = (images[0], images[-1])
    merged["split_ratios"] = tuple(merged["split_ratios"])
    return SynthConfig(**merged)
