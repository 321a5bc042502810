"""Classical focus measures and the gradient maps GMANet attends to.

``FOCUS_MEASURES`` maps a name to a :class:`FocusMeasure`; ``get_measure`` resolves names with
"did you mean" errors, and ``rank:A+B+...`` to a :class:`~gmaiqa.focus.fusion.RankFusion` of registered
measures (not registered itself: ``all_classical`` stays the single measures).
"""

from __future__ import annotations

from gmaiqa.errors import GmaiqaError
from gmaiqa.focus.fusion import RankFusion, is_fusion, member_names
from gmaiqa.focus.measures import FocusMeasure, local_max_gradient
from gmaiqa.focus.pertuz import PERTUZ, SIGNED
from gmaiqa.registry import Registry

# names as users type them: `method=teng ` is TENG
FOCUS_MEASURES: Registry[FocusMeasure] = Registry(
    "focus measure", normalize=lambda name: name.strip().upper()
)


def register(measure: FocusMeasure) -> FocusMeasure:
    return FOCUS_MEASURES.add(measure.name, measure)


def get_measure(name: str) -> FocusMeasure | RankFusion:
    if is_fusion(name):
        return get_fusion(name)
    found = FOCUS_MEASURES.get(FOCUS_MEASURES.normalize(name))
    if found is not None:
        return found
    close = FOCUS_MEASURES.closest(name)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise GmaiqaError(f"unknown focus measure {name!r}{hint} (known: {', '.join(sorted(FOCUS_MEASURES))})")


def get_fusion(name: str) -> RankFusion:
    """``rank:TENG+GLVN``: at least two different registered measures, in the order given."""
    members = [get_measure(part) for part in member_names(name)]
    names = [m.name for m in members]
    if len(set(names)) < 2 or len(set(names)) != len(names):
        raise GmaiqaError(
            f"rank fusion {name!r} needs at least two different measures joined by '+', each once "
            "(e.g. rank:TENG+LAPM+GLVN)"
        )
    return RankFusion(tuple(members))


for _name, (_fn, _source) in PERTUZ.items():
    register(FocusMeasure(_name, _fn, True, f"{_source}; Pertuz et al. 2013", signed=_name in SIGNED))
register(FocusMeasure("LMG", local_max_gradient, True, "GMANet §3.1, Eq. 1-6"))
# what `methods=all_classical` runs: the whole registry, in registration order
ALL_CLASSICAL = "all_classical"


def classical_names() -> list[str]:
    return list(FOCUS_MEASURES)


__all__ = [
    "ALL_CLASSICAL",
    "FOCUS_MEASURES",
    "FocusMeasure",
    "RankFusion",
    "classical_names",
    "get_fusion",
    "get_measure",
    "register",
]
