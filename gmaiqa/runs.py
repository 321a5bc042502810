"""A job's run directory: holding it (one writer at a time), claiming it (or finding it already
finished), what it records about the job (overrides, seed, commit, package versions) and its name in
W&B. ``resume=auto`` (the default) makes a relaunch idempotent: a finished job is skipped;
``resume=never`` refuses a used directory."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import shutil
import socket
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gmaiqa.errors import ConfigError, GmaiqaError
from gmaiqa.job import DONE, FAILED, JOB, RUNTIME_OVERRIDES
from gmaiqa.ranks import is_rank_zero

RESUME_MODES = ("auto", "never")
LOCK = ".gmaiqa.lock"  # held by the launch that writes the folder; says who (PID, host, start)
INTERRUPTED = "interrupted.json"  # a signal stopped the job (signal, stage, epoch, step); a relaunch resumes


class RunDirInUse(GmaiqaError):
    pass


@contextlib.contextmanager
def holding(run_dir: Path):
    """Hold ``run_dir`` for this launch: a second launch of the same job (same ``run_id``) is refused
    while this one runs, naming it; a lock left by a launch whose process is gone (killed, crashed: the
    kernel releases an ``flock`` with its process) is taken over, with a message. Rank 0 holds it for
    every rank of a DDP job."""
    if not is_rank_zero():
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (gmaiqa trains on Linux clusters)
        yield
        return

    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    _lock_or_refuse(fd, run_dir)
    earlier = _holder(fd)
    if earlier:
        print(f"{run_dir}: took over the lock of an earlier launch that is gone ({earlier})")
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    try:
        yield
    finally:
        os.ftruncate(fd, 0)  # a clean release leaves nothing to take over
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _lock_or_refuse(fd: int, run_dir: Path) -> None:
    # here, not at import: POSIX only
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunDirInUse(
            f"{run_dir} is being written by another launch of this job ({holder}); wait for it to finish "
            "(a relaunch afterwards skips or resumes it), or give this launch its own run_id"
        ) from None


def check_not_held(run_dir: Path) -> None:
    """Refuse, before Hydra creates anything in it, a folder another launch holds (``holding``); creates
    nothing. ``holding`` still decides: a launch may start between this probe and the hold."""
    if not is_rank_zero():
        return  # a DDP rank started by rank 0, which holds the folder for it
    try:
        import fcntl
    except ImportError:
        return
    try:
        fd = os.open(run_dir / LOCK, os.O_RDWR)
    except OSError:  # no lock file (a new folder) or one we cannot open: holding() will say
        return
    _lock_or_refuse(fd, run_dir)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _holder(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return ""
    if not isinstance(record, dict):
        return ""
    return f"PID {record.get('pid')} on {record.get('host')}, since {record.get('started')}"


PACKAGES = (
    "torch",
    "torchvision",
    "lightning",
    "hydra-core",
    "omegaconf",
    "torchmetrics",
    "albumentations",
    "numpy",
    "wandb",
    "gmaiqa",
)


def _git(*args: str) -> str | None:
    """The output of a git command run in gmaiqa's checkout; None outside one or when git fails."""
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout if out.returncode == 0 else None
    except Exception:
        return None


def git_commit() -> str | None:
    """The checkout's commit; in a copy without its .git (a lent GPU machine, a container), the one the
    copy was made from, as GMAIQA_GIT_COMMIT states it (experiments/default-model/gpu.sh)."""
    return (_git("rev-parse", "HEAD") or "").strip() or os.environ.get("GMAIQA_GIT_COMMIT") or None


def git_dirty() -> bool | None:
    """Whether the checkout differs from its commit (then the commit alone does not reproduce a run)."""
    status = _git("status", "--porcelain")
    return None if status is None else bool(status.strip())


@functools.cache
def environment() -> dict:
    """What a reader needs to reproduce the run: commit, package versions, Python, platform, devices
    (a fact of the process: computed once, recorded in job.json, W&B and every checkpoint)."""

    # here, not at import: loads torch only when this runs
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }


def job_overrides() -> list[str] | None:
    """This job's command-line overrides (sweep values included) that decide what it computes."""

    if not HydraConfig.initialized():
        return None
    return sorted(
        o.lstrip("+~")
        for o in HydraConfig.get().overrides.task
        if not o.lstrip("+~").startswith(RUNTIME_OVERRIDES)
    )


def claim_run_dir(cfg: DictConfig, run_dir: Path) -> dict | None:
    """Make ``run_dir`` this job's, or find it already is. Returns the finished job's summary when
    there is nothing left to do."""
    if cfg.resume not in RESUME_MODES:
        raise ConfigError("resume", f"unknown mode {cfg.resume!r}", f"use one of {list(RESUME_MODES)}")
    job_file = run_dir / JOB
    overrides = job_overrides()
    if job_file.is_file():
        if cfg.resume == "never":
            raise ConfigError(
                "resume",
                f"{run_dir} already holds a job",
                "use resume=auto to continue or skip it, or another run_id / hydra.sweep.dir",
            )
        earlier = json.loads(job_file.read_text()).get("overrides")
        if overrides is not None and earlier is not None and earlier != overrides:
            raise ConfigError(
                "resume",
                f"{run_dir} holds a different job (its overrides {earlier}, now {overrides})",
                "relaunch with the same overrides, or give this job its own run_id / hydra.sweep.dir",
            )
        if (run_dir / DONE).is_file():
            return json.loads((run_dir / DONE).read_text())
        if is_rank_zero():
            (run_dir / FAILED).unlink(missing_ok=True)
            (run_dir / INTERRUPTED).unlink(missing_ok=True)
        return None
    if is_rank_zero():
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "overrides": overrides,
            "seed": int(cfg.seed),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **environment(),
        }
        (run_dir / JOB).write_text(json.dumps(record, indent=1))
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return None


def mark_failed(run_dir: Path, error: Exception, record: dict | None = None) -> None:
    """A job that stopped on bad input or a run-time failure says so in its folder (``summarize`` leaves
    it out, naming the error); a later relaunch that gets further replaces the marker. On a full disk
    the marker may not fit either: the message on stderr is then the record."""
    if is_rank_zero() and (run_dir / JOB).is_file() and not (run_dir / DONE).is_file():
        entry = {"error": str(error), **(record or {}), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with contextlib.suppress(OSError):
            (run_dir / FAILED).write_text(json.dumps(entry, indent=1))


def mark_interrupted(run_dir: Path, record: dict) -> None:
    """``interrupted.json``: which signal stopped the job, and where (stage, epoch, step)."""
    if is_rank_zero() and run_dir.is_dir():
        entry = {**record, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with contextlib.suppress(OSError):
            (run_dir / INTERRUPTED).write_text(json.dumps(entry, indent=1))


def withdraw(run_dir: Path, stages: list[str], output_root: Path | None = None) -> bool:
    """Remove what this launch created in ``run_dir`` when its command line was refused before any
    stage ran (``init_from`` of an exported model, ``data.batch_size=0``): a refused job leaves no folder
    that would then block the corrected relaunch ("holds a different job"). Only the files gmaiqa and
    Hydra write there are removed; the folder goes only once empty, and so do its parents below
    ``output_root`` (``output_root/run_name``, which Hydra made for it), each only once empty. Returns
    whether ``run_dir`` went."""

    if not is_rank_zero() or any((run_dir / s).exists() for s in stages):
        return False

    log = [f"{HydraConfig.get().job.name}.log"] if HydraConfig.initialized() else []
    for name in (JOB, "config.yaml", FAILED, LOCK, ".hydra", *log):
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError:
        return False
    if output_root is not None and run_dir.resolve().is_relative_to(Path(output_root).resolve()):
        root = Path(output_root).resolve()
        for parent in run_dir.resolve().parents:
            if parent == root:
                break
            try:
                parent.rmdir()
            except OSError:  # not empty: another job's runs, a multirun's own files
                break
    return True


def job_label(cfg: DictConfig, run_dir: Path) -> str:
    """The job's name in W&B (its group; stages and the evaluation are runs in it): the run directory
    relative to paths.output_root, e.g. ``ablation_backbone-multirun/2026-11-22_10-00-00-1a2b3c/3``."""
    try:
        return str(run_dir.resolve().relative_to(Path(cfg.paths.output_root).resolve()))
    except ValueError:
        return f"{cfg.run_name}/{run_dir.name}"
