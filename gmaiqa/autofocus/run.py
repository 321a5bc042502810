"""``gmaiqa autofocus``: searches on a simulated stage (``stage=simulated preset=... trials=N``) or on
recorded stacks (``stage=recorded input=DIR``), each trial's truth known, so a strategy and a scorer are
judged by what a search costs (acquisitions, stage seconds) and how close it lands (µm, and depths of
field: success is within one).

Writes into ``out``: ``trials.csv`` (one row per trial: start_um, found_um, focus_um, error_um,
error_dof, acquisitions, seconds, status), ``summary.csv`` (the same as the printed line), ``path.png``
(the first trial's path over its score curve) and a W&B run under ``out/wandb`` (offline unless
``logger.wandb.mode=online``). Tables are written under temporary names and renamed when complete.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gmaiqa.autofocus.search import STRATEGIES, Result, search
from gmaiqa.autofocus.stage import Meter
from gmaiqa.data.synth_config import config_from
from gmaiqa.errors import ConfigError, did_you_mean
from gmaiqa.outputs import check_out, written
from gmaiqa.reporting import command_run
from gmaiqa.schemas.commands import AutofocusStage
from gmaiqa.wandb_settings import wandb_settings

OUTPUTS = ("trials.csv", "summary.csv", "path.png")
STAGES = tuple(s.value for s in AutofocusStage)
TRIAL_COLUMNS = (
    "trial",
    "group",
    "strategy",
    "scorer",
    "start_um",
    "found_um",
    "focus_um",
    "error_um",
    "error_dof",
    "acquisitions",
    "seconds",
    "status",
)


def check(cfg: DictConfig) -> None:
    """Every option, before anything is read, rendered or written (exit 2 with one message)."""

    check_out(cfg.out, cfg.overwrite, OUTPUTS)
    if cfg.stage not in STAGES:
        raise ConfigError(
            "stage", f"{cfg.stage!r}{did_you_mean(str(cfg.stage), STAGES)}", f"choose one of {list(STAGES)}"
        )
    if cfg.strategy not in STRATEGIES:
        raise ConfigError(
            "strategy",
            f"{cfg.strategy!r}{did_you_mean(str(cfg.strategy), STRATEGIES)}",
            f"choose one of {list(STRATEGIES)}",
        )
    for key, smallest in (("range_um", 0.0), ("tolerance_um", 0.0)):
        value = cfg.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= smallest
        ):
            raise ConfigError(key, f"{value!r}", f"give a positive number of µm, e.g. {key}=1")
    if isinstance(cfg.budget, bool) or not isinstance(cfg.budget, int) or cfg.budget < 3:
        raise ConfigError("budget", f"{cfg.budget!r}", "give a whole number of acquisitions, at least 3")
    if not isinstance(cfg.crop, int | float) or not 0 < cfg.crop <= 1:
        raise ConfigError(
            "crop", f"{cfg.crop!r}", "give the share of each side scored, in (0, 1]; 1 scores the whole frame"
        )
    if cfg.stage == "simulated":
        if isinstance(cfg.trials, bool) or not isinstance(cfg.trials, int) or cfg.trials < 1:
            raise ConfigError("trials", f"{cfg.trials!r}", "give a whole number of trials, at least 1")
        synth_config(cfg, 0)  # every synthetic option, named as data.synthetic names them
    elif not cfg.input:
        raise ConfigError(
            "input", "stage=recorded needs the stacks", "pass input=DIR (a dataset folder or a stack file)"
        )


def synth_config(cfg: DictConfig, trial: int):

    extra = OmegaConf.to_container(cfg.synthetic, resolve=True) if cfg.get("synthetic") else {}
    try:
        return config_from(preset=cfg.preset, seed=cfg.seed + trial, groups=1, **extra)
    except ConfigError as exc:
        key = exc.key if exc.key == "preset" else f"synthetic.{exc.key}"
        raise ConfigError(key, exc.problem, exc.fix) from None


@dataclass
class Trial:
    stage: object
    group: str
    start_um: float
    focus_um: float | None
    dof_um: float
    lower: float
    upper: float
    tolerance_um: float


def simulated_trials(cfg: DictConfig) -> Iterator[Trial]:
    """Trial t: field 0 of the preset at seed ``seed + t``; its focus drawn uniformly within 80 % of
    the range around the start."""
    # here, not at import: loads cv2 only when this runs
    from gmaiqa.autofocus.stages import SimulatedStage

    half = float(cfg.range_um) / 2
    for t in range(cfg.trials):
        rng = np.random.default_rng([int(cfg.seed), t, 11])
        start = 0.0
        focus = float(rng.uniform(-0.8 * half, 0.8 * half))
        synth = synth_config(cfg, t)
        stage = SimulatedStage(
            synth,
            0,
            focus_um=focus,
            z_limits=(start - half, start + half),
            start_um=start,
            backlash_um=float(cfg.backlash_um),
            move_seconds=float(cfg.move_seconds),
            exposure_seconds=float(cfg.exposure_seconds),
        )
        tolerance = float(cfg.tolerance_um) if cfg.tolerance_um else synth.clear_depth_um / 2
        yield Trial(
            stage,
            f"{synth.preset}/seed{synth.seed}",
            start,
            focus,
            synth.clear_depth_um,
            start - half,
            start + half,
            tolerance,
        )


def recorded_trials(cfg: DictConfig) -> Iterator[Trial]:
    """One trial per group: the stack's planes, the search over its whole z range from its middle."""
    # here, not at import: loads torch, lightning, torchvision ... only when this runs
    from gmaiqa.autofocus.stages import RecordedStage
    from gmaiqa.data.dataset import load_dataset
    from gmaiqa.scoring import reading_options

    for stack in load_dataset(cfg.input, validate=cfg.validate, option_prefix="", **reading_options(cfg)):
        stage = RecordedStage(stack, step_um=float(cfg.step_um))
        lower, upper = stage.z_limits
        if cfg.range_um:
            lower, upper = max(lower, stage.z - cfg.range_um / 2), min(upper, stage.z + cfg.range_um / 2)
        dof = float(cfg.dof_um) if cfg.dof_um else stage.step_um
        tolerance = float(cfg.tolerance_um) if cfg.tolerance_um else stage.step_um
        yield Trial(stage, stack.group, stage.z, stage.focus_um, dof, lower, upper, tolerance)


def trial_row(index: int, trial: Trial, result: Result, strategy: str, scorer: str) -> dict:
    error = None
    if result.found_um is not None and trial.focus_um is not None:
        error = result.found_um - trial.focus_um
    return {
        "trial": index,
        "group": trial.group,
        "strategy": strategy,
        "scorer": scorer,
        "start_um": round(trial.start_um, 4),
        "found_um": None if result.found_um is None else round(result.found_um, 4),
        "focus_um": None if trial.focus_um is None else round(trial.focus_um, 4),
        "error_um": None if error is None else round(error, 4),
        "error_dof": None if error is None else round(abs(error) / trial.dof_um, 4),
        "acquisitions": result.acquisitions,
        "seconds": round(result.seconds, 4),
        "status": result.status
        + (f" ({', '.join(f'{p:.2f}' for p in result.peaks)} µm)" if result.status == "two_peaks" else ""),
    }


def summarise(rows: list[dict]) -> dict:
    judged = [r for r in rows if r["focus_um"] is not None]
    within = [r for r in judged if r["error_dof"] is not None and r["error_dof"] <= 1]
    errors = [abs(r["error_um"]) for r in judged if r["error_um"] is not None]
    return {
        "strategy": rows[0]["strategy"],
        "scorer": rows[0]["scorer"],
        "trials": len(rows),
        "within_dof": len(within),
        "success": len(within) / len(judged) if judged else math.nan,
        "mean_acquisitions": float(np.mean([r["acquisitions"] for r in rows])),
        "median_error_um": float(np.median(errors)) if errors else math.nan,
        "mean_seconds": float(np.mean([r["seconds"] for r in rows])),
        "flat": sum(r["status"] == "flat" for r in rows),
        "two_peaks": sum(r["status"].startswith("two_peaks") for r in rows),
        "budget": sum(r["status"] == "budget" for r in rows),
    }


def write_table(path: Path, rows: list[dict], columns) -> None:
    """Written whole under a temporary name, then renamed (``gmaiqa.outputs``)."""
    with written(path) as part, open(part, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(columns))
        writer.writeheader()
        writer.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])


def plot_path(
    path: Path, trial: Trial, meter: Meter, curve: tuple[np.ndarray, np.ndarray], title: str
) -> None:
    # here, not at import: loads matplotlib only when this runs
    import matplotlib

    matplotlib.use("Agg")
    # here, not at import: loads matplotlib only when this runs
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    zs, scores = curve
    ax.plot(zs, scores, "-", color="0.6", lw=1, label="score curve")
    ax.plot(
        [p.at for p in meter.path], [p.score for p in meter.path], "o", ms=4, color="C0", label="acquired"
    )
    for probe in meter.path:
        ax.annotate(
            str(probe.order + 1),
            (probe.at, probe.score),
            fontsize=6,
            xytext=(2, 2),
            textcoords="offset points",
        )
    if trial.focus_um is not None:
        ax.axvline(trial.focus_um, color="k", ls="--", lw=1, label="focus (truth)")
    ax.set_xlabel("stage z (µm)")
    ax.set_ylabel("clarity")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with written(path) as part:
        fig.savefig(part, format="png")
    plt.close(fig)


def score_curve(trial: Trial, score, planes: int = 41) -> tuple[np.ndarray, np.ndarray]:
    """The first trial's score over the whole range (for the figure only; not counted)."""
    stage = trial.stage
    zs = getattr(stage, "planes", None)
    zs = np.sort(zs) if zs is not None else np.linspace(trial.lower, trial.upper, planes)
    zs = zs[(zs >= trial.lower) & (zs <= trial.upper)]
    values = []
    score = score.for_search() if hasattr(score, "for_search") else score  # a search's normaliser, as Meter's
    for z in zs:
        stage.move_to(float(z))
        values.append(score(stage.acquire()))
    return zs, np.asarray(values)


def autofocus(cfg: DictConfig) -> dict:
    # here, not at import: loads torch, cv2, tifffile only when this runs
    from gmaiqa.autofocus.scorers import frame_scorer

    check(cfg)
    settings = wandb_settings(cfg, "autofocus")
    score, scorer = frame_scorer(cfg)
    print(f"autofocus: {cfg.strategy} with {scorer} on a {cfg.stage} stage, budget {cfg.budget} acquisitions")
    out = Path(cfg.out)
    trials = simulated_trials(cfg) if cfg.stage == "simulated" else recorded_trials(cfg)
    rows, first = [], None
    for index, trial in enumerate(trials):
        meter = Meter(trial.stage, score, int(cfg.budget))
        result = search(meter, cfg.strategy, trial.lower, trial.upper, trial.tolerance_um)
        rows.append(trial_row(index, trial, result, cfg.strategy, scorer))
        if first is None:
            first = (trial, meter)
    if not rows:
        raise ConfigError(
            "input", f"{cfg.input} holds no stacks", "give a folder of z-stacks or a stack file"
        )
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    write_table(out / "trials.csv", rows, TRIAL_COLUMNS)
    write_table(out / "summary.csv", [summary], list(summary))
    trial, meter = first
    plot_path(
        out / "path.png", trial, meter, score_curve(trial, score), f"{trial.group}: {cfg.strategy}, {scorer}"
    )
    log_to_wandb(settings, cfg, out, rows, summary)
    print(
        f"{summary['within_dof']} of {summary['trials']} trials within one depth of field "
        f"({summary['success']:.0%}), {summary['mean_acquisitions']:.1f} acquisitions per trial, median "
        f"error {summary['median_error_um']:.2f} µm; flat {summary['flat']}, two peaks "
        f"{summary['two_peaks']}, budget spent {summary['budget']} -> {out / 'trials.csv'}"
    )
    return summary


def log_to_wandb(settings: dict, cfg: DictConfig, out: Path, rows: list[dict], summary: dict) -> None:
    written = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    config = {k: v for k, v in written.items() if k not in ("logger", "hydra")}
    run = command_run(settings, out, "autofocus", f"autofocus/{cfg.stage}/{cfg.strategy}", config)
    if run is None:
        return
    # here, not at import: loads wandb only when this runs
    import wandb

    table = wandb.Table(columns=list(TRIAL_COLUMNS), data=[[r[c] for c in TRIAL_COLUMNS] for r in rows])
    run.log({"autofocus/trials": table, "autofocus/path": wandb.Image(str(out / "path.png"))})
    run.summary.update({f"autofocus/{k}": v for k, v in summary.items() if isinstance(v, int | float)})
    run.finish()
