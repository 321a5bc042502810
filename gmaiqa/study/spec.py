"""What a study report holds, built once from the run folders and rendered by each renderer
(``gmaiqa.study.html``: a self-contained folder for a browser), so the renderings never drift.

A study is one or more multirun folders (e.g. the ``attention_map``, ``aux_outputs`` and ``backbone``
sweeps). Per folder the report gives: the question (what varies between its jobs) and the command that
ran it; the Table-1-style mean ± std table (``gmaiqa.summarize.table_rows``: the same cells as
``summary.md``); acc and SROCC per variant with each seed as a point (the paper's Figs. 9-11); the
monitored validation loss per epoch of every stage and seed (the checkpoint selection's history); the
score curves of a few test groups against their annotation; the checkpoint each job kept (epoch, rule,
whether the rule's conditions held); and links to every job, stage and W&B run folder.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from gmaiqa.errors import ConfigError
from gmaiqa.job import DONE
from gmaiqa.summarize import OWN_TEST, _overrides, collect, find_jobs, split_statement, table_rows

CHART_METRICS = ("acc", "srocc")
SCORE_CURVE_GROUPS = 3


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Chart:
    """A figure by its data: ``bars`` (label -> per-seed values, one panel per metric), ``curves``
    (series label -> [(x, y)]) or ``score_curves`` (group -> predicted and annotated scores)."""

    name: str
    title: str
    kind: str
    data: dict
    x_label: str = ""
    y_label: str = ""
    stage: str | None = None  # the stage whose runs it shows (None: every stage)


@dataclass
class Link:
    label: str
    path: Path
    kind: str = "job"  # "job" (a job folder) or "wandb" (a W&B run folder)


@dataclass
class RunSet:
    """The W&B runs of one stage across a folder's jobs, found by their W&B groups (the job labels;
    run ids where a job recorded no group), in ``project`` under ``entity`` (None: the user's default)."""

    stage: str
    groups: list[str]
    run_ids: list[str]
    project: str
    entity: str | None = None


@dataclass
class Section:
    title: str
    folder: Path
    question: str
    command: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    run_sets: list[RunSet] = field(default_factory=list)

    @property
    def wandb_runs(self) -> list[str]:
        """The W&B run ids of the folder, stage by stage."""
        return [run_id for run_set in self.run_sets for run_id in run_set.run_ids]


@dataclass
class ReportSpec:
    title: str
    sections: list[Section]


def build_spec(folders: list[str | Path], title: str | None = None) -> ReportSpec:
    paths = [Path(f) for f in folders]
    for path in paths:
        if not path.is_dir():
            raise ConfigError(
                "DIR", f"{path} is not a directory", "pass multirun folders written by `gmaiqa train -m`"
            )
    sections = [study_section(path, index) for index, path in enumerate(paths)]
    return ReportSpec(title or "Study: " + ", ".join(p.name for p in paths), sections)


def study_section(folder: Path, index: int) -> Section:
    jobs = find_jobs(folder)
    table, datasets, unfinished, selections = collect(folder, jobs)
    varying, command = question_and_command(jobs)
    header, rows = table_rows(table, datasets, selections)
    section = Section(
        title=folder.name,
        folder=folder,
        question=f"What changes with {', '.join(varying)}?" if varying else "How do the rounds agree?",
        command=command,
        notes=[split_statement(jobs)]
        + ([f"{len(unfinished)} unfinished job(s) not counted."] if unfinished else []),
        tables=[Table("Test figures: mean ± std across seeds (as summary.md)", header, rows)],
    )
    prefix, runs = f"s{index}", read_jobs(jobs)
    section.charts.append(metric_bars(f"{prefix}_bars", table))
    section.charts += learning_curves(prefix, runs)
    curves = score_curves(f"{prefix}_scores", runs)
    if curves is not None:
        section.charts.append(curves)
    section.tables.append(selection_table(folder, runs))
    search = search_table(folder, runs)
    if search is not None:
        section.tables.insert(0, search)
    section.links = run_links(folder, runs)
    section.run_sets = run_sets(runs)
    return section


def question_and_command(jobs: dict[Path, dict]) -> tuple[list[str], str]:
    """The keys whose values differ between the jobs (seed aside: the rounds), and the multirun command
    that gives those jobs."""
    overrides = {job: _overrides(record) for job, record in jobs.items()}
    keys = sorted({k for o in overrides.values() for k in o})
    values = {k: sorted({o.get(k, "") for o in overrides.values()}, key=str) for k in keys}
    varying = [k for k in keys if len(values[k]) > 1]
    seeds = sorted({record.get("seed") for record in jobs.values()}, key=str)
    parts = [f"{k}={','.join(values[k])}" if k in varying else f"{k}={values[k][0]}" for k in keys]
    if len(seeds) > 1:
        parts.append("seed=" + ",".join(str(s) for s in seeds))
    return varying, "gmaiqa train -m " + " ".join(parts)


def metric_bars(name: str, table: dict) -> Chart:
    """(variant, stage) -> metric -> [(seed, value)] on the run's own test split."""
    data: dict = defaultdict(dict)
    for (variant, stage), per in sorted(table.items()):
        for metric in CHART_METRICS:
            pairs = per.get(OWN_TEST, {}).get(metric, [])
            if pairs:
                by_seed = sorted(pairs, key=lambda pair: str(pair[0]))
                data[metric][f"{variant} {stage}".strip()] = [value for _, value in by_seed]
    return Chart(name, "acc and SROCC per variant (bars: mean; points: seeds)", "bars", dict(data))


@dataclass
class Job:
    """A job folder with its ``job.json`` record and its finished stages (from ``done.json``, read once)."""

    path: Path
    record: dict
    stages: list[dict]

    @property
    def seed(self):
        return self.record.get("seed")

    def wandb_target(self) -> tuple[str, str | None]:
        """(project, entity) the job logged to, from its resolved config (``config.yaml``)."""
        config = self.path / "config.yaml"
        wandb = {}
        if config.is_file():
            wandb = OmegaConf.to_container(OmegaConf.load(config)).get("logger", {}).get("wandb") or {}
        return wandb.get("project") or "gmaiqa", wandb.get("entity")


def read_jobs(jobs: dict[Path, dict]) -> list[Job]:
    return [
        Job(path, record, json.loads((path / DONE).read_text())["stages"] if (path / DONE).is_file() else [])
        for path, record in jobs.items()
    ]


def learning_curves(prefix: str, jobs: list[Job]) -> list[Chart]:
    """Per stage: the validation metric its selection monitored, per epoch, one line per job."""
    per_stage: dict[str, dict] = defaultdict(dict)
    monitors: dict[str, str] = {}
    for job in jobs:
        for stage in job.stages:
            selection = stage.get("selection") or {}
            monitor = (selection.get("rule") or {}).get("monitor")
            points = [
                (h["epoch"], h["values"][monitor])
                for h in selection.get("history", [])
                if monitor in h["values"]
            ]
            if points:
                monitors[stage["stage"]] = monitor
                per_stage[stage["stage"]][f"{job.path.name} (seed {job.seed})"] = points
    return [
        Chart(
            f"{prefix}_curve_{stage}",
            f"{stage}: {monitors[stage]} per epoch",
            "curves",
            lines,
            "epoch",
            monitors[stage],
            stage=stage,
        )
        for stage, lines in per_stage.items()
    ]


def score_curves(name: str, jobs: list[Job]) -> Chart | None:
    """The first finished job's final stage: predicted and annotated scores of a few test groups."""
    for job in (j for j in jobs if j.stages):
        final = job.stages[-1]
        table = Path(final.get("dir", job.path)) / "per_group.csv"
        if not table.is_file():
            continue
        with open(table, newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r.get("annotated_scores")][:SCORE_CURVE_GROUPS]
        data = {
            r["group"]: {
                "predicted": [float(v) for v in r["predicted_scores"].split()],
                "annotated": [float(v) for v in r["annotated_scores"].split()],
            }
            for r in rows
        }
        if data:
            title = f"score curves of {len(data)} test groups ({job.path.name}, {final['stage']})"
            return Chart(name, title, "score_curves", data, "image (capture order)", "score", final["stage"])
    return None


def search_table(folder: Path, jobs: list[Job]) -> Table | None:
    """An Optuna search (``sweep=search``): every trial's parameters and objective (the final stage's
    selected validation value), best first, and the best trial the sweeper recorded."""
    results = folder / "optimization_results.yaml"
    if not results.is_file():
        return None

    best = OmegaConf.to_container(OmegaConf.load(results))
    keys = list(best.get("best_params") or {})
    rows = []
    for job in (j for j in jobs if j.stages):
        given = _overrides(job.record)
        value = (job.stages[-1].get("selection") or {}).get("value")
        rows.append([str(job.path.relative_to(folder)), *(given.get(k, "") for k in keys), value])
    rows.sort(key=lambda r: (r[-1] is None, r[-1]))
    title = (
        f"Hyper-parameter search (Optuna, {len(rows)} trials): best value {best.get('best_value'):.4g} with "
        + ", ".join(f"{k}={v}" for k, v in (best.get("best_params") or {}).items())
    )
    cells = [[*r[:-1], "" if r[-1] is None else f"{r[-1]:.4g}"] for r in rows]
    return Table(title, ["trial", *keys, "objective"], cells)


def selection_table(folder: Path, jobs: list[Job]) -> Table:
    rows = [
        [
            str(job.path.relative_to(folder)) or ".",
            str(job.seed),
            stage["stage"],
            str((stage.get("selection") or {}).get("epoch", "")),
            (stage.get("selection") or {}).get("status", "unrecorded"),
            (stage.get("selection") or {}).get("rule_text", ""),
        ]
        for job in jobs
        for stage in job.stages
    ]
    return Table("Checkpoint selection", ["job", "seed", "stage", "epoch", "status", "rule"], rows)


def run_sets(jobs: list[Job]) -> list[RunSet]:
    """Per stage (in training order) and W&B project, the jobs' runs that were logged to W&B."""
    sets: dict[tuple, RunSet] = {}
    for job in jobs:
        logged = [stage for stage in job.stages if stage.get("wandb_run_id")]
        if not logged:
            continue
        project, entity = job.wandb_target()
        for stage in logged:
            key = (stage["stage"], project, entity)
            run_set = sets.setdefault(key, RunSet(stage["stage"], [], [], project, entity))
            if stage.get("wandb_group"):
                run_set.groups.append(stage["wandb_group"])
            run_set.run_ids.append(stage["wandb_run_id"])
    return list(sets.values())


def run_links(folder: Path, jobs: list[Job]) -> list[Link]:
    """Every job folder and W&B run folder."""
    links = []
    for job in jobs:
        links.append(Link(f"{job.path.relative_to(folder) or '.'}: job folder", job.path))
        for stage in job.stages:
            stage_dir = Path(stage.get("dir", job.path / stage["stage"]))
            for run in sorted(stage_dir.glob("wandb/offline-run-*")) + sorted(stage_dir.glob("wandb/run-*")):
                label = f"{job.path.name}/{stage['stage']}: W&B run {stage.get('wandb_run_id', '')}"
                links.append(Link(label, run, "wandb"))
    return links
