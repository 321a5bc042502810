"""gmaiqa summarize DIR: the paper's Table 1 for a multirun (or any folder of runs).

Every job under DIR (a folder with ``job.json``) contributes each finished stage's test figures and its
``eval_datasets`` figures. Jobs are grouped into variants by the overrides that differ between them,
seeds aside; each (variant, stage) row gives, per dataset, mean ± sample std across seeds of acc, t0,
t1 and SROCC. Written to ``DIR/summary.md`` and ``DIR/summary.csv`` (long form: one row per variant,
stage, dataset and metric, with the per-seed values) and logged as a W&B table (offline by default,
under ``DIR/wandb``).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

from omegaconf import OmegaConf

from gmaiqa.errors import ConfigError
from gmaiqa.job import DONE, FAILED, JOB, RUNTIME_OVERRIDES

# what a table row reports, in this order: GMANet's clearest-image metrics, then correlations with MOS
# (SAQM: per domain) and the defocus regressor's fit quality
METRICS = ("acc", "t0", "t1", "srocc", "plcc", "krocc", "r2", "mae", "within_1")
OWN_TEST = "test"
# besides how a job ran (already left out of job.json): the seed and where it wrote, never a variant
_IGNORED = ("seed", "paths.", "run_id", *RUNTIME_OVERRIDES)


def find_jobs(root: Path) -> dict[Path, dict]:
    """Every job folder under ``root`` with its job.json record."""
    return {p.parent: json.loads(p.read_text()) for p in sorted(root.rglob(JOB))}


def _overrides(record: dict) -> dict[str, str]:
    pairs = [o.split("=", 1) for o in record.get("overrides") or [] if "=" in o]
    return {k: v for k, v in pairs if not k.startswith(_IGNORED)}


def variant_key(overrides: list[str]) -> str:
    """A job's overrides without its seed and where it wrote: the same for every seed of one variant.
    Logged as the W&B config key ``variant``, which an online study report groups its bars by."""
    given = _overrides({"overrides": overrides})
    return " ".join(f"{k}={v}" for k, v in sorted(given.items())) or "defaults"


def variant_labels(jobs: dict[Path, dict]) -> dict[Path, str]:
    """A job's variant: the overrides whose values differ between the jobs (seed excluded)."""
    overrides = {job: _overrides(record) for job, record in jobs.items()}
    keys = sorted({k for o in overrides.values() for k in o})
    varying = [k for k in keys if len({o.get(k) for o in overrides.values()}) > 1]
    labels = {}
    for job, o in overrides.items():
        labels[job] = " ".join(f"{k}={o.get(k, '-')}" for k in varying) or "all jobs"
    return labels


def collect(root: Path, jobs: dict[Path, dict] | None = None) -> tuple[dict, list[str], list[Path], dict]:
    """(variant, stage) -> dataset -> metric -> [(seed, value)], the dataset names, unfinished jobs, and
    (variant, stage) -> [(seed, selection status, selected epoch)]. ``jobs``: ``find_jobs(root)`` when
    the caller has it already."""
    jobs = find_jobs(root) if jobs is None else jobs
    if not jobs:
        raise ConfigError(
            "DIR",
            f"no runs under {root} (no job.json)",
            "pass a run or multirun directory written by `gmaiqa train`",
        )
    labels = variant_labels(jobs)
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    datasets: list[str] = []
    unfinished = []
    selections: dict = defaultdict(list)
    for job, record in jobs.items():
        seed = record.get("seed")
        if (job / FAILED).is_file() and not (job / DONE).is_file():
            error = json.loads((job / FAILED).read_text()).get("error", "")
            print(f"{job}: stopped on an error, not counted: {error.splitlines()[0] if error else ''}")
            continue
        if not (job / DONE).is_file():
            unfinished.append(job)
            continue
        for stage in json.loads((job / DONE).read_text())["stages"]:
            chosen = stage.get("selection") or {}
            selections[(labels[job], stage["stage"])].append(
                (seed, chosen.get("status", "unrecorded"), chosen.get("epoch"))
            )
            per_dataset = split_by_dataset(stage.get("metrics") or {})
            per_dataset.update(stage.get("eval") or {})
            for name, metrics in per_dataset.items():
                if name not in datasets:
                    datasets.append(name)
                for metric in METRICS:
                    value = metrics.get(metric)
                    if value is not None and not (isinstance(value, float) and math.isnan(value)):
                        table[(labels[job], stage["stage"])][name][metric].append((seed, float(value)))
    return table, datasets, unfinished, selections


def selection_cell(picks: list[tuple]) -> str:
    """How the rows' checkpoints were chosen: e.g. ``4 constrained, 1 fallback (seed 3)``."""
    by_status: dict[str, list] = defaultdict(list)
    for seed, status, _ in picks:
        by_status[status].append(seed)
    parts = []
    for status, seeds in sorted(by_status.items()):
        named = f" (seed {', '.join(str(s) for s in sorted(seeds, key=str))})" if status == "fallback" else ""
        parts.append(f"{len(seeds)} {status}{named}")
    return ", ".join(parts)


def split_statement(jobs) -> str:
    """Whether the rounds (job folders) shared one train/val/test split (the paper) or drew one each."""

    seeds = set()
    for job in jobs:
        config = job / "config.yaml"
        if config.is_file():
            data = OmegaConf.load(config).get("data") or {}
            seeds.add(str(data.get("split_seed", data.get("seed"))))
    values = sorted(seeds)
    if not values:
        return "Splits: not recorded."
    if len(values) == 1:
        return (
            f"Splits: one train/val/test split for every round (data.split_seed={values[0]}), "
            "as the paper's five rounds."
        )
    return (
        f"Splits: each round drew its own train/val/test split (data.split_seed in {{{', '.join(values)}}})."
    )


def split_by_dataset(metrics: dict) -> dict[str, dict]:
    """Test metrics keyed ``DOMAIN/metric`` (SAQM reports per domain) become datasets of their own;
    plain keys belong to the run's own test split."""
    out: dict[str, dict] = {}
    for key, value in metrics.items():
        dataset, _, metric = key.rpartition("/")
        out.setdefault(dataset or OWN_TEST, {})[metric] = value
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _cell(pairs: list[tuple], metric: str) -> str:
    if not pairs:
        return ""
    mean, std = mean_std([v for _, v in pairs])
    digits = 1 if metric in ("t0", "t1") else 3
    return f"{mean:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}")


def markdown(table: dict, datasets: list[str], selections: dict | None = None) -> str:
    header, rows = table_rows(table, datasets, selections)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def table_rows(table: dict, datasets: list[str], selections: dict | None = None) -> tuple[list, list]:
    """Table 1 as a header and rows of cells (variant, stage, seeds, selection, then mean ± std per
    dataset and metric): what summary.md shows and ``gmaiqa report`` renders."""
    present = {
        (d, m)
        for per in table.values()
        for d, metrics in per.items()
        for m, pairs in metrics.items()
        if pairs
    }
    columns = [(d, m) for d in datasets for m in METRICS if (d, m) in present]
    header = ["variant", "stage", "seeds", "selection"] + [f"{d} {m}" for d, m in columns]
    rows = []
    for (variant, stage), per in sorted(table.items()):
        seeds = sorted({s for d in per.values() for pairs in d.values() for s, _ in pairs}, key=str)
        chosen = selection_cell((selections or {}).get((variant, stage), []))
        cells = [variant, stage, str(len(seeds)), chosen] + [
            _cell(per.get(d, {}).get(m, []), m) for d, m in columns
        ]
        rows.append(cells)
    return header, rows


def long_rows(table: dict) -> list[dict]:
    rows = []
    for (variant, stage), per in sorted(table.items()):
        for dataset, metrics in per.items():
            for metric, pairs in metrics.items():
                mean, std = mean_std([v for _, v in pairs])
                rows.append(
                    {
                        "variant": variant,
                        "stage": stage,
                        "dataset": dataset,
                        "metric": metric,
                        "n": len(pairs),
                        "mean": mean,
                        "std": "" if math.isnan(std) else std,
                        "values": " ".join(f"{s}:{v:g}" for s, v in sorted(pairs, key=lambda p: str(p[0]))),
                    }
                )
    return rows


def log_to_wandb(root: Path, rows: list[dict], mode: str, project: str) -> str | None:
    # here, not at import: loads wandb only when this runs
    import wandb

    run = wandb.init(
        project=project,
        dir=str(root),
        mode=mode,
        job_type="summary",
        name=f"summary/{root.name}",
        group=root.name,
        config={"summarized": str(root)},
    )
    columns = list(rows[0]) if rows else ["variant"]
    run.log({"summary/table": wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])})
    run_id = run.id
    run.finish()
    return run_id


def summarize(root: str | Path, wandb_mode: str = "offline", project: str = "gmaiqa") -> dict:
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(
            "DIR", f"{root} is not a directory", "pass the multirun directory printed by `gmaiqa train -m`"
        )
    jobs = find_jobs(root)
    table, datasets, unfinished, selections = collect(root, jobs)
    text = markdown(table, datasets, selections)
    rows = long_rows(table)
    splits = split_statement(jobs)
    fallbacks = sum(status == "fallback" for picks in selections.values() for _, status, _ in picks)
    note = ""
    if fallbacks:
        note = (
            f"\n\n{fallbacks} stage checkpoint(s) were kept as a fallback: no epoch met the selection "
            "constraints (see each stage's done.json)"
        )
    (root / "summary.md").write_text(f"# {root}\n\nmean ± std across seeds. {splits}{note}\n\n{text}\n")
    with open(root / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(
            handle, ["variant", "stage", "dataset", "metric", "n", "mean", "std", "values"]
        )
        writer.writeheader()
        writer.writerows(rows)
    print(f"{splits}{note}\n\n{text}")
    if unfinished:
        print(
            f"\n{len(unfinished)} unfinished job(s), not counted: "
            + ", ".join(str(j) for j in unfinished)
            + "\n(relaunch the same command with resume=auto to finish them)"
        )
    wandb_id = log_to_wandb(root, rows, wandb_mode, project) if wandb_mode != "disabled" and rows else None
    print(f"-> {root / 'summary.md'}, {root / 'summary.csv'}")
    return {
        "rows": rows,
        "datasets": datasets,
        "unfinished": [str(j) for j in unfinished],
        "wandb_run_id": wandb_id,
        "splits": splits,
        "selections": {f"{v} {s}": selection_cell(p) for (v, s), p in selections.items()},
    }
