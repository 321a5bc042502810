"""Checking a command's configuration before anything is created: no run folder, ``out=`` folder or W&B
run exists yet when a mistake in the command line is reported.

:func:`precheck` composes the command's config as Hydra will, and turns Hydra's own errors (an unknown
key, a missing option of a config group, an override it cannot parse) into a :class:`ConfigError` that
names the key, suggests the closest key or option and says what to do. A key added with ``+`` must be a
key of the command (``eval +splt=test`` is refused, not ignored) or, for ``train``, an argument of the
object its node builds (``+trainer.max_steps=1`` is one; ``+model.foo=1`` is not). ``train`` then checks
what it can without touching the disk: the stages' selection rules, ``init_from``, the W&B mode and
whether ``data.root`` exists.

A multirun (``-m``) is checked on its first job's values; a key that only exists in a later job's
experiment is left to that job.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import re
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gmaiqa.errors import (
    ConfigError,
    did_you_mean,
    is_count,  # noqa: F401  (owned by gmaiqa.errors; imported from here by older code)
)

# Hydra flags after which there is nothing to check (they print help and exit)
HELP_FLAGS = {"-h", "--help", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}
# flags that print the composed config: it is checked, the flag and its value are not overrides
SHOW_FLAGS = {"--cfg": 1, "-c": 1, "--package": 1, "-p": 1, "--resolve": 0}
MULTIRUN_FLAGS = {"-m", "--multirun"}


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


def _compose(command: str, overrides: list[str], with_hydra: bool = False) -> DictConfig:
    from hydra import compose, initialize_config_dir

    from gmaiqa.paths import conf_dir
    from gmaiqa.schemas import register

    register()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(command, overrides=overrides, return_hydra_config=with_hydra)


def _first_job(overrides: list[str]) -> list[str]:
    """The overrides of a multirun's first job (``a=1,2`` -> ``a=1``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

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
    from gmaiqa.paths import conf_dir

    groups = _config_groups(str(conf_dir()))
    return [
        o
        for o in overrides
        if "=" in o
        and not o.startswith(("+", "~"))
        and (o.split("=")[0].split("@")[0] in groups or o.startswith("hydra.searchpath="))
    ]


def _base_config(command: str, overrides: list[str]) -> DictConfig | None:
    """The command's config with the user's group choices and none of their values: what each key is
    by default (composed once per command and choices: several checks read it; do not modify it)."""
    from gmaiqa.paths import conf_dir

    return _composed_base(str(conf_dir()), command, tuple(_group_choices(overrides)))


@functools.lru_cache(maxsize=16)
def _composed_base(folder: str, command: str, choices: tuple[str, ...]) -> DictConfig | None:
    """``folder``: the conf/ folder composed from (part of the key, as ``_compose`` reads it)."""
    try:
        return _compose(command, list(choices))
    except Exception:
        try:
            return _compose(command, [])
        except Exception:
            return None


def _known_keys(command: str, overrides: list[str]) -> set[str]:
    base = _base_config(command, overrides)
    return set() if base is None else keys_of(base)


def _switches(command: str, overrides: list[str]) -> set[str]:
    """The keys that are true or false by default (with the user's group choices)."""
    base = _base_config(command, overrides)
    return set() if base is None else {key for key, value in _leaves(base) if isinstance(value, bool)}


def _not_a_switch(key: str, value, swept: bool = False) -> ConfigError:
    return ConfigError(
        key,
        f"must be true or false, not {value!r}" + (" (swept)" if swept else ""),
        f"sweep {key}=true,false" if swept else f"write {key}=true or {key}=false",
    )


def check_switches(command: str, cfg: DictConfig, overrides: list[str]) -> None:
    """A key that is true or false by default takes only true or false: Hydra reads `overwrite=no` or
    `json=yes` as text, which Python takes as true, so a typo for false overwrote a user's folder."""
    if not any("=" in o for o in overrides):
        return
    switches = _switches(command, overrides)
    for key, value in _leaves(cfg):
        if key not in switches or isinstance(value, bool):
            continue
        if isinstance(value, str) and value.startswith("${"):
            continue  # an interpolation, checked when it resolves
        raise _not_a_switch(key, value)


def check_sweep_switches(command: str, overrides: list[str]) -> None:
    """``check_switches`` for every value a multirun sweeps (precheck composes its first job only)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeps = [o for o in OverridesParser.create().parse_overrides(overrides) if o.is_sweep_override()]
    switches = _switches(command, overrides) if sweeps else set()
    for override in sweeps:
        key = override.get_key_element()
        for value in override.sweep_string_iterator() if key in switches else ():
            if value.lower() not in ("true", "false"):
                raise _not_a_switch(key, value, swept=True)


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
    from omegaconf.errors import InterpolationKeyError

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


def hydra_error(command: str, exc: Exception, overrides: list[str]) -> ConfigError:
    """Hydra's composition error as one message naming the key and the fix."""
    from hydra.errors import MissingConfigException, OverrideParseException

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
        found = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
        options = list(exc.options or [])
        if found:
            group, choice = found.group(1), found.group(2)
            return ConfigError(
                group,
                f"no option {choice!r}{did_you_mean(choice, options)}",
                f"choose one of {options}" if options else f"see the files under conf/{group}/",
            )
        return ConfigError("defaults", text.splitlines()[0], "check the config name")
    override = re.search(r"Could not override '([^']+)'", text)
    if override:
        key = override.group(1)
        known = _known_keys(command, overrides)
        hint = suggest_key(key, known)
        if hint:
            fix = f"check the spelling (`gmaiqa {command} --cfg job` lists every key)"
        else:
            fix = f"`gmaiqa {command} --cfg job` lists every key; +{key}=VALUE adds a new one"
        return ConfigError(key, f"no such key{hint}", fix)
    deleted = re.search(r"Could not delete from config. '([^']+)' does not exist", text)
    if deleted:
        key = deleted.group(1)
        known = _known_keys(command, overrides)
        if key in known:  # Hydra cannot delete a key whose value is null, and says it does not exist
            return _removed(command, key)
        return ConfigError(
            f"~{key}", f"no such key to remove{suggest_key(key, known)}", f"see `gmaiqa {command} --help`"
        )
    append = re.search(r"Could not append to config. An item is already at '([^']+)'", text)
    if append:
        key = append.group(1)
        return ConfigError(key, "is already a key", f"set it without the +: {key}=VALUE")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ConfigError("overrides", first, f"see `gmaiqa {command} --help`")


def schema_error(command: str, exc: Exception, overrides: list[str]) -> ConfigError | None:
    """A value its schema (``gmaiqa.schemas``) refuses, named by the ``full_key`` OmegaConf gives, with
    the choices of an enum and the closest of them; None for any other error."""
    from enum import Enum

    from omegaconf.errors import ConfigTypeError, ValidationError

    cause = exc
    while cause is not None and not (
        isinstance(cause, ValidationError | ConfigTypeError) and getattr(cause, "full_key", "")
    ):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    key, value = cause.full_key, cause.value
    if any(o.split("=", 1)[0] == f"~{key}" for o in overrides):
        return _removed(command, key)  # a typed node keeps its keys: it refuses the deletion
    if not isinstance(cause, ValidationError):
        return None
    parent, _, leaf = key.rpartition(".")
    base = _base_config(command, overrides)
    container = OmegaConf.select(base, parent) if base is not None and parent else base
    node = container._get_node(leaf) if isinstance(container, DictConfig) else None
    kind = getattr(node, "enum_type", None)
    if isinstance(kind, type) and issubclass(kind, Enum):
        choices = [member.value for member in kind]
        return ConfigError(key, f"{value!r}{did_you_mean(str(value), choices)}", f"choose one of {choices}")
    wanted = SCHEMA_TYPES.get(type(node).__name__, "of the type the key takes")
    return ConfigError(key, f"{value!r} is not {wanted}", f"`gmaiqa {command} --help` shows the key")


# OmegaConf's value nodes, as a message names what they take
SCHEMA_TYPES = {
    "IntegerNode": "a whole number",
    "FloatNode": "a number",
    "BooleanNode": "true or false",
    "StringNode": "text",
    "PathNode": "a path",
}


def _added_keys(cfg: DictConfig, base_keys: set[str]) -> list[str]:
    """Keys in ``cfg`` the command's own config does not have (added with ``+``), outermost only."""
    extra = sorted(keys_of(cfg) - base_keys)
    return [k for k in extra if not any(k.startswith(other + ".") for other in extra if other != k)]


def _into_open_container(key: str, known: set[str]) -> bool:
    """A key added to a mapping that is empty by default and filled by the user (``callbacks: {}``:
    ``+callbacks.mine={_target_: ...}``)."""
    parent = key.rpartition(".")[0]
    return bool(parent) and parent in known and not any(k.startswith(parent + ".") for k in known)


def _builder(node: DictConfig):
    """What a ``_target_`` node builds: the callable, or a model family's own builder."""
    from hydra.utils import get_object

    target = get_object(str(node._target_))
    if getattr(target, "__name__", "") == "build_model" and node.get("family"):
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


def check_run_dir_free(job: list[str]) -> None:
    """A second launch of a running job is refused before Hydra writes its .hydra/ and log there."""
    from gmaiqa.runs import check_not_held

    if not any(o.split("=", 1)[0].lstrip("+~") in ("run_id", "hydra.run.dir") for o in job):
        return  # the default run_id is new each launch (time + random suffix)
    run_dir = _compose("train", job, with_hydra=True).hydra.run.dir
    check_not_held(Path(str(run_dir)))


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
    known = _known_keys(command, overrides)
    present = keys_of(cfg)
    for key in removed:
        dotted = key.replace("/", ".")
        if dotted in known and dotted not in present:
            raise _removed(command, dotted)


def _removed(command: str, key: str) -> ConfigError:
    return ConfigError(
        key,
        f"`~{key}` removes a key gmaiqa {command} reads",
        f"give it a value instead ({key}=VALUE; `gmaiqa {command} --help` says which may be null)",
    )


def _search_path(folder: str) -> str:
    """``--config-dir DIR`` (Hydra adds DIR's config groups, e.g. a user's own experiments, to gmaiqa's)
    as the override that composes the same way, so the command line is checked with DIR's configs."""
    path = Path(folder).expanduser().resolve() if folder else None
    if path is None or not path.is_dir():
        raise ConfigError(
            "--config-dir",
            f"{folder!r} is not a folder" if folder else "needs a folder",
            "give the folder that holds your config groups (e.g. DIR/experiment/NAME.yaml)",
        )
    return f"hydra.searchpath=['file://{path}']"


def precheck(command: str, overrides: list[str]) -> int:
    """Compose and check the command's config (every job of a multirun); raise ConfigError for any
    mistake found. Returns the number of jobs (0 when only Hydra's flags were given)."""
    # Hydra runs one of these and raised a bare ValueError (a traceback) when given two
    modes = [
        o
        for o in overrides
        if o in (*MULTIRUN_FLAGS, "--run", "-r", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")
    ]
    if len(modes) > 1:
        raise ConfigError(
            "flags",
            f"{' and '.join(modes)} cannot be combined (Hydra runs one of them)",
            "give one of them"
            + (
                f" (without -m, `gmaiqa {command} --cfg job KEY=VALUE ...` prints the config of one job)"
                if any(o in MULTIRUN_FLAGS for o in modes)
                else ""
            ),
        )
    if any(o in HELP_FLAGS for o in overrides):
        return 0
    multirun = any(o in MULTIRUN_FLAGS for o in overrides)
    plain, rest = [], [o for o in overrides if o not in MULTIRUN_FLAGS]
    while rest:
        arg = rest.pop(0)
        flag, _, value = arg.partition("=")
        if arg in SHOW_FLAGS:
            del rest[: SHOW_FLAGS[arg]]
        elif flag in ("--config-dir", "-cd"):
            plain.append(_search_path(value or (rest.pop(0) if rest else "")))
        elif flag in ("--config-name", "-cn", "--config-path", "-cp"):
            raise ConfigError(
                flag,
                f"gmaiqa {command} always reads its own conf/{command}.yaml",
                "keep your settings in an experiment file, DIR/experiment/NAME.yaml starting with "
                "`# @package _global_`, and run it with --config-dir DIR experiment=NAME",
            )
        else:
            plain.append(arg)
    if any(o.startswith("-") for o in plain):
        return 0  # another Hydra flag: Hydra reports its own use
    if not multirun:
        check_job(command, plain)
        return 1
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    first_job = _first_job(plain)
    try:
        first = _compose(command, first_job, with_hydra=True)
    except (HydraException, OmegaConfBaseException) as exc:
        error = hydra_error(command, exc, plain)
        swept = [o for o in first_job if o not in plain]
        if any(o.split("=", 1)[0].lstrip("+~") == error.key for o in swept):
            raise ConfigError(
                error.key, f"{error.problem} (job 0 of the sweep: {' '.join(swept)})", error.fix
            ) from None
        raise error from None
    check_sweep_switches(command, plain)
    check_sweep = getattr(importlib.import_module(f"gmaiqa.commands.{command}"), "check_sweep", None)
    if check_sweep is not None:
        check_sweep(first)
    jobs = sweep_jobs(plain, first)
    for number, job in checked_subset(jobs):
        try:
            check_job(command, job)
        except ConfigError as exc:
            swept = " ".join(o for o in job if o not in plain)
            raise ConfigError(
                exc.key, f"{exc.problem} (job {number} of the sweep: {swept})", exc.fix
            ) from None
    return len(jobs)


MOST_JOBS_CHECKED = 64  # a larger sweep: enough jobs that every swept value is checked at least once


def sweep_jobs(overrides: list[str], composed: DictConfig) -> list[list[str]]:
    """Every job of a multirun, as the basic sweeper will run them: the sweep config's
    ``hydra.sweeper.params`` and the command line's ``a=1,2`` (the command line wins), crossed. A
    sweeper that samples (Optuna's ranges) cannot be listed: then its first job only."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    given = parser.parse_overrides(overrides)
    keys = {o.get_key_element() for o in given}
    params = OmegaConf.select(composed, "hydra.sweeper.params") or {}
    from_config = [f"{k}={v}" for k, v in params.items() if k not in keys]
    try:
        return BasicSweeper.split_arguments(parser.parse_overrides(from_config) + given, None)[0]
    except HydraException:
        return [_first_job(overrides)]


def checked_subset(jobs: list[list[str]]) -> list[tuple[int, list[str]]]:
    """The jobs to check before a sweep starts, numbered as Hydra numbers them: all of them, or past
    MOST_JOBS_CHECKED those that bring a value no checked job had."""
    if len(jobs) <= MOST_JOBS_CHECKED:
        return list(enumerate(jobs))
    seen, chosen = set(), []
    for number, job in enumerate(jobs):
        if not set(job) <= seen:
            seen |= set(job)
            chosen.append((number, job))
    return chosen


def check_job(command: str, job: list[str]) -> None:
    """Every check of one job's command line (a plain run, or one job of a sweep)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = _compose(command, job)
    except (HydraException, OmegaConfBaseException) as exc:
        raise hydra_error(command, exc, job) from None
    check_removed_keys(command, cfg, job)
    check_switches(command, cfg, job)
    check_required(command, cfg)
    check_interpolations(cfg)
    if command == "train":
        check_run_names(cfg)
        check_run_dir_free(job)
    known = _known_keys(command, job)
    for key in _added_keys(cfg, known | {"hydra"}):
        if key.startswith("hydra.") or key == "hydra" or _into_open_container(key, known):
            continue
        if command != "train":
            raise ConfigError(
                key,
                f"not a key of gmaiqa {command}{suggest_key(key, known)}",
                f"`gmaiqa {command} --help` lists every key",
            )
        check_added_key(cfg, key, command, known)
    # the command's own world (its files, checkpoints, methods, outputs): gmaiqa.commands.<command>.check
    check_own = getattr(importlib.import_module(f"gmaiqa.commands.{command}"), "check", None)
    if check_own is not None:
        check_own(cfg)
