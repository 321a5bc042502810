"""gmaiqa train: read top to bottom - claim the run directory, then per stage: data, model, task,
trainer; fit; test. Then the cross-dataset evaluations and the done marker.

A job runs ``stages`` in order (the paper's protocol is L0 -> L1, §3.4), each in its own sub-folder
of the run directory with its own checkpoint monitor; stage k+1 starts from stage k's best
checkpoint, the first from ``init_from`` when given. After each stage its best checkpoint is
evaluated on the test groups, and on every dataset of ``eval_datasets`` without further training
(the paper's Table 1 columns).

Files of a run directory (every one written by rank 0 only)::

    job.json          the job's overrides, seed, git commit, package versions (written once)
    config.yaml       the resolved configuration
    <stage>/checkpoints/best-EEE.ckpt, last.ckpt     (both written atomically)
    <stage>/done.json                                 the stage finished: checkpoint + test metrics
    <stage>/metrics.json, per_group.csv, csv/, wandb/
    <stage>/eval/<dataset>/metrics.json, per_group.csv
    metrics.json, per_group.csv                       the last stage's figures
    done.json                                         the job finished (with its final figures)

``resume=auto`` (the default) makes a relaunch idempotent: a finished job is skipped, a finished
stage is not trained again, an unfinished stage continues from ``last.ckpt`` (weights, optimiser,
LR schedule, epoch and step, sampler position, random state) under the same W&B run id.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from gmaiqa.checkpoints import init_weights_from, resolve_init_from
from gmaiqa.distributed import is_rank_zero, job_scope
from gmaiqa.errors import ConfigError
from gmaiqa.job import DONE, JOB, RUNTIME_OVERRIDES
from gmaiqa.reporting import print_metrics, write_per_group

RESUME_MODES = ("auto", "never")
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


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except Exception:
        return None


@functools.cache
def environment() -> dict:
    """What a reader needs to reproduce the run: commit, package versions, Python, platform, devices
    (a fact of the process: computed once, recorded in job.json, W&B and every checkpoint)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }


def job_overrides() -> list[str] | None:
    """This job's command-line overrides (sweep values included) that decide what it computes."""
    from hydra.core.hydra_config import HydraConfig

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


def job_label(cfg: DictConfig, run_dir: Path) -> str:
    """The job's name in W&B (its group; stages and the evaluation are runs in it): the run directory
    relative to paths.output_root, e.g. ``ablation_backbone-multirun/2026-11-22_10-00-00-1a2b3c/3``."""
    try:
        return str(run_dir.resolve().relative_to(Path(cfg.paths.output_root).resolve()))
    except ValueError:
        return f"{cfg.run_name}/{run_dir.name}"


WANDB_MODES = ("offline", "online", "disabled")


def wandb_active(cfg: DictConfig) -> bool:
    """logger.wandb.enabled and a mode other than disabled (W&B's own word for off)."""
    w = cfg.logger.wandb
    if w.mode not in WANDB_MODES:
        raise ConfigError("logger.wandb.mode", f"unknown mode {w.mode!r}", f"use one of {list(WANDB_MODES)}")
    return bool(w.enabled) and w.mode != "disabled"


def _loggers(cfg: DictConfig, stage_dir: Path, stage: str, group: str, resuming: bool):
    loggers = []
    if cfg.logger.csv:
        from lightning.pytorch.loggers import CSVLogger

        # a resumed stage logs beside the first attempt's metrics.csv (Lightning would delete it)
        version = f"resumed-{len(list((stage_dir / 'csv').glob('resumed-*')))}" if resuming else ""
        loggers.append(CSVLogger(stage_dir, name="csv", version=version))
    if wandb_active(cfg):
        from lightning.pytorch.loggers import WandbLogger

        w = cfg.logger.wandb
        id_file = stage_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        logger = WandbLogger(
            project=w.project,
            entity=w.entity,
            group=group,
            name=f"{group}/{stage}",
            save_dir=str(stage_dir),
            offline=w.mode == "offline",
            tags=[cfg.run_name, f"seed{cfg.seed}", *(w.tags or [])],
            job_type=stage,
            id=run_id,
            resume="allow" if run_id else None,
        )
        if is_rank_zero() and run_id is None:
            id_file.write_text(logger.experiment.id)
        loggers.append(logger)
    return loggers


def _callbacks(cfg: DictConfig, rule, stage_dir: Path, logging: bool):
    from lightning.pytorch.callbacks import LearningRateMonitor

    from gmaiqa.callbacks.checkpointing import RandomState, ResumeCheckpoint
    from gmaiqa.callbacks.data_epoch import DataEpoch
    from gmaiqa.callbacks.selection import SelectCheckpoint

    selector = SelectCheckpoint(stage_dir / "checkpoints", rule)
    # Lightning runs checkpoint callbacks last, in this order: last.ckpt already knows the new selection
    callbacks = [
        DataEpoch(),
        RandomState(),
        selector,
        ResumeCheckpoint(stage_dir / "checkpoints", cfg.checkpoint.every_n_train_steps),
    ]
    if logging:
        callbacks.insert(0, LearningRateMonitor(logging_interval="step"))
    for extra in (cfg.get("callbacks") or {}).values():
        if extra is not None:
            callbacks.append(instantiate(extra))
    return selector, callbacks


def stage_rules(stages) -> list:
    """Every stage's checkpoint selection rule, checked before anything runs."""
    from gmaiqa.callbacks.selection import rule_from_config

    return [rule_from_config(stage, f"stages.{i}.selection") for i, stage in enumerate(stages)]


def report_selection(stage: str, outcome: dict) -> None:
    if outcome["status"] == "fallback":
        print(
            f"stage {stage}: WARNING no epoch of {outcome['epochs_validated']} met the selection constraints "
            f"({outcome['rule_text']}); kept epoch {outcome['epoch']}, the best {outcome['rule']['monitor']} "
            "without them (selection: fallback)"
        )
    elif outcome["status"] == "none":
        print(f"stage {stage}: {outcome['rule']['monitor']} was never logged; kept the last checkpoint")
    else:
        print(
            f"stage {stage}: selected epoch {outcome['epoch']} ({outcome['rule_text']}; "
            f"{outcome['epochs_meeting_constraints']} of {outcome['epochs_validated']} epochs qualified)"
        )


def stage_model(cfg: DictConfig, stage: DictConfig) -> dict:
    """The job's model config with the stage's own overrides (``stages[i].model``: e.g. GMANet's
    ``mask_attention_depth``, 0 in L0 and 1 in L1, §3.4)."""
    overrides = OmegaConf.to_container(stage.model, resolve=True) if stage.get("model") else {}
    if stage.get("mask_attention_depth") is not None:  # the key before stages carried model overrides
        warnings.warn(
            f"stage {stage.name}: mask_attention_depth on a stage is deprecated and will be removed in the "
            "next release: use model: {mask_attention_depth: N} on the stage",
            FutureWarning,
            stacklevel=2,
        )
        overrides.setdefault("mask_attention_depth", int(stage.mask_attention_depth))
    model = OmegaConf.to_container(cfg.model, resolve=True)
    unknown = sorted(set(overrides) - set(model))
    if unknown:
        raise ConfigError(
            f"stages.{stage.name}.model.{unknown[0]}",
            f"the model ({model.get('_target_')}) has no such key",
            f"a stage may override the model's own keys: {sorted(k for k in model if not k.startswith('_'))}",
        )
    return {**model, **overrides}


def run_stage(
    cfg: DictConfig, stage: DictConfig, rule, run_dir: Path, init_from: str | None, datamodule
) -> dict:
    stage_dir = run_dir / stage.name
    if (stage_dir / DONE).is_file():
        result = json.loads((stage_dir / DONE).read_text())
        print(f"stage {stage.name}: finished earlier ({result['checkpoint']})")
        return result
    last = stage_dir / "checkpoints" / "last.ckpt"
    resume_from = str(last) if last.is_file() else None
    if is_rank_zero():
        stage_dir.mkdir(parents=True, exist_ok=True)
    model_cfg = stage_model(cfg, stage)
    with warnings.catch_warnings():
        # earlier weights (init_from or the checkpoint resumed) replace ImageNet's
        warnings.simplefilter("ignore" if init_from or resume_from else "default", UserWarning)
        net = instantiate(model_cfg)
    if init_from and not resume_from:
        init_weights_from(net, init_from)
    loggers = _loggers(cfg, stage_dir, stage.name, job_label(cfg, run_dir), resuming=resume_from is not None)
    wandb_id = next(
        (lg.experiment.id for lg in loggers if isinstance(lg, WandbLogger) and is_rank_zero()), None
    )
    meta = {
        "model": model_cfg,
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "inference": OmegaConf.to_container(cfg.inference, resolve=True),
        "stage": stage.name,
        "selection": rule.as_dict(),
        "init_from": init_from,
        "seed": int(cfg.seed),
        "wandb_run_id": wandb_id,
        "git_commit": environment()["git_commit"],
        "task": cfg.task._target_,
    }
    # conf/task/*.yaml: a partial LightningModule (loss, optimiser, ...) completed with the network
    task = instantiate(cfg.task)(net, inference=meta["inference"], meta=meta)
    selector, callbacks = _callbacks(cfg, rule, stage_dir, logging=bool(loggers))
    trainer = instantiate(
        cfg.trainer,
        max_epochs=stage.max_epochs,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(stage_dir),
        use_distributed_sampler=False,
    )
    if resume_from:
        print(f"stage {stage.name}: resuming from {resume_from}")
    else:
        for lg in loggers:
            lg.log_hyperparams(
                {
                    "config": OmegaConf.to_container(cfg, resolve=True),
                    "stage": stage.name,
                    "environment": environment(),
                }
            )
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from)
        # read before testing: restoring the selected checkpoint for the test also restores the selector's
        # state as it was when that checkpoint was written
        outcome, history = selector.outcome(), list(selector.history)
        checkpoint = outcome.get("checkpoint") or str(last)
        selection = {k: v for k, v in outcome.items() if k != "checkpoint"}
        if trainer.is_global_zero:
            report_selection(stage.name, outcome)
        metrics = {}
        if cfg.evaluate:
            trainer.test(task, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
            metrics = {
                k.split("/", 1)[1]: float(v)
                for k, v in trainer.callback_metrics.items()
                if k.startswith("test/")
            }
            if "groups" in metrics:
                metrics["groups"] = int(metrics["groups"])
        result = {
            "stage": stage.name,
            "checkpoint": checkpoint,
            "metrics": metrics,
            "dir": str(stage_dir),
            "wandb_run_id": wandb_id,
            "selection": {**selection, "history": history},
        }
        if trainer.is_global_zero:
            if cfg.evaluate:
                (stage_dir / "metrics.json").write_text(
                    json.dumps(
                        {"stage": stage.name, "checkpoint": checkpoint, **metrics, "selection": selection},
                        indent=1,
                    )
                )
                task.write_test_outputs(stage_dir, loggers, metrics)
            for lg in loggers:
                if isinstance(lg, WandbLogger):
                    lg.experiment.summary.update(
                        {
                            f"selection/{k}": v
                            for k, v in selection.items()
                            if k in ("status", "epoch", "value", "rule_text")
                        }
                    )
            (stage_dir / DONE).write_text(json.dumps(result, indent=1))
        return result
    finally:
        if any(isinstance(lg, WandbLogger) for lg in loggers):
            import wandb

            wandb.finish()


def eval_dataset_stacks(name: str, spec: DictConfig, cfg: DictConfig):
    from gmaiqa.data.datamodule import dataset_root
    from gmaiqa.scoring import labelled_stacks

    synthetic = OmegaConf.to_container(spec.synthetic, resolve=True) if spec.get("synthetic") else None
    if spec.get("root") is None and not synthetic:
        raise ConfigError(
            f"eval_datasets.{name}", "neither root nor synthetic is set", f"set eval_datasets.{name}.root=DIR"
        )
    root = dataset_root(spec.get("root"), synthetic, cfg.paths.cache_dir)
    split_ratios = spec.get("split_ratios") or cfg.data.split_ratios
    split_seed = cfg.data.get("split_seed", cfg.seed)  # a split of another set is drawn as the training set's
    return labelled_stacks(
        root, spec.get("validate", "full"), spec.get("split", "all"), split_ratios, int(split_seed)
    )


def evaluate_elsewhere(cfg: DictConfig, results: list[dict]) -> dict[str, dict[str, dict]]:
    """Each stage's best checkpoint on every dataset of ``eval_datasets``, without further training.
    Each checkpoint is loaded once and each dataset read once; figures already written are reused."""
    from gmaiqa.checkpoints import load_net
    from gmaiqa.scoring import test_checkpoint

    datasets = {name: spec for name, spec in (cfg.get("eval_datasets") or {}).items() if spec is not None}
    stacks: dict[str, list] = {}
    table: dict[str, dict[str, dict]] = {}
    for result in results:
        loaded = None
        for name, spec in datasets.items():
            out = Path(result["dir"]) / "eval" / name
            if (out / "metrics.json").is_file():
                metrics = json.loads((out / "metrics.json").read_text())
            else:
                if name not in stacks:
                    stacks[name] = eval_dataset_stacks(name, spec, cfg)
                loaded = loaded or load_net(result["checkpoint"])
                options = OmegaConf.create(
                    {
                        "accelerator": cfg.trainer.accelerator,
                        "num_workers": cfg.data.num_workers,
                        "resize": spec.get("resize"),
                        "block": spec.get("block"),
                        "inference": {
                            "patch": None,
                            "step": None,
                            "max_patches": None,
                            **(spec.get("inference") or {}),
                        },
                    }
                )
                metrics, rows = test_checkpoint(*loaded, stacks[name], options)
                out.mkdir(parents=True, exist_ok=True)
                write_per_group(out / "per_group.csv", rows)
                (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
            table.setdefault(result["stage"], {})[name] = metrics
    return table


def _log_eval_table(cfg: DictConfig, run_dir: Path, table: dict) -> None:
    if not table or not wandb_active(cfg):
        return
    import wandb

    w = cfg.logger.wandb
    group = job_label(cfg, run_dir)
    run = wandb.init(
        project=w.project,
        entity=w.entity,
        group=group,
        name=f"{group}/eval",
        job_type="eval",
        dir=str(run_dir),
        mode=w.mode,
        config={"eval_datasets": list(cfg.eval_datasets)},
    )
    columns = ["stage", "dataset", "acc", "t0", "t1", "srocc", "groups"]
    rows = [
        [stage, name] + [m.get(c) for c in columns[2:]]
        for stage, per in table.items()
        for name, m in per.items()
    ]
    run.log({"eval/datasets": wandb.Table(columns=columns, data=rows)})
    run.summary.update(
        {
            f"{stage}/{name}/{k}": v
            for stage, per in table.items()
            for name, m in per.items()
            for k, v in m.items()
        }
    )
    run.finish()


def train(cfg: DictConfig) -> dict:
    run_dir = Path(cfg.paths.run_dir)
    stages = list(cfg.stages)
    if not stages:
        raise ConfigError("stages", "no training stage", "list at least one stage (see conf/train.yaml)")
    rules = stage_rules(stages)
    finished = claim_run_dir(cfg, run_dir)
    if finished is not None:
        print(f"{run_dir}: finished earlier, skipped (remove {run_dir / DONE} to run it again)")
        return finished
    init_from = resolve_init_from(cfg.init_from, int(cfg.seed))
    if stages[0].get("requires_init", False) and not init_from:
        raise ConfigError(
            "init_from",
            f"stage {stages[0].name} starts from earlier weights (the paper's two-stage training)",
            "pass init_from=PATH/TO/L0.ckpt (or its run or multirun directory), or run the whole protocol",
        )
    L.seed_everything(cfg.seed, workers=True)
    with job_scope():
        datamodule = instantiate(cfg.data)
        results = []
        for stage, rule in zip(stages, rules):
            result = run_stage(cfg, stage, rule, run_dir, init_from, datamodule)
            results.append(result)
            init_from = result["checkpoint"]
    if not is_rank_zero():
        return {"stages": results}
    table = evaluate_elsewhere(cfg, results) if cfg.evaluate else {}
    for result in results:
        result["eval"] = table.get(result["stage"], {})
    final = results[-1]
    summary = {
        "run_dir": str(run_dir),
        "seed": int(cfg.seed),
        "stages": results,
        "checkpoint": final["checkpoint"],
        **final["metrics"],
    }
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    if cfg.evaluate:
        for table_name in ("per_group.csv", "per_image.csv"):
            if (Path(final["dir"]) / table_name).is_file():
                shutil.copy(Path(final["dir"]) / table_name, run_dir / table_name)
        for result in results:
            print_metrics(f"{result['stage']}: test split", result["metrics"])
            for name, metrics in result["eval"].items():
                print_metrics(f"{result['stage']}: {name} (no transfer)", metrics)
        _log_eval_table(cfg, run_dir, table)
    (run_dir / DONE).write_text(
        json.dumps({**summary, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1)
    )
    print(f"run directory: {run_dir}")
    return summary
