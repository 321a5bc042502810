"""Cross-dataset evaluation after training (the paper's Table 1 columns, §4.3): each stage's selected
checkpoint on every dataset of ``eval_datasets`` without further training, written to
``<stage>/eval/<dataset>/metrics.json, per_group.csv`` and logged as one W&B ``eval`` run per job."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gmaiqa.checkpoints import load_net
from gmaiqa.data.dataset_root import dataset_root
from gmaiqa.errors import ConfigError
from gmaiqa.reporting import write_per_group
from gmaiqa.runs import job_label
from gmaiqa.stages import wandb_active


def eval_dataset_stacks(name: str, spec: DictConfig, cfg: DictConfig):
    # here, not at import: loads albumentations, torchmetrics, cv2 ... only when this runs
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
    # here, not at import: loads albumentations, torchmetrics ... only when this runs
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
                        "inference": dict(spec.get("inference") or {}),
                    }
                )
                metrics, rows = test_checkpoint(*loaded, stacks[name], options)
                out.mkdir(parents=True, exist_ok=True)
                write_per_group(out / "per_group.csv", rows)
                (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
            table.setdefault(result["stage"], {})[name] = metrics
    return table


def log_eval_table(cfg: DictConfig, run_dir: Path, table: dict) -> None:
    if not table or not wandb_active(cfg):
        return
    # here, not at import: loads wandb only when this runs
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
