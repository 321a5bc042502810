"""Composing a command's configuration as Hydra will, and turning what Hydra and OmegaConf raise into
one :class:`ConfigError` naming the key, the closest key or option, and what to do. Errors are read by
their type and ``full_key`` wherever OmegaConf gives one (a schema's wrong value or type, an override of
a key that does not exist) and by ``missing_cfg_file`` for a config group's unknown option; only Hydra's
errors for ``~key`` and ``+key`` carry neither, so their first line is read."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ConfigTypeError, ValidationError

from gmaiqa.errors import ConfigError, did_you_mean
from gmaiqa.paths import conf_dir
from gmaiqa.schemas import register


def keys_of(node, prefix: str = "") -> set[str]:
    """Every dotted key of a config (list items are not keys)."""
    keys: set[str] = set()
    if isinstance(node, DictConfig):
        for key in node.keys():
            path = f"{prefix}{key}"
            keys.add(path)
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                keys |= keys_of(child, path + ".")
    return keys


def suggest_key(key: str, known: Iterable[str]) -> str:
    """`` (did you mean `a.b`?)``: the closest key beside ``key`` (same parent); when its parent does not
    exist (``dat.batch_size``), the closest key anywhere."""
    parent, _, last = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == parent}
    # stricter than the default: `model.foo` should get no suggestion rather than `model.family`
    close = difflib.get_close_matches(last, list(siblings), n=1, cutoff=0.7)
    if close:
        return f" (did you mean `{siblings[close[0]]}`?)"
    if siblings:  # the parent exists and nothing beside it is close: no guess
        return ""
    return did_you_mean(key, [k for k in known if "." in k] if "." in key else known, quote="`")


def compose_command(command: str, overrides: list[str], with_hydra: bool = False) -> DictConfig:

    register()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(command, overrides=overrides, return_hydra_config=with_hydra)


def first_job(overrides: list[str]) -> list[str]:
    """The overrides of a multirun's first job (``a=1,2`` -> ``a=1``)."""

    first = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            value = next(iter(override.sweep_string_iterator()))
            first.append(f"{override.get_key_element()}={value}")
        else:
            first.append(override.input_line)
    return first


@functools.lru_cache(maxsize=4)
def _config_groups(folder: str) -> frozenset[str]:
    """The config groups under ``folder`` (``model``, ``model/backbone``, ...)."""
    root = Path(folder)
    return frozenset(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


def _group_choices(overrides: list[str]) -> list[str]:
    """The overrides that choose a config group option (``experiment=x``, ``model/backbone=y``), not
    those that set a top-level value (``seed=1``)."""

    groups = _config_groups(str(conf_dir()))
    return [
        o
        for o in overrides
        if "=" in o
        and not o.startswith(("+", "~"))
        and (o.split("=")[0].split("@")[0] in groups or o.startswith("hydra.searchpath="))
    ]


def base_config(command: str, overrides: list[str]) -> DictConfig | None:
    """The command's config with the user's group choices and none of their values: what each key is
    by default (composed once per command and choices: several checks read it; do not modify it)."""

    return _composed_base(str(conf_dir()), command, tuple(_group_choices(overrides)))


@functools.lru_cache(maxsize=16)
def _composed_base(folder: str, command: str, choices: tuple[str, ...]) -> DictConfig | None:
    """``folder``: the conf/ folder composed from (part of the key, as ``_compose`` reads it)."""
    try:
        return compose_command(command, list(choices))
    except Exception:
        try:
            return compose_command(command, [])
        except Exception:
            return None


def known_keys(command: str, overrides: list[str]) -> set[str]:
    base = base_config(command, overrides)
    return set() if base is None else keys_of(base)


def hydra_error(command: str, exc: Exception, overrides: list[str]) -> ConfigError:
    """Hydra's composition error as one message naming the key and the fix."""

    typed = schema_error(command, exc, overrides)
    if typed is not None:
        return typed
    text = str(exc)
    if isinstance(exc, OverrideParseException):
        return ConfigError(
            "overrides",
            f"cannot read {text.splitlines()[0]!r}",
            "write key=value (quote a value with spaces or brackets: key='[1,2]')",
        )
    if isinstance(exc, MissingConfigException):
        missing = str(getattr(exc, "missing_cfg_file", None) or "")  # 'model/backbone/resnt18'
        options = list(exc.options or [])
        if "/" in missing:
            group, _, choice = missing.rpartition("/")
            return ConfigError(
                group,
                f"no option {choice!r}{did_you_mean(choice, options)}",
                f"choose one of {options}" if options else f"see the files under conf/{group}/",
            )
        return ConfigError("defaults", text.splitlines()[0], "check the config name")
    unknown = _cause_with_key(exc, ConfigAttributeError, ConfigKeyError)
    override = unknown is None and re.search(r"Could not override '([^']+)'", text)
    if unknown is not None or override:
        key = str(unknown.full_key) if unknown is not None else override.group(1)
        # OmegaConf names the first missing part (`dat`); the user's own key (`dat.batch_size`) gets the
        # better suggestion
        written = [o.split("=", 1)[0] for o in overrides]
        key = next((w for w in written if w == key or w.startswith(key + ".")), key)
        known = known_keys(command, overrides)
        hint = suggest_key(key, known)
        if hint:
            fix = f"check the spelling (`gmaiqa {command} --cfg job` lists every key)"
        else:
            fix = f"`gmaiqa {command} --cfg job` lists every key; +{key}=VALUE adds a new one"
        return ConfigError(key, f"no such key{hint}", fix)
    deleted = re.search(r"Could not delete from config. '([^']+)' does not exist", text)
    if deleted:
        key = deleted.group(1)
        known = known_keys(command, overrides)
        if key in known:  # Hydra cannot delete a key whose value is null, and says it does not exist
            return removed_key_error(command, key)
        return ConfigError(
            f"~{key}", f"no such key to remove{suggest_key(key, known)}", f"see `gmaiqa {command} --help`"
        )
    append = re.search(r"Could not append to config. An item is already at '([^']+)'", text)
    if append:
        key = append.group(1)
        return ConfigError(key, "is already a key", f"set it without the +: {key}=VALUE")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ConfigError("overrides", first, f"see `gmaiqa {command} --help`")


def _cause_with_key(exc: BaseException, *kinds: type[BaseException]):
    """The first exception in ``exc``'s chain (``exc`` included) of one of OmegaConf's ``kinds`` that
    names its key (``full_key``), or None."""
    cause = exc
    while cause is not None:
        if isinstance(cause, kinds) and getattr(cause, "full_key", ""):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def schema_error(command: str, exc: Exception, overrides: list[str]) -> ConfigError | None:
    """A value its schema (``gmaiqa.schemas``) refuses, named by the ``full_key`` OmegaConf gives, with
    the choices of an enum and the closest of them; None for any other error."""

    cause = _cause_with_key(exc, ValidationError, ConfigTypeError)
    if cause is None:
        return None
    key, value = cause.full_key, cause.value
    if any(o.split("=", 1)[0] == f"~{key}" for o in overrides):
        return removed_key_error(command, key)  # a typed node keeps its keys: it refuses the deletion
    if not isinstance(cause, ValidationError):
        return None
    parent, _, leaf = key.rpartition(".")
    base = base_config(command, overrides)
    container = OmegaConf.select(base, parent) if base is not None and parent else base
    node = container._get_node(leaf) if isinstance(container, DictConfig) else None
    kind = getattr(node, "enum_type", None)
    if isinstance(kind, type) and issubclass(kind, Enum):
        choices = [member.value for member in kind]
        return ConfigError(key, f"{value!r}{did_you_mean(str(value), choices)}", f"choose one of {choices}")
    if type(node).__name__ == "BooleanNode":
        return not_a_switch(key, value)
    wanted = SCHEMA_TYPES.get(type(node).__name__, "of the type the key takes")
    return ConfigError(key, f"{value!r} is not {wanted}", f"`gmaiqa {command} --help` shows the key")


# OmegaConf's value nodes, as a message names what they take
SCHEMA_TYPES = {
    "IntegerNode": "a whole number",
    "FloatNode": "a number",
    "StringNode": "text",
    "PathNode": "a path",
}


def not_a_switch(key: str, value, swept: bool = False) -> ConfigError:
    """The message for a key that takes true or false, typed by a schema or by its default."""
    return ConfigError(
        key,
        f"must be true or false, not {value!r}" + (" (swept)" if swept else ""),
        f"sweep {key}=true,false" if swept else f"write {key}=true or {key}=false",
    )


def removed_key_error(command: str, key: str) -> ConfigError:
    return ConfigError(
        key,
        f"`~{key}` removes a key gmaiqa {command} reads",
        f"give it a value instead ({key}=VALUE; `gmaiqa {command} --help` says which may be null)",
    )
