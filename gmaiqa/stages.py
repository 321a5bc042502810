"""One training stage of a job (GMANet's L0, L1, ...): its model (the job's, with the stage's own
overrides), loggers, callbacks (checkpoint selection, ``last.ckpt`` for resume, the data epoch), fit,
the test of the selected checkpoint, and the stage's files::

    <stage>/checkpoints/best-EEE.ckpt, last.ckpt     (both written atomically)
    <stage>/done.json                                 the stage finished: checkpoint, selection, test metrics
    <stage>/metrics.json, per_group.csv, csv/, wandb/

An unfinished stage continues from its own ``last.ckpt`` (weights, optimiser, LR schedule, epoch and
step, sampler position, random state, selection so far) under the same W&B run id.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from gmaiqa.callbacks.checkpointing import (
    RandomState,
    ResumeCheckpoint,
    remove_stale_temporaries,
    resume_point,
)
from gmaiqa.callbacks.data_epoch import DataEpoch
from gmaiqa.callbacks.data_wait import DataWaitMonitor
from gmaiqa.callbacks.faults import FiniteTraining, signals
from gmaiqa.callbacks.selection import SelectCheckpoint, rule_from_config
from gmaiqa.callbacks.wandb_reports import wandb_loggers
from gmaiqa.callbacks.weight_averaging import extra_callbacks
from gmaiqa.checkpoints import init_weights_from, trained_precision
from gmaiqa.distributed import is_rank_zero
from gmaiqa.errors import ConfigError, instantiate, is_count
from gmaiqa.inference import InferenceSettings
from gmaiqa.job import DONE
from gmaiqa.models.registry import family_of_config
from gmaiqa.runs import environment, job_label, job_overrides
from gmaiqa.summarize import variant_key
from gmaiqa.tasks.distillation import distill_key
from gmaiqa.trainer_settings import check_trainer, resolve_precision


def wandb_active(cfg: DictConfig) -> bool:
    """logger.wandb.enabled and a mode other than disabled (W&B's own word for off); the mode and
    model_artifact choices are typed by the schema (gmaiqa.schemas.logger), refused at composition."""
    w = cfg.logger.wandb
    return bool(w.enabled) and w.mode != "disabled"


def log_model_artifact(
    run, checkpoint: str, how: str, cfg: DictConfig, stage: str, selection, metrics
) -> None:
    """The stage's selected checkpoint as a W&B model artifact named after the run and stage, with
    aliases ``best``, ``stage-<stage>`` and ``seed-<seed>`` and the job's overrides in its metadata, so
    ``ckpt=wandb:ENTITY/PROJECT/NAME:ALIAS`` finds it. Offline, W&B records it and ``wandb sync``
    uploads it; ``reference`` records a file:// link instead of a copy."""

    # here, not at import: loads wandb only when this runs
    import wandb

    name = re.sub(r"[^\w.-]", "-", f"{cfg.run_name}-{stage}")
    artifact = wandb.Artifact(
        name,
        type="model",
        metadata={
            "stage": stage,
            "seed": int(cfg.seed),
            "overrides": job_overrides() or [],
            "selection": {
                k: v for k, v in selection.items() if k in ("status", "epoch", "value", "rule_text")
            },
            "test": metrics,
            "file": Path(checkpoint).name,
        },
    )
    if how == "reference":
        artifact.add_reference(Path(checkpoint).resolve().as_uri(), name=Path(checkpoint).name)
    else:
        artifact.add_file(checkpoint, name=Path(checkpoint).name)
    run.log_artifact(artifact, aliases=["best", f"stage-{stage}", f"seed-{cfg.seed}"])


def _loggers(cfg: DictConfig, stage_dir: Path, stage: str, group: str, resuming: bool):
    loggers = []
    if cfg.logger.csv:
        # here, not at import: loads lightning only when this runs
        from lightning.pytorch.loggers import CSVLogger

        # a resumed stage logs beside the first attempt's metrics.csv (Lightning would delete it)
        version = f"resumed-{len(list((stage_dir / 'csv').glob('resumed-*')))}" if resuming else ""
        loggers.append(CSVLogger(stage_dir, name="csv", version=version))
    if wandb_active(cfg):
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


def _callbacks(cfg: DictConfig, stage: str, rule, stage_dir: Path, logging: bool):
    # here, not at import: loads lightning only when this runs
    from lightning.pytorch.callbacks import LearningRateMonitor

    selector = SelectCheckpoint(stage_dir / "checkpoints", rule)
    # Lightning runs checkpoint callbacks last, in this order: last.ckpt already knows the new selection
    callbacks = [
        FiniteTraining(stage),
        DataEpoch(),
        DataWaitMonitor(),
        RandomState(),
        selector,
        ResumeCheckpoint(stage_dir / "checkpoints", cfg.checkpoint.every_n_train_steps),
    ]
    if logging:
        callbacks.insert(0, LearningRateMonitor(logging_interval="step"))
    callbacks += [instantiate(extra) for extra in extra_callbacks(cfg).values()]
    return selector, callbacks


def stage_rules(stages) -> list:
    """Every stage's checkpoint selection rule, checked before anything runs."""

    for i, stage in enumerate(stages):
        epochs = stage.get("max_epochs")
        # Lightning reads -1 as "no limit": a typo trained forever ("Epoch 0/-2")
        if not is_count(epochs, 1):
            raise ConfigError(
                f"stages.{i}.max_epochs",
                f"{epochs!r} is not a number of epochs",
                "give a whole number of at least 1 (trainer.max_time or trainer.max_steps bound a run "
                "by time or steps)",
            )
    return [rule_from_config(stage, f"stages.{i}.selection") for i, stage in enumerate(stages)]


def report_selection(
    stage: str, outcome: dict, trained: int | None = None, planned: int | None = None
) -> None:
    if planned and planned > 0 and trained is not None and trained < planned:
        # trainer.max_time (default_model_gpu's guard), max_steps or a signal ended the stage early: a
        # run that looks complete would be read as the recipe as written
        print(
            f"stage {stage}: WARNING trained {trained} of its {planned} epochs (stopped early: "
            "trainer.max_time, trainer.max_steps or an interruption); the selection chose among the "
            f"{outcome.get('epochs_validated')} it validated"
        )
    if outcome["status"] == "fallback":
        print(
            f"stage {stage}: WARNING no epoch of {outcome['epochs_validated']} met the selection constraints "
            f"({outcome['rule_text']}); kept epoch {outcome['epoch']}, the nearest to their lower "
            f"bounds, then the best {outcome['rule']['monitor']} (selection: fallback)"
        )
    elif outcome["status"] == "none" and outcome.get("epochs_not_finite"):
        print(
            f"stage {stage}: {outcome['rule']['monitor']} was NaN or infinite in every epoch validated "
            f"({outcome['epochs_not_finite']}); kept the last checkpoint"
        )
    elif outcome["status"] == "none":
        print(f"stage {stage}: {outcome['rule']['monitor']} was never logged; kept the last checkpoint")
    else:
        print(
            f"stage {stage}: selected epoch {outcome['epoch']} ({outcome['rule_text']}; "
            f"{outcome['epochs_meeting_constraints']} of {outcome['epochs_validated']} epochs qualified)"
        )


def check_requires_init(stages: list, init_from: str | None) -> None:
    """A protocol whose first stage continues earlier weights (``requires_init``: GMANet's L1 after L0,
    a fine-tune) needs ``init_from``."""
    if stages and stages[0].get("requires_init", False) and not init_from:
        raise ConfigError(
            "init_from",
            f"stage {stages[0].name} starts from earlier weights (the paper's two-stage training)",
            "pass init_from=PATH/TO/L0.ckpt (or its run or multirun directory), or run the whole protocol",
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
    return _with_stage_overrides(cfg.model, overrides, f"stages.{stage.name}.model", "model")


def stage_task(cfg: DictConfig, stage: DictConfig) -> dict:
    """The job's task config with the stage's own overrides (``stages[i].task``, e.g. a lower
    ``optimizer.lr`` for a stage that fine-tunes the one before it); nested keys merge, and a key the
    task does not have is a ConfigError naming it."""
    overrides = OmegaConf.to_container(stage.task, resolve=True) if stage.get("task") else {}
    return _with_stage_overrides(cfg.task, overrides, f"stages.{stage.name}.task", "task")


def _with_stage_overrides(node: DictConfig, overrides: dict, where: str, what: str) -> dict:
    """``node`` (resolved) with a stage's overrides merged in, nested keys included: a struct merge, so a
    key the node does not have is OmegaConf's ConfigKeyError, named here by its full key."""

    base = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
    OmegaConf.set_struct(base, True)
    try:
        return OmegaConf.to_container(OmegaConf.merge(base, overrides))
    except ConfigKeyError as exc:
        key = str(exc.full_key)
        parent = OmegaConf.select(base, key.rpartition(".")[0]) if "." in key else base
        known = (
            sorted(k for k in parent if not str(k).startswith("_")) if isinstance(parent, DictConfig) else []
        )
        raise ConfigError(
            f"{where}.{key}",
            f"the {what} ({base.get('_target_')}) has no such key",
            f"a stage may override the {what}'s own keys here: {sorted(known)}",
        ) from None


# Lightning's line when a fit resumes mid-epoch and its DataLoader is not itself stateful
NOT_RESUMABLE_WARNING = r".*your dataloader is not resumable.*"


@contextmanager
def resume_warning_only_where_true(datamodule) -> Iterator[None]:
    """Lightning judges a mid-epoch resume by the DataLoader alone and calls it unreliable. A DataModule
    that restores its sampler's position (``restores_sampler_position``: FocusStackDataModule, via
    gmaiqa.data.sampling) makes that false, so it is silenced for that fit. The other systems'
    DataModules reshuffle on resume, and for them the warning is true and stays."""
    with warnings.catch_warnings():
        if getattr(datamodule, "restores_sampler_position", False):
            warnings.filterwarnings("ignore", message=NOT_RESUMABLE_WARNING)
        yield


def run_stage(
    cfg: DictConfig, stage: DictConfig, rule, run_dir: Path, init_from: str | None, datamodule
) -> dict:
    stage_dir = run_dir / stage.name
    if (stage_dir / DONE).is_file():
        result = json.loads((stage_dir / DONE).read_text())
        print(f"stage {stage.name}: finished earlier ({result['checkpoint']})")
        return result

    last = stage_dir / "checkpoints" / "last.ckpt"
    resume, notes = resume_point(stage_dir, writer=is_rank_zero())
    resume_from = str(resume) if resume else None
    model_cfg = stage_model(cfg, stage)
    family = family_of_config(model_cfg)
    with warnings.catch_warnings():
        # earlier weights (init_from or the checkpoint resumed) replace ImageNet's
        warnings.simplefilter("ignore" if init_from or resume_from else "default", UserWarning)
        net = instantiate(model_cfg)
    if init_from and not resume_from:
        init_weights_from(net, init_from)  # before the stage folder: a refused init_from leaves none
    if is_rank_zero():
        for line in notes:
            print(f"stage {stage.name}: {line}")
        if notes:
            print(
                f"stage {stage.name}: "
                + (
                    f"resuming from {resume_from} instead"
                    if resume_from
                    else "no readable checkpoint is left; the stage starts again"
                )
            )
        stage_dir.mkdir(parents=True, exist_ok=True)
        for tmp in remove_stale_temporaries(stage_dir / "checkpoints"):
            print(f"stage {stage.name}: removed {tmp.name}, left by an attempt stopped while writing it")
    wandb_group = job_label(cfg, run_dir)
    # a stage started again after an unreadable checkpoint keeps the first attempt's logs beside its own
    resuming = resume_from is not None or bool(notes)
    loggers = _loggers(cfg, stage_dir, stage.name, wandb_group, resuming=resuming)
    wandb_id = next((lg.experiment.id for lg in wandb_loggers(loggers)), None) if is_rank_zero() else None
    check_trainer(cfg.trainer)
    # a resumed stage keeps the precision it was trained in (trainer_settings.resolve_precision)
    precision, precision_note = resolve_precision(cfg.trainer, started_in=trained_precision(resume_from))
    meta = {
        "model": model_cfg,
        "data": OmegaConf.to_container(cfg.data, resolve=True, enum_to_str=True),
        "inference": InferenceSettings.from_mapping(
            OmegaConf.to_container(cfg.inference, resolve=True)
        ).record(),
        "stage": stage.name,
        "selection": rule.as_dict(),
        "init_from": init_from,
        "seed": int(cfg.seed),
        "trainer_precision": precision,
        "wandb_run_id": wandb_id,
        "git_commit": environment()["git_commit"],
        "task": cfg.task._target_,
        # what eval, predict, benchmark and export need to use the network (gmaiqa.scoring)
        "family": family.name,
        "higher_is_better": family.higher_is_better,
        "scoring": family.scoring,
    }
    # conf/task/*.yaml: a partial LightningModule (loss, optimiser, ...) completed with the network, and
    # the report its test leaves in the stage folder (gmaiqa.callbacks.test_reports)
    task_cfg = stage_task(cfg, stage)
    report = task_cfg.pop("report", None)
    # only a task that can distil has the key; a refusal then names the key the user wrote
    named = {"distill_key": distill_key(cfg, stage)} if "distill" in task_cfg else {}
    task = instantiate(task_cfg)(net, inference=meta["inference"], meta=meta, **named)
    selector, callbacks = _callbacks(cfg, stage.name, rule, stage_dir, logging=bool(loggers))
    if report and cfg.evaluate:
        callbacks.append(instantiate(report, out_dir=stage_dir))
    trainer = instantiate(
        cfg.trainer,
        precision=precision,
        max_epochs=stage.max_epochs,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(stage_dir),
        use_distributed_sampler=False,
    )
    if trainer.is_global_zero:
        total = sum(p.numel() for p in net.parameters())
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
        size = f"{total / 1e6:.1f} M parameters ({trainable / 1e6:.1f} M trainable)"
        print(f"stage {stage.name}: {family.name}, {size}")
        if precision_note:
            print(f"stage {stage.name}: {precision_note}")
    if resume_from:
        print(f"stage {stage.name}: resuming from {resume_from}")
    else:
        for lg in loggers:
            lg.log_hyperparams(
                {
                    "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
                    "stage": stage.name,
                    "trainer_precision": precision,
                    "variant": variant_key(job_overrides() or []),
                    "environment": environment(),
                }
            )
    try:
        with signals.fitting(trainer, stage.name), resume_warning_only_where_true(datamodule):
            trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from)
        # read before testing: the selected checkpoint holds weights and metadata only, and the test
        # should not touch what the selector knows
        outcome, history = selector.outcome(), list(selector.history)
        checkpoint = outcome.get("checkpoint") or str(last)
        selection = {k: v for k, v in outcome.items() if k != "checkpoint"}
        # epochs completed (a stage that ran to its end reports max_epochs); validation may run less often
        selection["epochs_trained"], selection["epochs_planned"] = trainer.current_epoch, stage.max_epochs
        if trainer.is_global_zero:
            report_selection(stage.name, outcome, trainer.current_epoch, stage.max_epochs)
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
            "wandb_group": wandb_group if wandb_id else None,
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
            for lg in wandb_loggers(loggers):
                lg.experiment.summary.update(
                    {
                        f"selection/{k}": v
                        for k, v in selection.items()
                        if k in ("status", "epoch", "value", "rule_text")
                    }
                )
                how = cfg.logger.wandb.get("model_artifact", "upload")
                if how != "none" and outcome.get("checkpoint"):
                    log_model_artifact(lg.experiment, checkpoint, how, cfg, stage.name, selection, metrics)
            (stage_dir / DONE).write_text(json.dumps(result, indent=1))
        return result
    finally:
        if wandb_loggers(loggers):
            # here, not at import: loads wandb only when this runs
            import wandb

            wandb.finish()
