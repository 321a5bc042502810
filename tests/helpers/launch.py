"""Launching a training job as its own process (its own session, so a signal to the group reaches every
rank, as a scheduler's does), stalling it at a step, and reading what it left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.tiny import LIGHT_GMANET, tiny_data

HELPERS = Path(__file__).parent


def job_overrides(root: Path) -> list[str]:
    """GMANet L0 (light trunk) on ``root`` for two tiny epochs, ``last.ckpt`` every step, and the stall
    callback."""
    return [
        "experiment=gmanet_l0",
        *tiny_data(root),
        *LIGHT_GMANET,
        "stages.0.max_epochs=2",
        "checkpoint.every_n_train_steps=1",
        "+callbacks.stall._target_=stall.StallAtStep",
    ]


def two_seed_sweep(root: Path, output_root: Path) -> list[str]:
    """A two-job multirun (seeds 0 and 1) in ``output_root/.../sweep``, each job as ``job_overrides``."""
    return [
        "-m",
        "seed=0,1",
        "logger=none",
        f"paths.output_root={output_root}",
        "run_id=sweep",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        *job_overrides(root),
    ]


def launch(
    args: list[str],
    stall_at: int | None = None,
    marker: Path | None = None,
    seed: int | None = None,
    env_extra: dict | None = None,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")]),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }
    # WANDB_SERVICE: set once this pytest process has used W&B; a relaunch from a fresh shell has its own
    # service, a shared one would still hold the killed attempt's run id
    for key in ("GMAIQA_TEST_STALL_AT", "GMAIQA_TEST_STALL_SEED", "WANDB_SERVICE"):
        env.pop(key, None)
    if stall_at is not None:
        env.update(GMAIQA_TEST_STALL_AT=str(stall_at), GMAIQA_TEST_STALL_MARKER=str(marker))
    if seed is not None:
        env["GMAIQA_TEST_STALL_SEED"] = str(seed)
    env.update(env_extra or {})
    # a session of its own: SIGKILL to the group takes every rank down at once, as a pre-emption does
    return subprocess.Popen(
        [sys.executable, "-m", "gmaiqa.cli", "train", *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 400) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def kill_when(
    proc: subprocess.Popen, marker: Path, timeout: float = 300, signum: int = signal.SIGKILL
) -> None:
    deadline = time.time() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the job ended before it stalled:\n{proc.stdout.read()[-4000:]}")
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the job never reached the stall step")
        time.sleep(0.2)
    time.sleep(0.5)  # let every rank reach the stall
    os.killpg(proc.pid, signum)
    proc.wait(timeout=120)


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def finish_code(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out
