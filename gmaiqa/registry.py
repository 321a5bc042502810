"""One shape for gmaiqa's registries: model families (``gmaiqa.models.registry``), focus measures
(``gmaiqa.focus``) and stack file readers (``gmaiqa.data.stackfile``). Each fills a :class:`Registry`
at import; a lookup of a name it lacks says so once, with the closest names, so every registry answers a
typo the same way."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TypeVar

from gmaiqa.errors import ConfigError, GmaiqaError, did_you_mean

T = TypeVar("T")


class Registry(dict[str, T]):
    """Names (as ``normalize`` spells them: ``str.upper`` for focus measures, ``str.lower`` for file
    suffixes) to the things of one ``kind``. A dict, so that iterating and ``in`` read as usual."""

    def __init__(self, kind: str, normalize: Callable[[str], str] = str):
        super().__init__()
        self.kind = kind
        self.normalize = normalize

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name``; the same name for another item is a programming error."""
        key = self.normalize(name)
        if key in self and self[key] is not item:
            raise ValueError(f"{self.kind} {key!r} is registered twice ({self[key]!r} and {item!r})")
        self[key] = item
        return item

    def closest(self, name: str, n: int = 3) -> list[str]:
        """The registered names nearest to ``name``, nearest first (none when nothing is close)."""
        return difflib.get_close_matches(self.normalize(str(name)), list(self), n=n, cutoff=0.5)

    def lookup(self, name: str, key: str | None = None, fix: str | None = None) -> T:
        """The item called ``name``. Unknown: a :class:`ConfigError` naming the config ``key`` when the
        name came from one, else a :class:`GmaiqaError`; both name the closest registered names."""
        found = self.get(self.normalize(str(name)))
        if found is not None:
            return found
        problem = f"unknown {self.kind} {name!r}{did_you_mean(self.normalize(str(name)), self)}"
        fix = fix or f"choose one of {sorted(self)}"
        if key is not None:
            raise ConfigError(key, problem, fix)
        raise GmaiqaError(f"{problem}; {fix}")
