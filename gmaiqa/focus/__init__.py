"""Classical focus measures and the gradient maps GMANet attends to.

``FOCUS_MEASURES`` maps a name to a :class:`FocusMeasure`; ``get_measure`` resolves names with
"did you mean" errors.
"""

from __future__ import annotations

import difflib

from gmaiqa.errors import GmaiqaError
from gmaiqa.focus.measures import FocusMeasure, local_max_gradient, tenengrad

FOCUS_MEASURES: dict[str, FocusMeasure] = {}


def register(measure: FocusMeasure) -> FocusMeasure:
    if measure.name in FOCUS_MEASURES:
        raise ValueError(f"focus measure {measure.name!r} registered twice")
    FOCUS_MEASURES[measure.name] = measure
    return measure


def get_measure(name: str) -> FocusMeasure:
    key = name.strip().upper()
    if key in FOCUS_MEASURES:
        return FOCUS_MEASURES[key]
    close = difflib.get_close_matches(key, FOCUS_MEASURES, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise GmaiqaError(f"unknown focus measure {name!r}{hint} (known: {', '.join(sorted(FOCUS_MEASURES))})")


register(FocusMeasure("TENG", tenengrad, True, "Krotkov 1988; Pertuz et al. 2013"))
register(FocusMeasure("LMG", local_max_gradient, True, "GMANet §3.1, Eq. 1-6"))

__all__ = ["FOCUS_MEASURES", "FocusMeasure", "get_measure", "register"]
