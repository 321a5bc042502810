"""A stage on a real microscope through Micro-Manager's Python core (``pymmcore-plus``, or ``pymmcore``:
an extra, not a dependency of gmaiqa; ``pip install pymmcore-plus`` and its device adapters).

    from pymmcore_plus import CMMCorePlus
    from gmaiqa.autofocus.mmcore import MMCoreStage
    from gmaiqa.autofocus import Meter, search
    from gmaiqa.autofocus.scorers import frame_scorer

    core = CMMCorePlus.instance(); core.loadSystemConfiguration("MMConfig_demo.cfg")
    stage = MMCoreStage(core, range_um=40)                    # the current focus drive, around here
    score, _ = frame_scorer(OmegaConf.create({"method": "TENG"}))
    result = search(Meter(stage, score, budget=30), "brent", *stage.z_limits, tolerance_um=0.5)
    stage.move_to(result.found_um)

The adapter uses only calls the core has had for years (``getFocusDevice``, ``getPosition``,
``setPosition``, ``waitForDevice``, ``snapImage``, ``getImage``), so it is tested here against a
stand-in core with those methods; Micro-Manager's simulated devices need its device adapters, which the
package index does not ship.
"""

from __future__ import annotations

import time

import numpy as np


class MMCoreStage:
    """The core's focus drive (``device``, default the current focus device) within ``range_um`` around
    where it stands now (or explicit ``z_limits``)."""

    def __init__(self, core, device: str | None = None, range_um: float | None = None, z_limits=None):
        self.core = core
        self.device = device or core.getFocusDevice()
        if not self.device:
            raise ValueError("the Micro-Manager core has no focus device: load a configuration with one")
        here = float(core.getPosition(self.device))
        if z_limits is None:
            if range_um is None:
                raise ValueError("give range_um (around the current z) or z_limits")
            z_limits = (here - range_um / 2, here + range_um / 2)
        self.z_limits = (float(z_limits[0]), float(z_limits[1]))
        self.started = time.perf_counter()

    @property
    def z(self) -> float:
        return float(self.core.getPosition(self.device))

    def move_to(self, z: float) -> None:
        self.core.setPosition(self.device, float(z))
        self.core.waitForDevice(self.device)

    def acquire(self) -> np.ndarray:
        self.core.snapImage()
        return np.asarray(self.core.getImage())

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
