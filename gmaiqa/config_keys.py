"""Rules about the keys of a command line, beyond what composition checks: a switch takes only true or
false, required keys are named together, interpolations resolve, a key added with ``+`` is an argument
of what its node builds, a key removed with ``~`` is not one the command reads, and a run's folder
names are usable."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError

from gmaiqa.config_compose import (
    base_config,
    keys_of,
    known_keys,
    not_a_switch,
    removed_key_error,
    suggest_key,
)
from gmaiqa.errors import ConfigError, did_you_mean


def _switches(command: str, overrides: list[str]) -> set[str]:
    """The keys that are true or false by default (with the user's group choices)."""
    base = base_config(command, overrides)
    return set() if base is None else {key for key, value in _leaves(base) if isinstance(value, bool)}


def check_switches(command: str, cfg: DictConfig, overrides: list[str]) -> None:
    """A key that is true or false by default takes only true or false: Hydra reads `overwrite=no` or
    `json=yes` as text, which Python takes as true, so a typo for false overwrote a user's folder."""
    if not any("=" in o for o in overrides):
        return
    switches = _switches(command, overrides)
    for override in overrides:
        # as written: a typed schema reads yes/no/on/off/1/0 as booleans, and one spelling everywhere
        # (train's untyped keys too) is easier to trust than a list of synonyms
        key, _, value = override.lstrip("+").partition("=")
        written = value.strip().strip("'\"")
        if any(mark in written for mark in ("${", ",", "(")):
            continue  # an interpolation (checked when it resolves) or a sweep (check_sweep_switches)
        if key in switches and written.lower() not in ("true", "false"):
            raise not_a_switch(key, written)
    for key, value in _leaves(cfg):
        if key not in switches or isinstance(value, bool):
            continue
        if isinstance(value, str) and value.startswith("${"):
            continue  # an interpolation, checked when it resolves
        raise not_a_switch(key, value)


def check_sweep_switches(command: str, overrides: list[str]) -> None:
    """``check_switches`` for every value a multirun sweeps (precheck composes its first job only)."""

    sweeps = [o for o in OverridesParser.create().parse_overrides(overrides) if o.is_sweep_override()]
    switches = _switches(command, overrides) if sweeps else set()
    for override in sweeps:
        key = override.get_key_element()
        for value in override.sweep_string_iterator() if key in switches else ():
            if value.lower() not in ("true", "false"):
                raise not_a_switch(key, value, swept=True)


# what a required key takes (by key, or by 'command key' where a command differs), for the message
# when it is left out (others: KEY=VALUE)
REQUIRED_VALUES = {
    "out": "DIR (a folder for the outputs)",
    "input": "PATH (a folder of z-stacks, or one stack file)",
    "ckpt": "PATH (a .ckpt, a run folder, an exported file, or default: the shipped model)",
    "root": "DIR (a dataset folder, or one stack file)",
    "data.root": "DIR (a dataset folder, or one stack file)",
    "dir": "DIR (a run or multirun folder)",
    "dirs": "[DIR,...] (multirun folders; positional arguments work too)",
    "export out": "FILE (the exported model)",
}


def _leaves(cfg: DictConfig) -> list[tuple[str, object]]:
    """(dotted key, value as written) of every leaf outside Hydra's own node, nothing resolved."""
    found = []

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{prefix}{index}.")
        else:
            found.append((prefix[:-1], node))

    tree = OmegaConf.to_container(cfg, resolve=False)
    walk({k: v for k, v in tree.items() if k != "hydra"}, "")
    return found


def missing_keys(cfg: DictConfig) -> list[str]:
    """Keys still ``???`` (required, not given)."""
    return [key for key, value in _leaves(cfg) if value == "???"]


def check_interpolations(cfg: DictConfig) -> None:
    """Every ``${key}`` the user's values (or the configs) refer to exists: Hydra raised a traceback for
    ``resize=${nope}`` only once the command read the value. Resolvers (``${oc.select:...}``,
    ``${hydra:...}``) are left to Hydra: some only resolve inside a running job."""

    for key, value in _leaves(cfg):
        if not (isinstance(value, str) and "${" in value):
            continue
        try:
            OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except InterpolationKeyError as exc:
            raise ConfigError(
                key,
                f"{value} refers to a key that does not exist ({str(exc).splitlines()[0]})",
                "give a value, or a ${...} reference to a key the config has",
            ) from None
        except Exception:  # a resolver that needs the running job; Hydra resolves it there
            pass


def check_required(command: str, cfg: DictConfig) -> None:
    """Every required key given: one message naming them all (Hydra would stop at the first, with a
    traceback, only when the command reached it)."""
    missing = missing_keys(cfg)
    if not missing:
        return
    others = f" (nor for {', '.join(f'`{k}`' for k in missing[1:])})" if missing[1:] else ""
    raise ConfigError(
        missing[0],
        f"no value given{others}",
        "pass "
        + " ".join(
            f"{k}={REQUIRED_VALUES.get(f'{command} {k}', REQUIRED_VALUES.get(k, 'VALUE'))}" for k in missing
        )
        + f" (`gmaiqa {command} --help` lists every key)",
    )


def added_keys(cfg: DictConfig, base_keys: set[str]) -> list[str]:
    """Keys in ``cfg`` the command's own config does not have (added with ``+``), outermost only."""
    extra = sorted(keys_of(cfg) - base_keys)
    return [k for k in extra if not any(k.startswith(other + ".") for other in extra if other != k)]


def into_open_container(key: str, known: set[str]) -> bool:
    """A key added to a mapping that is empty by default and filled by the user (``callbacks: {}``:
    ``+callbacks.mine={_target_: ...}``)."""
    parent = key.rpartition(".")[0]
    return bool(parent) and parent in known and not any(k.startswith(parent + ".") for k in known)


def _builder(node: DictConfig):
    """What a ``_target_`` node builds: the callable, or a model family's own builder."""

    target = get_object(str(node._target_))
    if getattr(target, "__name__", "") == "build_model" and node.get("family"):
        # here, not at import: loads torch, torchvision only when this runs
        from gmaiqa.models.registry import get_family

        return get_family(str(node.family), key=_key_of(node) + ".family").builder
    return target


def _key_of(node: DictConfig) -> str:
    return node._get_full_key(None) or "<root>"


def _parameters(builder) -> tuple[set[str], bool]:
    signature = inspect.signature(builder)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    return {name for name in signature.parameters if name != "self"}, takes_any


def check_added_key(cfg: DictConfig, key: str, command: str, known: Iterable[str]) -> None:
    """A ``+key`` of ``train`` must be an argument of the nearest ``_target_`` node above it."""
    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent = OmegaConf.select(cfg, ".".join(parts[:depth]))
        if isinstance(parent, DictConfig) and "_target_" in parent:
            try:
                builder = _builder(parent)
            except ConfigError:
                raise
            except Exception:  # an unimportable target is reported when it is built
                return
            names, takes_any = _parameters(builder)
            argument = parts[depth]
            if takes_any or argument in names:
                return
            owner = getattr(builder, "__qualname__", str(builder))
            raise ConfigError(
                key,
                f"{owner} takes no argument {argument!r}{did_you_mean(argument, names, quote='`')}",
                f"its arguments: {sorted(n for n in names if not n.startswith('_'))}",
            )
    raise ConfigError(
        key,
        f"not a key of gmaiqa {command}{suggest_key(key, known)}",
        f"`gmaiqa {command} --cfg job` lists every key",
    )


def check_run_names(cfg: DictConfig) -> None:
    """``run_name`` and ``run_id`` name the run's folder (``output_root/run_name/run_id``): null became a
    folder named 'None', and '' or '.' put the run into its parent, beside the other runs."""
    written = OmegaConf.to_container(cfg, resolve=False)
    for key in ("run_name", "run_id"):
        value = written[key]
        if value is None or str(value).strip() in ("", ".", ".."):
            raise ConfigError(
                key,
                f"{'null' if value is None else repr(value)} names no folder of its own",
                "give it a name"
                + (", or leave it out for a unique one (time + random suffix)" if key == "run_id" else ""),
            )


def check_removed_keys(command: str, cfg: DictConfig, overrides: list[str]) -> None:
    """``~key`` removes a key (or a config group) from the composed config; every key a command's
    config defines is one it reads, so removing one only moved the failure into the run, as a
    traceback. Entries the user added (``+callbacks.mine``) may be removed again."""
    removed = [o[1:].split("=", 1)[0] for o in overrides if o.startswith("~")]
    if not removed:
        return
    known = known_keys(command, overrides)
    present = keys_of(cfg)
    for key in removed:
        dotted = key.replace("/", ".")
        if dotted in known and dotted not in present:
            raise removed_key_error(command, dotted)
