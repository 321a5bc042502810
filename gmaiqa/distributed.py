"""Multi-process training that works from the ``gmaiqa`` command, alone and inside a Hydra multirun.

Lightning's DDP starts ranks 1..N-1 by re-running the current script with ``sys.argv``. That breaks
for us in two ways: ``sys.argv`` of a console script is not re-runnable under Hydra, and inside a
multirun it would hold ``-m`` and the whole sweep, so every rank would start the sweep again. The
:class:`JobDDPStrategy` starts the other ranks with *this job's* overrides, in this job's directory::

    python -m gmaiqa.cli train <job overrides> hydra.run.dir=<job dir> hydra.output_subdir=null

and :func:`job_scope` puts the process back as it was after the job (process group destroyed, the
rendezvous variables Lightning set removed, child ranks reaped), so the next job of a multirun
launches its own ranks on a fresh port.

Several machines: run the same command on each node with ``NODE_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` set (or under SLURM, where submitit/srun set them), and ``trainer.num_nodes=N``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from gmaiqa.ranks import is_rank_zero  # noqa: F401  (defined where the precheck can read it without Lightning)

_RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "PL_GLOBAL_SEED")
_children: list[subprocess.Popen] = []


def job_command(local_rank: int) -> list[str]:
    """The command line that runs this Hydra job again as another rank."""

    hydra_cfg = HydraConfig.get()
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith("hydra.run.dir=")]
    # a user's own config groups (--config-dir DIR, or hydra.searchpath=...) compose this job too: Hydra
    # keeps the first among its config sources and the second among its own overrides, not the job's
    config_dirs = [
        f"--config-dir={source.path}"
        for source in hydra_cfg.runtime.config_sources
        if source.provider == "command-line"
    ]
    searchpath = [o for o in hydra_cfg.overrides.hydra if o.startswith("hydra.searchpath=")]
    return [
        sys.executable,
        "-m",
        "gmaiqa.cli",
        "train",
        *config_dirs,
        *searchpath,
        *overrides,
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        "hydra.output_subdir=null",
        f"hydra.job.name=rank{local_rank}",
    ]


class JobScriptLauncher(_SubprocessScriptLauncher):
    def _call_children_scripts(self) -> None:
        self._check_can_spawn_children()
        env = self.cluster_environment
        os.environ["MASTER_ADDR"] = env.main_address
        os.environ["MASTER_PORT"] = str(env.main_port)
        os.environ["NODE_RANK"] = str(env.node_rank())
        os.environ["LOCAL_RANK"] = str(env.local_rank())
        os.environ["WORLD_SIZE"] = str(self.num_processes * self.num_nodes)
        self.procs = []
        for local_rank in range(1, self.num_processes):
            child_env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            proc = subprocess.Popen(job_command(local_rank), env=child_env, cwd=os.getcwd())
            self.procs.append(proc)
            _children.append(proc)


class JobDDPStrategy(DDPStrategy):
    """Lightning DDP whose extra ranks re-run this Hydra job (see the module docstring)."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if isinstance(self._launcher, _SubprocessScriptLauncher):
            self._launcher = JobScriptLauncher(self.cluster_environment, self.num_processes, self.num_nodes)


@contextlib.contextmanager
def job_scope() -> Iterator[None]:
    """Everything a DDP job changes in the launching process is undone when the job ends."""
    saved = {key: os.environ.get(key) for key in _RENDEZVOUS}
    launched_here = "LOCAL_RANK" not in os.environ
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        if launched_here:
            # here, not at import: loads torch only when this runs
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
            while _children:
                proc = _children.pop()
                if failed:  # the other ranks would wait in a collective for rank 0 until the timeout
                    proc.kill()
                try:
                    proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def gather_rows(rows: list[dict], world_size: int, key: Callable[[dict], object] | None = None) -> list[dict]:
    """The evaluation rows of every rank (each scored its share), on every rank; sorted by ``key`` when
    given, so that a table does not depend on how the rows were shared out."""
    if world_size > 1:
        # here, not at import: loads torch only when this runs
        import torch.distributed as dist

        shares: list[list[dict]] = [[] for _ in range(world_size)]
        dist.all_gather_object(shares, rows)
        rows = [row for share in shares for row in share]
    return sorted(rows, key=key) if key is not None else rows
