"""gmaiqa train [experiment=NAME|sweep=NAME] [key=value ...] [-m]: see ``gmaiqa.train``."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gmaiqa.commands.scoring import check_dataset_root
from gmaiqa.data.dataset_root import synthetic_configs
from gmaiqa.errors import ConfigError, Preempted, instantiate
from gmaiqa.tasks.optimizer import check_task_settings
from gmaiqa.trainer_settings import check_trainer


def run(cfg: DictConfig) -> tuple[int, float | None]:
    """Exit status 0 and the job's objective for a sweeper that optimises (Optuna): the final stage's
    selected validation value, in the direction of its selection rule."""
    from gmaiqa.train import train  # here, not at import: the precheck imports this module for check()

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

    named = False
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return "the line below says how to finish the sweep"
    if HydraConfig.initialized():
        given = [*HydraConfig.get().overrides.task, *HydraConfig.get().overrides.hydra]
        named = any(o.startswith(("run_id=", "hydra.run.dir=", "hydra.sweep.dir=")) for o in given)
    if named:
        return "relaunch the same command to resume"
    return f"relaunch the same command with run_id={run_dir.name} to resume"


def check_sweep(cfg: DictConfig) -> None:
    """An optimising sweeper (Optuna, ``sweep=search``) reads each job's objective, the final stage's
    selected validation value: it must minimise what that selection minimises (and maximise what it
    maximises), or the search would chase the worst checkpoints."""
    sweeper = OmegaConf.select(cfg, "hydra.sweeper") or {}
    direction = sweeper.get("direction") if "optuna" in str(sweeper.get("_target_", "")) else None
    if direction is None or not cfg.get("stages"):
        return
    rule = cfg.stages[-1].selection
    wanted = "minimize" if rule.get("mode", "min") == "min" else "maximize"
    if direction != wanted:
        raise ConfigError(
            "hydra.sweeper.direction",
            f"{direction}, but the final stage keeps the epoch of {rule.get('mode')} {rule.monitor}",
            f"use hydra.sweeper.direction={wanted}",
        )


def check(cfg: DictConfig) -> None:
    """What train can check before its run folder exists (nothing here reads images); the cheapest
    first, so a wrong data.root is reported before Lightning is imported."""

    # first the light checks, before anything imports torch or Lightning
    check_trainer(cfg.trainer)
    check_task_settings(cfg.task, "task")
    for i, stage in enumerate(cfg.stages or []):
        if stage.get("task"):
            check_task_settings(stage.task, f"stages.{i}.task")
    check_dataset_root("data.root", cfg.data.get("root"))
    stacks = str(cfg.data.get("_target_", "")).endswith(".FocusStackDataModule")
    if stacks and cfg.data.get("root") is None and cfg.data.get("synthetic"):
        synthetic_configs(cfg.data.synthetic)  # before the run folder, not when the data is made
    stages = list(cfg.stages or [])
    if not stages:
        raise ConfigError("stages", "no training stage", "list at least one stage (see conf/train.yaml)")
    # here, not at import: loads torch, lightning, torchvision only when this runs
    from gmaiqa.callbacks.weight_averaging import check_one_weight_averaging
    from gmaiqa.checkpoints import resolve_init_from
    from gmaiqa.stages import check_requires_init, stage_model, stage_rules, stage_task
    from gmaiqa.tasks.distillation import check_distillation, distill_key

    stage_rules(stages)
    check_one_weight_averaging(cfg)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    for stage in stages:
        check_distillation(
            stage_task(cfg, stage), {"data": data, "model": stage_model(cfg, stage)}, distill_key(cfg, stage)
        )
    init_from = resolve_init_from(cfg.init_from, int(cfg.seed))
    check_requires_init(stages, init_from)
    if init_from:
        # here, not at import: loads torch only when this runs
        from gmaiqa.exported import exported_format

        fmt = exported_format(init_from)
        if fmt in ("onnx", "torchscript"):
            raise ConfigError(
                "init_from",
                f"{init_from} is an exported {fmt} model (a graph, no trainable weights)",
                "start from the .ckpt it was exported from, or a file `gmaiqa export format=weights` wrote",
            )
    model = cfg.get("model")
    if isinstance(model, DictConfig) and model.get("family"):
        # here, not at import: loads torch, torchvision only when this runs
        from gmaiqa.models.registry import get_family

        get_family(str(model.family), key="model.family")  # an unknown family, with its suggestion

    instantiate(
        cfg.data
    )  # the data module checks its own arguments (batch size, sizes, choices); reads nothing
