"""Classical focus measures and the gradient maps GMANet attends to.

``FOCUS_MEASURES`` maps a name to a :class:`FocusMeasure`; ``get_measure`` resolves names with
"did you mean" errors.
"""

from __future__ import annotations

import difflib

from gmaiqa.errors import GmaiqaError
from gmaiqa.focus.measures import FocusMeasure, local_max_gradient
from gmaiqa.focus.pertuz import PERTUZ

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


for _name, (_fn, _source) in PERTUZ.items():
    register(FocusMeasure(_name, _fn, True, f"{_source}; Pertuz et al. 2013"))
register(FocusMeasure("LMG", local_max_gradient, True, "GMANet §3.1, Eq. 1-6"))
# what `methods=all_classical` runs: the whole registry, in registration order
ALL_CLASSICAL = "all_classical"


def classical_names() -> list[str]:
    return list(FOCUS_MEASURES)


__all__ = ["ALL_CLASSICAL", "FOCUS_MEASURES", "FocusMeasure", "classical_names", "get_measure", "register"]
