"""gmaiqa train [experiment=NAME|sweep=NAME] [key=value ...] [-m]: see ``gmaiqa.train``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from gmaiqa.errors import Preempted
from gmaiqa.train import train


def run(cfg: DictConfig) -> tuple[int, float | None]:
    """Exit status 0 and the job's objective for a sweeper that optimises (Optuna): the final stage's
    selected validation value, in the direction of its selection rule."""
    try:
        summary = train(cfg)
    except Preempted as exc:
        run_dir = Path(cfg.paths.run_dir)
        exc.hint = f"last.ckpt saved; {run_dir / 'interrupted.json'} says where - " + resume_advice(run_dir)
        raise
    stages = summary.get("stages") or []
    value = (stages[-1].get("selection") or {}).get("value") if stages else None
    return 0, float(value) if value is not None else None


def resume_advice(run_dir: Path) -> str:
    """How to run the same job again: the same command names the same folder when it gave ``run_id``
    (or Hydra's folder) itself; otherwise the generated ``run_id`` must be added."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    named = False
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return "the line below says how to finish the sweep"
    if HydraConfig.initialized():
        given = [*HydraConfig.get().overrides.task, *HydraConfig.get().overrides.hydra]
        named = any(o.startswith(("run_id=", "hydra.run.dir=", "hydra.sweep.dir=")) for o in given)
    if named:
        return "relaunch the same command to resume"
    return f"relaunch the same command with run_id={run_dir.name} to resume"
