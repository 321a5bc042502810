"""Checking a command's configuration before anything is created: no run folder, ``out=`` folder or W&B
run exists yet when a mistake in the command line is reported.

:func:`precheck` composes the command's config as Hydra will, and turns Hydra's own errors (an unknown
key, a missing option of a config group, an override it cannot parse) into a :class:`ConfigError` that
names the key, suggests the closest key or option and says what to do. A key added with ``+`` must be a
key of the command (``eval +splt=test`` is refused, not ignored) or, for ``train``, an argument of the
object its node builds (``+trainer.max_steps=1`` is one; ``+model.foo=1`` is not). ``train`` then checks
what it can without touching the disk: the stages' selection rules, ``init_from``, the W&B mode and
whether ``data.root`` exists.

A multirun (``-m``) is checked job by job (up to ``MOST_JOBS_CHECKED``, every swept value at least once)
before the first starts. The work is shared with ``gmaiqa.config_compose`` (composition and Hydra's errors)
and ``gmaiqa.config_keys`` (rules about keys); each command's own checks are its ``check`` in
``gmaiqa.commands``. Only ``gmaiqa.cli`` imports this module.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gmaiqa.config_compose import compose_command, first_job, hydra_error, known_keys, suggest_key
from gmaiqa.config_keys import (
    added_keys,
    check_added_key,
    check_interpolations,
    check_removed_keys,
    check_required,
    check_run_names,
    check_sweep_switches,
    check_switches,
    into_open_container,
)
from gmaiqa.errors import ConfigError
from gmaiqa.runs import check_not_held

# Hydra flags after which there is nothing to check (they print help and exit)
HELP_FLAGS = {"-h", "--help", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}
# flags that print the composed config: it is checked, the flag and its value are not overrides
SHOW_FLAGS = {"--cfg": 1, "-c": 1, "--package": 1, "-p": 1, "--resolve": 0}
MULTIRUN_FLAGS = {"-m", "--multirun"}


def check_run_dir_free(job: list[str]) -> None:
    """A second launch of a running job is refused before Hydra writes its .hydra/ and log there."""

    if not any(o.split("=", 1)[0].lstrip("+~") in ("run_id", "hydra.run.dir") for o in job):
        return  # the default run_id is new each launch (time + random suffix)
    run_dir = compose_command("train", job, with_hydra=True).hydra.run.dir
    check_not_held(Path(str(run_dir)))


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

    first_overrides = first_job(plain)
    try:
        first = compose_command(command, first_overrides, with_hydra=True)
    except (HydraException, OmegaConfBaseException) as exc:
        error = hydra_error(command, exc, plain)
        swept = [o for o in first_overrides if o not in plain]
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

    parser = OverridesParser.create()
    given = parser.parse_overrides(overrides)
    keys = {o.get_key_element() for o in given}
    params = OmegaConf.select(composed, "hydra.sweeper.params") or {}
    from_config = [f"{k}={v}" for k, v in params.items() if k not in keys]
    try:
        return BasicSweeper.split_arguments(parser.parse_overrides(from_config) + given, None)[0]
    except HydraException:
        return [first_job(overrides)]


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

    try:
        cfg = compose_command(command, job)
    except (HydraException, OmegaConfBaseException) as exc:
        raise hydra_error(command, exc, job) from None
    check_removed_keys(command, cfg, job)
    check_switches(command, cfg, job)
    check_required(command, cfg)
    check_interpolations(cfg)
    if command == "train":
        check_run_names(cfg)
        check_run_dir_free(job)
    known = known_keys(command, job)
    for key in added_keys(cfg, known | {"hydra"}):
        if key.startswith("hydra.") or key == "hydra" or into_open_container(key, known):
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
