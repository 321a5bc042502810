"""The model families gmaiqa can train and score, by name (as timm's and pyiqa's registries do).

A family is registered where it is defined, with the decorator on its builder::

    @register_model("wadiqam_nr", paper="Bosse et al. 2018 (GMANet §5.2)")
    class WaDIQaM(nn.Module): ...

and configured by ``conf/model/<name>.yaml``, which builds it through :func:`build_model`
(``_target_: gmaiqa.models.registry.build_model``, ``family: <name>``, then the builder's own keyword
arguments). Every module of ``gmaiqa.models`` is imported when the registry is first read, so a new
family is one model file, one config and the contract test (``tests/test_model_contract.py``, which
runs on every registered family) - nothing else names it.

What a family records besides its builder is what the commands need to use a checkpoint of it:

* ``higher_is_better``: the direction of its ``output1`` (a quality score: higher = clearer; the
  defocus regressor's level: lower = clearer), recorded in every checkpoint and applied by
  ``gmaiqa.scoring.clarity``;
* ``scoring``: how a whole image is scored (``window``: the sliding window of ``gmaiqa.inference``;
  ``defocus_tiles``: ``gmaiqa.defocus_maps``);
* ``task``: the ``conf/task/`` config that trains it (its loss fixes the direction above).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from hydra.utils import get_object
from torch import nn

from gmaiqa.errors import ConfigError
from gmaiqa.registry import Registry

SCORINGS = ("window", "defocus_tiles")


@dataclass(frozen=True)
class ModelFamily:
    name: str
    builder: Callable[..., nn.Module]
    task: str
    higher_is_better: bool = True
    scoring: str = "window"
    paper: str = ""


_FAMILIES: Registry[ModelFamily] = Registry("model family")
_DISCOVERED = False


def register_model(
    name: str, *, task: str, higher_is_better: bool = True, scoring: str = "window", paper: str = ""
) -> Callable:
    """Register the decorated builder (a class or function returning an ``nn.Module``) as ``name``."""
    if scoring not in SCORINGS:
        raise ValueError(f"family {name!r}: scoring must be one of {SCORINGS}, not {scoring!r}")

    def decorate(builder: Callable) -> Callable:
        known = _FAMILIES.get(name)
        if known is not None and known.builder is not builder:
            raise ValueError(f"model family {name!r} is registered twice ({known.builder} and {builder})")
        _FAMILIES[name] = ModelFamily(name, builder, task, higher_is_better, scoring, paper)
        return builder

    return decorate


def _discover() -> None:
    global _DISCOVERED
    if not _DISCOVERED:
        # here, not at import: gmaiqa.models imports this module
        import gmaiqa.models as package

        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
        _DISCOVERED = True


def families() -> dict[str, ModelFamily]:
    """Every registered family by name."""
    _discover()
    return dict(sorted(_FAMILIES.items()))


def get_family(name: str, key: str = "model.family") -> ModelFamily:
    _discover()
    return _FAMILIES.lookup(
        name, key, fix=f"choose one of {sorted(_FAMILIES)} (model=<name> picks conf/model/<name>.yaml)"
    )


def build_model(family: str, **kwargs) -> nn.Module:
    """What ``conf/model/*.yaml`` instantiate: the family's builder with the config's other keys."""
    return get_family(family).builder(**kwargs)


def family_of_config(model: dict) -> ModelFamily:
    """The family a model config (or a checkpoint's recorded one) builds. Configs written before the
    registry name their builder directly as ``_target_``; that object is looked up among the builders."""
    if model.get("family"):
        return get_family(str(model["family"]), key="ckpt")

    target = model.get("_target_")
    try:
        builder = get_object(str(target))
    except Exception:
        builder = None
    for family in families().values():
        if family.builder is builder:
            return family
    raise ConfigError(
        "ckpt",
        f"the model {target!r} is not a registered family (known: {list(families())})",
        "use a checkpoint written by gmaiqa train",
    )
