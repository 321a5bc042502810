"""gmaiqa train: read top to bottom - data, model, task, trainer; fit each stage; test; finish.

A job runs ``stages`` in order (the paper's protocol is L0 -> L1, §3.4), each in its own sub-folder
of the run directory with its own checkpoint monitor; stage k+1 starts from stage k's best
checkpoint, the first from ``init_from`` when given. After the last stage the best checkpoint is
evaluated on the test groups and the run directory receives ``metrics.json`` and ``per_group.csv``.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from gmaiqa.checkpoints import init_weights_from
from gmaiqa.errors import ConfigError
from gmaiqa.reporting import print_metrics, write_per_group
from gmaiqa.tasks import FocusQualityTask


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except Exception:
        return None


def _loggers(cfg: DictConfig, stage_dir: Path, stage: str, group: str):
    loggers = []
    if cfg.logger.csv:
        from lightning.pytorch.loggers import CSVLogger

        loggers.append(CSVLogger(stage_dir, name="csv", version=""))
    if cfg.logger.wandb.enabled:
        from lightning.pytorch.loggers import WandbLogger

        w = cfg.logger.wandb
        loggers.append(WandbLogger(project=w.project, entity=w.entity, group=group, name=f"{group}/{stage}",
                                   save_dir=str(stage_dir), offline=w.mode == "offline", tags=list(w.tags or []),
                                   job_type=stage))
    return loggers


def run_stage(cfg: DictConfig, stage: DictConfig, run_dir: Path, init_from: str | None, datamodule) -> dict:
    stage_dir = run_dir / stage.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg["mask_attention_depth"] = int(stage.mask_attention_depth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if init_from else "default", UserWarning)  # init_from replaces ImageNet
        net = instantiate(model_cfg)
    if init_from:
        init_weights_from(net, init_from)
    group = cfg.run_name
    loggers = _loggers(cfg, stage_dir, stage.name, group)
    wandb_id = next((lg.experiment.id for lg in loggers if type(lg).__name__ == "WandbLogger"), None)
    meta = {
        "model": model_cfg,
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "inference": OmegaConf.to_container(cfg.inference, resolve=True),
        "stage": stage.name,
        "monitor": stage.monitor,
        "init_from": init_from,
        "wandb_run_id": wandb_id,
        "git_commit": git_commit(),
    }
    task = FocusQualityTask(
        net,
        loss=instantiate(cfg.task.loss),
        optimizer=instantiate(cfg.task.optimizer),
        lr_decay=cfg.task.lr_decay,
        inference=meta["inference"],
        meta=meta,
    )
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    checkpoint = ModelCheckpoint(dirpath=stage_dir / "checkpoints", filename="best-{epoch:03d}", monitor=stage.monitor,
                                 mode="min", save_last=True, save_top_k=1, auto_insert_metric_name=False)
    callbacks = [checkpoint]
    if loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    trainer = instantiate(cfg.trainer, max_epochs=stage.max_epochs, logger=loggers or False, callbacks=callbacks,
                          default_root_dir=str(stage_dir), use_distributed_sampler=False)
    for lg in loggers:
        lg.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True), "stage": stage.name, "git_commit": meta["git_commit"]})
    try:
        trainer.fit(task, datamodule=datamodule)
        best = checkpoint.best_model_path or checkpoint.last_model_path
        metrics = {}
        if cfg.evaluate:
            trainer.test(task, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            metrics = {k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
            metrics["groups"] = int(metrics.get("groups", 0))
            (stage_dir / "metrics.json").write_text(json.dumps({"stage": stage.name, "checkpoint": best, **metrics}, indent=1))
            write_per_group(stage_dir / "per_group.csv", task.group_results["test"])
            from gmaiqa.callbacks.wandb_reports import log_evaluation

            log_evaluation(loggers, task.group_results["test"], metrics, prefix="test")
        return {"stage": stage.name, "checkpoint": best, "metrics": metrics, "dir": str(stage_dir)}
    finally:
        for lg in loggers:
            if type(lg).__name__ == "WandbLogger":
                import wandb

                wandb.finish()


def train(cfg: DictConfig) -> dict:
    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    stages = list(cfg.stages)
    if not stages:
        raise ConfigError("stages", "no training stage", "list at least one stage (see conf/train.yaml)")
    init_from = cfg.init_from
    if stages[0].get("requires_init", False) and not init_from:
        raise ConfigError("init_from", f"stage {stages[0].name} starts from earlier weights (the paper's two-stage training)",
                          "pass init_from=PATH/TO/L0.ckpt, or run the whole protocol with experiment=gmanet_paper")
    datamodule = instantiate(cfg.data)
    results = []
    for stage in stages:
        result = run_stage(cfg, stage, run_dir, init_from, datamodule)
        results.append(result)
        init_from = result["checkpoint"]
    final = results[-1]
    summary = {"run_dir": str(run_dir), "stages": results, "checkpoint": final["checkpoint"], **final["metrics"]}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    if cfg.evaluate:
        import shutil

        shutil.copy(Path(final["dir"]) / "per_group.csv", run_dir / "per_group.csv")
        for result in results:
            print_metrics(f"{result['stage']}: test groups", result["metrics"])
    print(f"run directory: {run_dir}")
    return summary
