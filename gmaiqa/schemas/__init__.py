"""Typed schemas of the configuration's closed nodes, registered in Hydra's ConfigStore and named first
in the YAML's defaults (``conf/logger/default.yaml``: ``defaults: [schema, _self_]``; a command's own keys:
``conf/predict.yaml``: ``defaults: [schema_predict, ...]``, ``gmaiqa.schemas.commands``), so that types and
choices live here and values and their comments stay in YAML, where ``--help`` prints them.

A wrong value or type then fails at composition, before any gmaiqa code runs, and the precheck turns
OmegaConf's error (its ``full_key``) into one message (``gmaiqa.config_compose.hydra_error``). These
modules import only dataclasses, enum and omegaconf: refusing a typo must not wait for torch.

Model, task and trainer stay open nodes (``_target_`` plus the builder's arguments), checked against
their builders' signatures and by the builders themselves.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from gmaiqa.schemas.commands import COMMAND_SCHEMAS
from gmaiqa.schemas.data import FocusStackData
from gmaiqa.schemas.logger import TrainLogger

_registered: list[bool] = []


def register() -> None:
    """Store every schema once per process (before composing any command's config)."""
    if _registered:
        return
    # here: a module that only reads a schema's choices (gmaiqa.data.splits) need not import Hydra

    store = ConfigStore.instance()
    store.store(group="logger", name="schema", node=TrainLogger)
    store.store(group="data", name="stacks_schema", node=FocusStackData)
    for command, schema in COMMAND_SCHEMAS.items():
        store.store(name=f"schema_{command}", node=schema)
    _registered.append(True)
