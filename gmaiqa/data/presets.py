"""The synthetic specimens' species and presets: which objects a field holds (formed elements, large
objects, debris; their sizes, stains, strengths), and the presets that mix them - the paper's three
datasets, and the microscopes real users bring (dense specimens, widefield fluorescence,
reflected-light surfaces) - with each preset's microscope and camera. ``gmaiqa.data.specimen`` renders
and places the objects; ``gmaiqa.data.synth_config`` checks a generator's settings against them.

Sizes are pixels at the paper's working resolution (``REFERENCE_SIZE``), scaled to the output.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_SIZE = (1024, 1536)  # object sizes below are pixels at the paper's working resolution
# µm per pixel at that resolution: red cells (7-8 µm) measure 34-44 px there, as under a 40x objective
# with a 1200x1600 camera of 7.4 µm pixels resized to 1024x1536 (the paper's setting)
REFERENCE_PIXEL_UM = 0.2


@dataclass(frozen=True)
class Kind:
    """An object species: size in reference pixels, stain colour (relative OD per R, G, B), strength."""

    role: str  # "element" (annotators judge focus by these), "large", "debris"
    size: tuple[float, float]
    colour: tuple[float, float, float]
    od: tuple[float, float]
    phase: tuple[float, float]


KINDS: dict[str, Kind] = {
    "rbc": Kind("element", (34, 44), (0.25, 1.0, 0.75), (0.25, 0.45), (0.3, 0.5)),
    "wbc": Kind("element", (52, 86), (0.8, 1.0, 0.45), (0.35, 0.6), (0.5, 0.9)),
    "spore": Kind("element", (26, 46), (0.6, 0.8, 1.0), (0.5, 0.9), (1.2, 1.8)),
    "bacterium": Kind("element", (12, 26), (0.8, 0.9, 1.0), (0.35, 0.6), (0.2, 0.4)),
    "residue": Kind("large", (90, 360), (0.35, 0.7, 1.0), (0.35, 0.95), (0.3, 0.8)),
    "fibre": Kind("large", (150, 420), (0.45, 0.75, 1.0), (0.5, 1.0), (0.4, 0.8)),
    "epithelial": Kind("large", (220, 420), (0.6, 0.8, 1.0), (0.08, 0.16), (0.3, 0.6)),
    "debris": Kind("debris", (3, 14), (0.7, 0.85, 1.0), (0.4, 1.2), (0.2, 0.6)),
    # fluorescence: ``od`` is the emission at full labelling (1 = full scale in focus); mono cameras
    "nucleus": Kind("element", (40, 72), (1.0, 1.0, 1.0), (0.35, 0.7), (0.0, 0.0)),
    "bead": Kind("element", (4, 9), (1.0, 1.0, 1.0), (0.8, 1.6), (0.0, 0.0)),
    "filament": Kind("large", (150, 420), (1.0, 1.0, 1.0), (0.3, 0.7), (0.0, 0.0)),
    "cell_glow": Kind("large", (160, 360), (1.0, 1.0, 1.0), (0.08, 0.25), (0.0, 0.0)),
    "speck": Kind("debris", (3, 8), (1.0, 1.0, 1.0), (0.5, 1.5), (0.0, 0.0)),
    # reflected light: ``od`` is the reflectance change of contamination on the surface
    "particle": Kind("element", (4, 16), (1.0, 1.0, 1.0), (-0.3, 0.5), (0.0, 0.0)),
}


@dataclass(frozen=True)
class Preset:
    """Mirrors one of the paper's three datasets. ``counts`` give (low, high) concentration object
    counts per reference field of 1024x1536; each group draws low or high concentration."""

    name: str
    medium_od: tuple[float, float, float]
    counts: dict[str, tuple[int, int]]
    element_depth_sd_um: float
    large_offset_um: tuple[float, float]
    large_near_focus: float  # share of large objects that lie at the elements' depth
    debris_depth_um: float
    description: str = ""
    # the microscope and its camera (gmaiqa.data.imaging); SynthConfig may override each
    modality: str = "brightfield"
    full_well: float = 2500.0  # electrons at full scale: Poisson noise
    read_noise: float = 0.004  # Gaussian noise, fraction of full scale
    background_level: float = 0.82  # brightfield: empty medium; fluorescence: the dark level
    bit_depth: int = 8
    exposure_drift: float = 0.0  # exposure change over a stack, either way at its ends
    bleach_per_image: float = 0.0  # photobleaching per frame (fluorescence)


PRESETS: dict[str, Preset] = {
    "feces": Preset(
        "feces",
        (0.10, 0.16, 0.30),
        {
            "spore": (3, 22),
            "bacterium": (15, 110),
            "rbc": (0, 5),
            "wbc": (0, 4),
            "residue": (4, 12),
            "fibre": (1, 5),
            "epithelial": (0, 1),
            "debris": (40, 180),
        },
        element_depth_sd_um=0.35,
        large_offset_um=(2.0, 7.0),
        large_near_focus=0.15,
        debris_depth_um=8.0,
        description="complex composition: food residue, fibres and debris at many depths around sparse "
        "formed elements",
    ),
    "blood": Preset(
        "blood",
        (0.02, 0.05, 0.04),
        {"rbc": (140, 320), "wbc": (1, 4), "debris": (0, 12)},
        element_depth_sd_um=0.12,
        large_offset_um=(1.0, 3.0),
        large_near_focus=1.0,
        debris_depth_um=2.0,
        description="simple monolayer of red cells with a few white cells",
    ),
    "leucorrhea": Preset(
        "leucorrhea",
        (0.04, 0.07, 0.10),
        {"epithelial": (1, 5), "wbc": (6, 40), "spore": (2, 16), "bacterium": (10, 70), "debris": (10, 50)},
        element_depth_sd_um=0.35,
        large_offset_um=(1.5, 5.0),
        large_near_focus=0.3,
        debris_depth_um=6.0,
        description="large epithelial cells at other depths plus white cells, spores and bacteria",
    ),
    "dense": Preset(
        "dense",
        (0.12, 0.18, 0.22),
        {
            "rbc": (60, 240),
            "wbc": (10, 60),
            "bacterium": (20, 120),
            "epithelial": (2, 8),
            "residue": (2, 8),
            "debris": (60, 240),
        },
        element_depth_sd_um=0.6,
        large_offset_um=(1.0, 4.0),
        large_near_focus=0.3,
        debris_depth_um=6.0,
        description="crowded, thick brightfield specimen: overlapping cells over 1-2 µm, a 12-bit camera "
        "and exposure drifting through the stack",
        bit_depth=12,
        exposure_drift=0.15,
    ),
    "fluorescence": Preset(
        "fluorescence",
        (0.0, 0.0, 0.0),
        {"nucleus": (4, 18), "bead": (0, 30), "filament": (2, 10), "cell_glow": (2, 8), "speck": (10, 60)},
        element_depth_sd_um=0.3,
        large_offset_um=(1.5, 6.0),
        large_near_focus=0.2,
        debris_depth_um=8.0,
        description="widefield fluorescence: labelled nuclei and beads in one layer, bright cells and "
        "autofluorescent specks at other depths, a dark background, few photons (16-bit camera) and "
        "photobleaching from frame to frame",
        modality="fluorescence",
        full_well=300.0,
        read_noise=0.006,
        background_level=0.03,
        bit_depth=16,
        bleach_per_image=0.01,
    ),
    "reflected": Preset(
        "reflected",
        (0.0, 0.0, 0.0),
        {"particle": (0, 12)},
        element_depth_sd_um=0.05,
        large_offset_um=(1.5, 4.0),
        large_near_focus=0.0,
        debris_depth_um=0.0,
        description="reflected-light brightfield of a patterned surface (a wafer): a top pattern layer "
        "with dark step edges, a fine-grained surface, a buried layer seen through the dielectric, "
        "particles on the surface, exposure drifting through the stack",
        modality="reflected",
        full_well=4000.0,
        background_level=0.45,
        exposure_drift=0.1,
    ),
}
