"""gmaiqa train: read top to bottom - claim the run directory (``gmaiqa.runs``), run the stages in
order (``gmaiqa.stages``), evaluate on the other datasets (``gmaiqa.cross_eval``), write the done marker.

A job runs ``stages`` in order (the paper's protocol is L0 -> L1, §3.4), each in its own sub-folder
of the run directory with its own checkpoint selection; stage k+1 starts from stage k's selected
checkpoint, the first from ``init_from`` when given. After each stage its selected checkpoint is
tested on the test groups, and on every dataset of ``eval_datasets`` without further training (the
paper's Table 1 columns).

Files of a run directory (every one written by rank 0 only)::

    job.json          the job's overrides, seed, git commit, package versions (written once)
    config.yaml       the resolved configuration
    <stage>/...       see gmaiqa.stages
    <stage>/eval/<dataset>/metrics.json, per_group.csv
    metrics.json, per_group.csv                       the last stage's figures
    done.json                                         the job finished (with its final figures)
    failed.json                                       it stopped: bad input, non-finite training, a full disk
    interrupted.json                                  a signal stopped it (signal, stage, epoch, step)
    .gmaiqa.lock                                      held while a launch writes the folder

A launch holds the folder for its life (``gmaiqa.runs.holding``); SIGTERM or SIGUSR1 stop it at the next
batch boundary with ``last.ckpt`` saved (``gmaiqa.callbacks.faults``), and the relaunch resumes.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from gmaiqa.callbacks.faults import signals
from gmaiqa.callbacks.weight_averaging import check_one_weight_averaging
from gmaiqa.checkpoints import resolve_init_from
from gmaiqa.cross_eval import evaluate_elsewhere, log_eval_table
from gmaiqa.distributed import is_rank_zero, job_scope
from gmaiqa.errors import ConfigError, GmaiqaError, Preempted, RunFailed, instantiate
from gmaiqa.job import DONE, JOB
from gmaiqa.reporting import print_metrics
from gmaiqa.runs import claim_run_dir, holding, mark_failed, mark_interrupted, withdraw
from gmaiqa.stages import check_requires_init, run_stage, stage_rules


def compare_with_classical(cfg: DictConfig, datamodule, checkpoint: str, run_dir: Path) -> None:
    """``compare_with: [TENG, LMG]``: the final checkpoint beside those measures on the same test groups
    (``comparison.csv``; ``gmaiqa benchmark`` does the same on any dataset)."""
    # here, not at import: loads albumentations, torchmetrics, cv2 ... only when this runs
    from gmaiqa.benchmark import compare_on, print_ranking, write_ranking
    from gmaiqa.scoring import device_for

    stacks = datamodule.splits["test"]
    rows = compare_on(stacks, checkpoint, list(cfg.compare_with), device_for(cfg.trainer.accelerator))
    write_ranking(run_dir / "comparison.csv", rows)
    print_ranking(f"the final checkpoint beside classical measures ({len(stacks)} test groups)", rows)


def train(cfg: DictConfig) -> dict:
    run_dir = Path(cfg.paths.run_dir)
    stages = list(cfg.stages)
    if not stages:
        raise ConfigError("stages", "no training stage", "list at least one stage (see conf/train.yaml)")
    rules = stage_rules(stages)
    check_one_weight_averaging(cfg)
    fresh = not (run_dir / JOB).is_file()
    with holding(run_dir), signals.installed():
        finished = claim_run_dir(cfg, run_dir)
        if finished is not None:
            print(f"{run_dir}: finished earlier, skipped (remove {run_dir / DONE} to run it again)")
            return finished
        try:
            return _run_stages(cfg, run_dir, stages, rules)
        except GmaiqaError as exc:
            # refused before any stage ran (a fresh folder): nothing is left behind; else the folder says why
            if not (fresh and withdraw(run_dir, [s.name for s in stages], Path(cfg.paths.output_root))):
                mark_failed(run_dir, exc)
            raise
        except Preempted as exc:
            mark_interrupted(run_dir, exc.record)
            raise
        except RunFailed as exc:
            mark_failed(run_dir, exc, exc.record)
            raise
        except (
            OSError
        ) as exc:  # a log or result the disk refused (checkpoints: gmaiqa.callbacks.checkpointing)
            where = exc.filename or "a file of the run"
            failure = RunFailed(
                f"cannot write {where}: {exc.strerror or exc}; free space (or move paths.output_root) and "
                "relaunch the same command to resume",
                {"path": str(where), "errno": exc.errno},
            )
            mark_failed(run_dir, failure, failure.record)
            raise failure from exc


def _run_stages(cfg: DictConfig, run_dir: Path, stages: list, rules: list) -> dict:
    init_from = resolve_init_from(cfg.init_from, int(cfg.seed))
    check_requires_init(stages, init_from)
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
        log_eval_table(cfg, run_dir, table)
        if cfg.get("compare_with"):
            compare_with_classical(cfg, datamodule, final["checkpoint"], run_dir)
    (run_dir / DONE).write_text(
        json.dumps({**summary, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1)
    )
    print(f"run directory: {run_dir}")
    return summary
