"""Search strategies: where to acquire next, given the scores so far, to reach focus with few
acquisitions. Each takes a :class:`~gmaiqa.autofocus.stage.Meter` (which moves, acquires, scores and
counts), the range to search and a z tolerance, and stops on the tolerance or the meter's budget:

* ``full_scan``: every ``tolerance_um`` across the range (or as many evenly spaced planes as the budget
  allows): the baseline, and what a recorded stack already is;
* ``coarse_fine``: 11 planes across the range, then around the best plane again at a quarter of the
  step, until the step reaches the tolerance (SimpleAutofocus' coarse-then-fine scan, repeated);
* ``brent``: 7 planes across the range to bracket the peak, then Brent's method (golden-section steps
  and parabolic interpolation, as Micro-Manager's OughtaFocus) inside the bracket to the tolerance;
* ``curve_fit``: 7 planes across the range, then successive parabolic interpolation of the score around
  the best plane - fit a parabola to three planes, acquire its vertex, shrink the spacing by 3 - the
  focus-curve fitting of e.g. Yazdanfar et al. (2008), here without a model of the curve's shape.

Every search ends with :func:`diagnose`: a curve whose scores barely change (no specimen, all out of
focus) is ``flat`` and finds nothing; one with two separated maxima (two layers, a reflection) is
``two_peaks``: the higher is returned and both are named, never a silent guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from gmaiqa.autofocus.stage import BudgetSpent, Meter

FLAT = 0.02  # a curve whose highest and lowest scores differ by less than this share is flat
COARSE = 11  # coarse_fine's planes across the range
BRACKET = 7  # brent's and curve_fit's planes across the range


@dataclass
class Result:
    found_um: float | None  # where the stage was for the best frame; None: flat, nothing found
    status: str  # ok | flat | two_peaks | budget (the budget ran out before the tolerance was reached)
    peaks: list[float]  # the separated maxima, highest first (two_peaks)
    acquisitions: int
    seconds: float


def _grid(lower: float, upper: float, count: int) -> np.ndarray:
    return np.linspace(lower, upper, max(count, 2))


def full_scan(meter: Meter, lower: float, upper: float, tolerance_um: float) -> bool:
    count = int(math.floor((upper - lower) / tolerance_um + 1e-9)) + 1
    for z in _grid(lower, upper, min(count, meter.budget)):
        meter(z)
    return count <= meter.budget


def coarse_fine(meter: Meter, lower: float, upper: float, tolerance_um: float) -> bool:
    step = (upper - lower) / (COARSE - 1)
    for z in _grid(lower, upper, COARSE):
        meter(z)
    while step > tolerance_um + 1e-9:
        centre, reach = meter.best().z, step
        step = max(step / 4, tolerance_um)
        for z in np.arange(centre - reach, centre + reach + step / 2, step):
            meter(z)
    return True


def _bracket(meter: Meter, lower: float, upper: float) -> tuple[float, float]:
    """BRACKET planes across the range: their spacing, and the best plane."""
    planes = _grid(lower, upper, BRACKET)
    for z in planes:
        meter(z)
    return float(planes[1] - planes[0]), meter.best().z


def brent(meter: Meter, lower: float, upper: float, tolerance_um: float) -> bool:
    spacing, centre = _bracket(meter, lower, upper)
    a, b = max(lower, centre - spacing), min(upper, centre + spacing)
    minimize_scalar(
        lambda z: -meter(z),
        bounds=(a, b),
        method="bounded",
        options={"xatol": tolerance_um / 2, "maxiter": 100},
    )
    return True


def curve_fit(meter: Meter, lower: float, upper: float, tolerance_um: float) -> bool:
    spacing, centre = _bracket(meter, lower, upper)
    while spacing > tolerance_um:
        zs = np.array([centre - spacing, centre, centre + spacing])
        scores = np.array([meter(z) for z in zs])
        curvature = scores[0] - 2 * scores[1] + scores[2]
        if curvature < 0:  # concave: the vertex of the parabola through the three
            centre = float(centre + spacing * (scores[0] - scores[2]) / (2 * curvature))
            centre = min(max(centre, zs[0]), zs[2])
        else:
            centre = float(zs[int(np.argmax(scores))])
        meter(centre)
        centre = meter.best().z
        spacing /= 3
    return True


STRATEGIES: dict[str, Callable[[Meter, float, float, float], bool]] = {
    "full_scan": full_scan,
    "coarse_fine": coarse_fine,
    "brent": brent,
    "curve_fit": curve_fit,
}


def diagnose(meter: Meter) -> tuple[str, list[float]]:
    """``ok``, ``flat`` or ``two_peaks`` from every score of the path, with the maxima (highest first)."""
    probes = sorted(meter.path, key=lambda p: p.z)
    scores = np.array([p.score for p in probes])
    high, low = scores.max(), scores.min()
    if high - low <= FLAT * max(abs(high), 1e-12):
        return "flat", []
    maxima = [
        i
        for i in range(len(scores))
        if (i == 0 or scores[i] > scores[i - 1]) and (i == len(scores) - 1 or scores[i] >= scores[i + 1])
    ]
    maxima.sort(key=lambda i: -scores[i])
    if len(maxima) >= 2:
        first, second = maxima[0], maxima[1]
        lo_i, hi_i = sorted((first, second))
        valley = scores[lo_i : hi_i + 1].min() - low
        h1, h2 = scores[first] - low, scores[second] - low
        if h2 >= 0.5 * h1 and valley <= 0.7 * h2 and hi_i - lo_i >= 2:
            return "two_peaks", [probes[first].z, probes[second].z]
    return "ok", [probes[maxima[0]].z] if maxima else []


def search(meter: Meter, strategy: str, lower: float, upper: float, tolerance_um: float) -> Result:
    """Run one strategy to its tolerance or its budget, then diagnose the curve it saw."""
    try:
        reached = STRATEGIES[strategy](meter, lower, upper, tolerance_um)
    except BudgetSpent:
        reached = False
    status, peaks = diagnose(meter)
    if status == "ok" and not reached:
        status = "budget"
    found = None if status == "flat" else meter.best().at
    return Result(found, status, peaks, meter.acquisitions, meter.seconds)
