"""gmaiqa summarize DIR: the paper's Table 1 for a multirun (or any folder of runs).

Every job under DIR (a folder with ``job.json``) contributes each finished stage's test figures and its
``eval_datasets`` figures. Jobs are grouped into variants by the overrides that differ between them,
seeds aside; each (variant, stage) row gives, per dataset, mean ± sample std across seeds of acc, t0,
t1 and SROCC. Written to ``DIR/summary.md`` and ``DIR/summary.csv`` (long form: one row per variant,
stage, dataset and metric, with the per-seed values) and logged as a W&B table (offline by default,
under ``DIR/wandb``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from pathlib import Path

from gmaiqa.errors import ConfigError
from gmaiqa.job import DONE, JOB, RUNTIME_OVERRIDES

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


def variant_labels(jobs: dict[Path, dict]) -> dict[Path, str]:
    """A job's variant: the overrides whose values differ between the jobs (seed excluded)."""
    overrides = {job: _overrides(record) for job, record in jobs.items()}
    keys = sorted({k for o in overrides.values() for k in o})
    varying = [k for k in keys if len({o.get(k) for o in overrides.values()}) > 1]
    labels = {}
    for job, o in overrides.items():
        labels[job] = " ".join(f"{k}={o.get(k, '-')}" for k in varying) or "all jobs"
    return labels


def collect(root: Path) -> tuple[dict, list[str], list[Path]]:
    """(variant, stage) -> dataset -> metric -> [(seed, value)], the dataset names, unfinished jobs."""
    jobs = find_jobs(root)
    if not jobs:
        raise ConfigError("DIR", f"no runs under {root} (no job.json)", "pass a run or multirun directory written by `gmaiqa train`")
    labels = variant_labels(jobs)
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    datasets: list[str] = []
    unfinished = []
    for job, record in jobs.items():
        seed = record.get("seed")
        if not (job / DONE).is_file():
            unfinished.append(job)
            continue
        for stage in json.loads((job / DONE).read_text())["stages"]:
            per_dataset = split_by_dataset(stage.get("metrics") or {})
            per_dataset.update(stage.get("eval") or {})
            for name, metrics in per_dataset.items():
                if name not in datasets:
                    datasets.append(name)
                for metric in METRICS:
                    value = metrics.get(metric)
                    if value is not None and not (isinstance(value, float) and math.isnan(value)):
                        table[(labels[job], stage["stage"])][name][metric].append((seed, float(value)))
    return table, datasets, unfinished


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


def markdown(table: dict, datasets: list[str]) -> str:
    present = {(d, m) for per in table.values() for d, metrics in per.items() for m, pairs in metrics.items() if pairs}
    columns = [(d, m) for d in datasets for m in METRICS if (d, m) in present]
    header = ["variant", "stage", "seeds"] + [f"{d} {m}" for d, m in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (variant, stage), per in sorted(table.items()):
        seeds = sorted({s for d in per.values() for pairs in d.values() for s, _ in pairs}, key=str)
        cells = [variant, stage, str(len(seeds))] + [_cell(per.get(d, {}).get(m, []), m) for d, m in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def long_rows(table: dict) -> list[dict]:
    rows = []
    for (variant, stage), per in sorted(table.items()):
        for dataset, metrics in per.items():
            for metric, pairs in metrics.items():
                mean, std = mean_std([v for _, v in pairs])
                rows.append({"variant": variant, "stage": stage, "dataset": dataset, "metric": metric, "n": len(pairs),
                             "mean": mean, "std": "" if math.isnan(std) else std,
                             "values": " ".join(f"{s}:{v:g}" for s, v in sorted(pairs, key=lambda p: str(p[0])))})
    return rows


def log_to_wandb(root: Path, rows: list[dict], mode: str, project: str) -> str | None:
    import wandb

    run = wandb.init(project=project, dir=str(root), mode=mode, job_type="summary", name=f"summary/{root.name}",
                     group=root.name, config={"summarized": str(root)})
    columns = list(rows[0]) if rows else ["variant"]
    run.log({"summary/table": wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])})
    run_id = run.id
    run.finish()
    return run_id


def summarize(root: str | Path, wandb_mode: str = "offline", project: str = "gmaiqa") -> dict:
    root = Path(root)
    if not root.is_dir():
        raise ConfigError("DIR", f"{root} is not a directory", "pass the multirun directory printed by `gmaiqa train -m`")
    table, datasets, unfinished = collect(root)
    text = markdown(table, datasets)
    rows = long_rows(table)
    (root / "summary.md").write_text(f"# {root}\n\nmean ± std across seeds\n\n{text}\n")
    with open(root / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["variant", "stage", "dataset", "metric", "n", "mean", "std", "values"])
        writer.writeheader()
        writer.writerows(rows)
    print(text)
    if unfinished:
        print(f"\n{len(unfinished)} unfinished job(s), not counted: " + ", ".join(str(j) for j in unfinished)
              + "\n(relaunch the same command with resume=auto to finish them)")
    wandb_id = log_to_wandb(root, rows, wandb_mode, project) if wandb_mode != "disabled" and rows else None
    print(f"-> {root / 'summary.md'}, {root / 'summary.csv'}")
    return {"rows": rows, "datasets": datasets, "unfinished": [str(j) for j in unfinished], "wandb_run_id": wandb_id}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gmaiqa summarize", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="a multirun directory (or any folder holding runs)")
    parser.add_argument("--wandb", default="offline", choices=("offline", "online", "disabled"),
                        help="where the summary table goes in W&B (default: offline files under DIR/wandb)")
    parser.add_argument("--project", default="gmaiqa")
    args = parser.parse_args(argv)
    summarize(args.dir, args.wandb, args.project)
    return 0
