"""``gmaiqa <command> [key=value ...]``: one Hydra app per command, configured by ``conf/<command>.yaml``.

User errors (bad data, bad config) print one clear message and exit with status 2; a dataset that
fails ``check`` exits with status 1.
"""

from __future__ import annotations

import importlib
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gmaiqa.config_check import precheck
from gmaiqa.errors import GmaiqaError, Preempted, RunFailed, did_you_mean
from gmaiqa.paths import conf_dir
from gmaiqa.quiet import ignore_known_warnings, quiet_third_party
from gmaiqa.schemas import register

USAGE = """usage: gmaiqa <command> [key=value ...] [-m]

commands:
  synth      write a synthetic z-stack dataset
             gmaiqa synth out=DIR preset=feces|blood|leucorrhea|dense|fluorescence|reflected groups=N
  check      validate a dataset (folders, manifest.csv or TIFF stack files) and summarise it
             gmaiqa check root=DIR [channel=NAME]
  train      train GMANet (L0 -> L1 by default)
             gmaiqa train [experiment=NAME] [key=value ...] [-m]
  eval       evaluate a checkpoint (t0, t1, acc, SROCC)
             gmaiqa eval ckpt=PATH data.root=DIR out=DIR
  predict    score images, pick the clearest per group
             gmaiqa predict ckpt=PATH input=DIR out=DIR
  benchmark  compare focus measures and checkpoints
             gmaiqa benchmark data.root=DIR methods=[TENG,LMG,ckpt:PATH] out=DIR
  export     a checkpoint's Output1 as ONNX or TorchScript
             gmaiqa export ckpt=PATH out=FILE format=onnx|torchscript
  summarize  Table 1 of a multirun (mean ± std)
             gmaiqa summarize DIR [logger.wandb.mode=offline|online|disabled]
  report     one document for a study of multirun folders (HTML, or a W&B Report)
             gmaiqa report DIR [DIR ...] [title=TEXT] [out=DIR] [mode=offline|online]

Every command takes Hydra overrides (key=value); `gmaiqa <command> --help` and
`gmaiqa <command> --cfg job` show its configuration.
"""


# command -> "module:function"; imported only when that command runs, so `gmaiqa check` stays light
COMMANDS = (
    "synth",
    "check",
    "train",
    "eval",
    "predict",
    "benchmark",
    "export",
    "summarize",
    "report",
    "autofocus",
)


def _command(name: str) -> Callable[[DictConfig], int]:
    """``gmaiqa.commands.<name>.run``: every command is a thin entry there returning an exit status."""

    return importlib.import_module(f"gmaiqa.commands.{name}").run


def _register_resolvers() -> None:

    register()  # the typed schemas the YAML names in its defaults (gmaiqa.schemas)
    if not OmegaConf.has_resolver("uid"):
        # a random suffix: two jobs started in the same second still get their own run directory
        OmegaConf.register_new_resolver("uid", lambda: secrets.token_hex(3), use_cache=True)


# at import too: joblib workers of a parallel multirun import this module before composing their job
_register_resolvers()


def print_unfinished_jobs() -> None:
    """In a multirun stopped by a signal: which jobs did not finish, and how to run only them."""

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    hydra_cfg = HydraConfig.get()
    num, total = int(hydra_cfg.job.num), _sweep_size.get("jobs")
    left = f"jobs {num} to {total - 1} of 0..{total - 1}" if total else f"job {num} and those after it"
    sweep = Path(hydra_cfg.sweep.dir)
    print(
        f"gmaiqa: the sweep stopped; {left} did not finish. Relaunch the same command with "
        f"run_id={sweep.name} to run only them (finished jobs are skipped, the stopped one resumes)",
        file=sys.stderr,
    )


_sweep_size: dict[str, int] = {}


def run_command(command: str, overrides: list[str]) -> int:
    """Run one command through Hydra (config composition, overrides, -m multirun)."""

    _register_resolvers()
    try:
        _sweep_size["jobs"] = precheck(command, overrides)
    except GmaiqaError as exc:
        print(f"gmaiqa {command}: error: {exc}", file=sys.stderr)
        return 2
    status = {"code": 0}

    @hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=command)
    def app(cfg: DictConfig) -> float | None:

        if command == "train":
            # Lightning adds its own console handler when first imported: in a multirun that is inside
            # the first job, after this point, and its lines (and adverts) showed twice (issue 19 notes)
            import lightning.pytorch  # noqa: F401
        quiet_third_party()
        objective = None
        try:
            result = _command(command)(cfg)
            # a command may also give an objective, which an optimising sweeper (Optuna) reads
            code, objective = result if isinstance(result, tuple) else (result, None)
        except GmaiqaError as exc:
            print(f"gmaiqa {command}: error: {exc}", file=sys.stderr)
            code = 2
        except RunFailed as exc:  # went wrong while running: the run folder's failed.json has it too
            print(f"gmaiqa {command}: failed: {exc}", file=sys.stderr)
            code = exc.exit_status
        except Preempted as exc:
            # SystemExit, so that a sweep stops too: the scheduler wants the whole process gone
            print(f"gmaiqa {command}: {exc}; {exc.hint}".rstrip("; "), file=sys.stderr)
            print_unfinished_jobs()
            raise SystemExit(exc.exit_status) from None
        except KeyboardInterrupt:
            # Ctrl-C: one line instead of a traceback and the conventional 128 + SIGINT; what the command
            # was writing was under a temporary name and is gone (gmaiqa.outputs). SystemExit, so a
            # sweep stops too rather than starting its next job
            print(f"gmaiqa {command}: interrupted; files it had not finished were removed", file=sys.stderr)
            raise SystemExit(130) from None
        # a multirun runs every job; it exits with the worst status so scripts notice a failed job
        status["code"] = max(status["code"], int(code))
        return objective

    ignore_known_warnings()  # some arrive while Hydra starts its sweeper, before the job runs
    saved = sys.argv
    # Hydra's parser takes overrides only after its flags: `gmaiqa train a=1 -m b=1,2` lost b=1,2
    flags = [o for o in overrides if o in ("-m", "--multirun")]
    sys.argv = [f"gmaiqa-{command}", *flags, *(o for o in overrides if o not in flags)]
    try:
        app()
    finally:
        sys.argv = saved
        # Hydra leaves its config of the finished app set process-wide; a job composed in-process later
        # (a notebook, a test) would read that app's overrides as its own (gmaiqa.runs.job_overrides)

        HydraConfig.instance().cfg = None
    return status["code"]


def hydra_value(path: str) -> str:
    """A folder named on the command line as a Hydra override value: quoted unless plainly a path."""
    return path if re.fullmatch(r"[\w./:~+-]+", path) else repr(path)


def summarize_arguments(args: list[str]) -> list[str]:
    """``gmaiqa summarize DIR [--wandb MODE] [--project NAME]`` as Hydra overrides (``dir=DIR``,
    ``logger.wandb.mode=MODE``); the two flags are the earlier release's and say so."""
    out, rest = [], list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("--wandb", "--project") and rest:
            key = {"--wandb": "logger.wandb.mode", "--project": "logger.wandb.project"}[arg]
            print(
                f"gmaiqa summarize: {arg} is deprecated and will be removed in the next release: "
                f"use {key}={rest[0]}",
                file=sys.stderr,
            )
            out.append(f"{key}={rest.pop(0)}")
        elif arg.startswith("-") or "=" in arg:
            out.append(arg)
        else:
            out.append("dir=" + hydra_value(arg))
    return out


def free_text(arg: str, key: str) -> str:
    """``key=any text`` as a Hydra override: the value quoted unless the user quoted it already."""
    value = arg.removeprefix(f"{key}=")
    if value == arg or value[:1] in ("'", '"'):
        return arg
    return f"{key}={hydra_value(value)}"


def report_arguments(args: list[str]) -> list[str]:
    """``gmaiqa report DIR [DIR ...] [key=value ...]``: the folders become ``dirs=[...]``, and a title is
    free text (``title="Attention maps (round 2)"`` reaches us unquoted: Hydra would refuse it)."""
    folders = [a for a in args if "=" not in a and not a.startswith("-")]
    rest = [free_text(a, "title") for a in args if a not in folders]
    if not folders:
        return rest
    quoted = ",".join(hydra_value(f) for f in folders)
    return [f"dirs=[{quoted}]", *rest]


def command_help(command: str) -> str:
    """``gmaiqa <command> --help``: the command's own keys with their comments (its ``conf/<command>.yaml``)
    and, for train, the option of every config group - not Hydra's generic help."""

    conf = conf_dir()
    lines = (conf / f"{command}.yaml").read_text().splitlines()
    body, skipping = [], False
    for line in lines:
        if line.startswith("defaults:"):
            skipping = True
            continue
        if skipping and (line.startswith("  -") or not line.strip()):
            continue
        skipping = False
        body.append(line)
    text = [f"gmaiqa {command} [key=value ...]" + (" [-m]" if command == "train" else ""), "", *body]
    if command == "train":
        groups = sorted(p for p in conf.iterdir() if p.is_dir() and p.name not in ("hydra",))
        text += ["", "config groups (group=option; `gmaiqa train --cfg job` prints the composed config):"]
        for group in groups:
            options = sorted(f.stem for f in group.glob("*.yaml"))
            subgroups = sorted(d.name for d in group.iterdir() if d.is_dir())
            extra = f"   (and {', '.join(f'{group.name}/{d}' for d in subgroups)})" if subgroups else ""
            text.append(f"  {group.name:<14} {', '.join(options)}{extra}")
    text += ["", "Hydra's own flags: --cfg job|hydra|all, --resolve, --info, --hydra-help"]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "summarize":
        rest = summarize_arguments(rest)
    elif command == "report":
        rest = report_arguments(rest)
    if command not in COMMANDS:
        hint = did_you_mean(command, COMMANDS, quote="`", prefix="gmaiqa ")
        print(f"gmaiqa: unknown command {command!r}{hint}\n\n{USAGE}", file=sys.stderr)
        return 2
    if any(arg in ("-h", "--help") for arg in rest):
        print(command_help(command))
        return 0
    return run_command(command, rest)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
